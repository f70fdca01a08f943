//! The tiny init (`docker run --init`): the container's PID 1 forks the real process, forwards
//! every signal it receives to it, reaps every zombie in the container, and exits with the
//! process's status (128 + signal when killed, as tini does).
//!
//! It is the shim's own code, not an exec'd binary: the shim is linked dynamically and the
//! container's root filesystem need not have its loader, so PID 1 stays the process the shim
//! cloned and simply never execs. Its memory is shared copy-on-write with the shim.

use std::{convert::Infallible, ffi::CString};

use nix::{
    sys::{
        signal::{SigSet, Signal, kill},
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::{ForkResult, Pid, execve},
};

use super::channel::ChildEnd;
use crate::{error::StartError, sys};

/// Signals the init waits for: all but the synchronous ones and those that cannot be caught.
fn forwarded() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGFPE,
        Signal::SIGILL,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
    ] {
        set.remove(s);
    }
    set
}

pub(crate) fn run(
    path: &CString,
    args: &[CString],
    env: &[CString],
    chan: &ChildEnd,
) -> Result<Infallible, StartError> {
    let set = forwarded();
    set.thread_block().map_err(|e| {
        StartError::other(format!(
            "blocking signals: {}",
            crate::error::GoText::go_text(&e)
        ))
    })?;
    match sys::fork()
        .map_err(|e| StartError::other(format!("fork: {}", crate::error::GoText::go_text(&e))))?
    {
        ForkResult::Child => {
            let _ = SigSet::all().thread_unblock();
            let e = execve(path, args, env).unwrap_err();
            let arg0 = args
                .first()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            let err = super::child::exec_error(&arg0, e);
            chan.fail(&err);
            sys::exit_now(err.kind.exit_code());
        }
        ForkResult::Parent { child } => {
            // Nothing of the shim's stays open in PID 1; the channel's EOF tells the shim
            // the process exec'd.
            sys::close_fds_from(3);
            supervise(&set, child)
        }
    }
}

fn supervise(set: &SigSet, child: Pid) -> ! {
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => sys::exit_now(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    sys::exit_now(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}
