//! Creating processes, on the shim's side.
//!
//! The container: one clone(2) with CLONE_NEWNS|NEWPID|NEWUTS|NEWIPC(|NEWNET). With clone (not
//! fork + unshare) the new pid namespace applies to the child itself, so the shim's direct
//! child is the container's PID 1 and no intermediate process is needed: the shim waits on it
//! with waitpid like any child. The cgroup namespace is unshared by the child only after the
//! shim has moved it into the container's cgroup, so that the namespace is rooted there.
//!
//! An exec: fork an intermediate process, which the shim moves into the cgroup; it setns(2)
//! into the container's namespaces (mount last) and clones the real process with
//! CLONE_PARENT, which makes it the shim's child, inside the container's pid namespace (setns
//! on a pid namespace only applies to children). The intermediate reports the pid and exits.

pub(crate) mod channel;
mod child;
mod init;

use std::{
    fs::File,
    os::fd::{AsFd, OwnedFd},
    path::Path,
    time::Duration,
};

use nix::{
    fcntl::OFlag,
    sched::CloneFlags,
    sys::{signal::Signal, wait::waitpid},
    unistd::{ForkResult, Pid, pipe2},
};

use self::{
    channel::{ParentEnd, ToParent},
    child::{ChildIo, ExecOpts},
};
use crate::{
    config::{Config, NetNs, Process},
    error::{ShimError, StartError},
    sys,
};
use berth_cgroup::Cgroup;

/// How long a new process may take to set itself up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The shim's ends of a new process's stdio.
#[derive(Default)]
pub(crate) struct ParentIo {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    pub(crate) pty: Option<OwnedFd>,
}

/// A process that has been created.
pub(crate) struct Spawned {
    pub(crate) pid: Pid,
    pub(crate) io: ParentIo,
    /// Set while the process waits for [`release`] (wait_for_start).
    pub(crate) pending: Option<ParentEnd>,
}

fn make_stdio(spec: &Process) -> Result<(ChildIo, ParentIo), ShimError> {
    if spec.terminal {
        return Ok((ChildIo::Terminal(spec.console_size), ParentIo::default()));
    }
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("pipe2", e));
    let (stdin_child, stdin_parent) = if spec.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = File::open("/dev/null").map_err(|e| ShimError::io(Path::new("/dev/null"), e))?;
        (OwnedFd::from(null), None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok((
        ChildIo::Pipes {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
        ParentIo {
            stdin: stdin_parent,
            stdout: Some(out_r),
            stderr: Some(err_r),
            pty: None,
        },
    ))
}

/// Creates the container's init process (see the module doc). Returns once it has exec'd, or
/// is waiting for [`release`] with `cfg.wait_for_start`.
pub(crate) fn spawn_container(
    cfg: &Config,
    rootfs_dir: &Path,
    cgroup: &Cgroup,
) -> Result<Spawned, ShimError> {
    let (parent, child_end) = channel::pair()?;
    let (child_io, io) = make_stdio(&cfg.process)?;
    std::fs::create_dir_all(rootfs_dir).map_err(|e| ShimError::io(rootfs_dir, e))?;
    let ns = &cfg.namespaces;
    let netns = match &ns.net {
        NetNs::Path(p) => Some(OwnedFd::from(
            File::open(p).map_err(|e| ShimError::io(p, e))?,
        )),
        _ => None,
    };
    let mut flags = CloneFlags::CLONE_NEWNS;
    for (on, f) in [
        (ns.pid, CloneFlags::CLONE_NEWPID),
        (ns.uts, CloneFlags::CLONE_NEWUTS),
        (ns.ipc, CloneFlags::CLONE_NEWIPC),
        (ns.net == NetNs::New, CloneFlags::CLONE_NEWNET),
    ] {
        if on {
            flags |= f;
        }
    }
    let mut parent_slot = Some(parent);
    let pid = sys::clone(
        Box::new(|| {
            // The child's copy of the shim's end must go, or the shim would never see EOF.
            drop(parent_slot.take());
            let r = child::container_main(cfg, rootfs_dir, &child_end, &child_io, netns.as_ref());
            child::finish(&child_end, r)
        }),
        flags,
    )
    .map_err(|e| ShimError::sys("clone", e))?;
    drop(child_end);
    drop(child_io);
    let parent = parent_slot.take().expect("the parent keeps its end");
    let mut spawned = Spawned {
        pid,
        io,
        pending: None,
    };
    let r = cgroup
        .add(pid)
        .map_err(ShimError::from)
        .and_then(|()| oom_score_adj(cfg, pid))
        .and_then(|()| parent.send_continue())
        .and_then(|()| handshake(parent, &mut spawned, !cfg.wait_for_start, false));
    if let Err(e) = r {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    Ok(spawned)
}

/// The container's `--oom-score-adj`, written while `pid` still waits for Continue: before it
/// runs anything of the container (or, for an exec's intermediate, before it clones the
/// process, which inherits the value).
fn oom_score_adj(cfg: &Config, pid: Pid) -> Result<(), ShimError> {
    match cfg.oom_score_adj {
        Some(v) => crate::oom::set(Path::new("/proc"), pid, v),
        None => Ok(()),
    }
}

/// Lets a process created with wait_for_start exec; returns once it has.
pub(crate) fn release(chan: ParentEnd) -> Result<(), ShimError> {
    chan.send_exec()?;
    match chan.recv(SETUP_TIMEOUT)? {
        None => Ok(()),
        Some((ToParent::Error(e), _)) => Err(e.into()),
        Some((m, _)) => Err(StartError::other(format!("unexpected message {m:?}")).into()),
    }
}

/// Reads the child's messages up to Ready (and, for an exec, the pid, which the intermediate
/// process may send after its child's Ready); then releases it when `exec_now`.
fn handshake(
    parent: ParentEnd,
    spawned: &mut Spawned,
    exec_now: bool,
    expect_pid: bool,
) -> Result<(), ShimError> {
    let (mut ready, mut have_pid) = (false, !expect_pid);
    while !(ready && have_pid) {
        match parent.recv(SETUP_TIMEOUT)? {
            Some((ToParent::Pid(p), _)) => {
                spawned.pid = Pid::from_raw(p);
                have_pid = true;
            }
            Some((ToParent::Pty, fd)) => spawned.io.pty = fd,
            Some((ToParent::Ready, _)) => ready = true,
            Some((ToParent::Error(e), _)) => return Err(e.into()),
            None => {
                return Err(StartError::other("the process exited while being set up").into());
            }
        }
    }
    if exec_now {
        release(parent)
    } else {
        spawned.pending = Some(parent);
        Ok(())
    }
}

/// The namespaces of `target` that differ from the shim's, opened for setns, mount last.
fn namespaces_of(target: Pid) -> Result<Vec<(OwnedFd, CloneFlags)>, ShimError> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for (name, flag) in [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let theirs = format!("/proc/{target}/ns/{name}");
        let f = File::open(&theirs).map_err(|e| ShimError::io(Path::new(&theirs), e))?;
        let mine = std::fs::metadata(format!("/proc/self/ns/{name}")).map(|m| m.ino());
        let same = f.metadata().map(|m| m.ino()).ok() == mine.ok();
        if !same {
            out.push((OwnedFd::from(f), flag));
        }
    }
    Ok(out)
}

/// Creates an exec's process in the container of `init` (see the module doc).
pub(crate) fn spawn_exec(
    init: Pid,
    spec: &Process,
    cfg: &Config,
    cgroup: &Cgroup,
) -> Result<Spawned, ShimError> {
    let namespaces = namespaces_of(init)?;
    let (parent, child_end) = channel::pair()?;
    let (child_io, io) = make_stdio(spec)?;
    let opts = ExecOpts {
        capabilities: cfg.capabilities.as_deref(),
        no_new_privileges: cfg.no_new_privileges,
        seccomp: cfg.seccomp.as_ref(),
        rlimits: &cfg.rlimits,
        init: false,
        create_cwd: false,
    };
    let intermediate = match sys::fork().map_err(|e| ShimError::sys("fork", e))? {
        ForkResult::Child => {
            drop(parent);
            let code = intermediate(&namespaces, spec, &child_end, &child_io, &opts);
            sys::exit_now(code);
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_end);
    drop(child_io);
    let mut spawned = Spawned {
        pid: Pid::from_raw(0),
        io,
        pending: None,
    };
    let r = cgroup
        .add(intermediate)
        .map_err(ShimError::from)
        .and_then(|()| oom_score_adj(cfg, intermediate))
        .and_then(|()| parent.send_continue())
        .and_then(|()| handshake(parent, &mut spawned, true, true));
    if let Err(e) = r {
        let _ = nix::sys::signal::kill(intermediate, Signal::SIGKILL);
        if spawned.pid.as_raw() > 0 {
            let _ = nix::sys::signal::kill(spawned.pid, Signal::SIGKILL);
        }
        return Err(e);
    }
    Ok(spawned)
}

fn intermediate(
    namespaces: &[(OwnedFd, CloneFlags)],
    spec: &Process,
    chan: &channel::ChildEnd,
    io: &ChildIo,
    opts: &ExecOpts<'_>,
) -> i32 {
    let r = (|| -> Result<Pid, StartError> {
        chan.wait_continue()?;
        for (fd, flag) in namespaces {
            nix::sched::setns(fd.as_fd(), *flag).map_err(|e| {
                StartError::other(format!(
                    "setns {flag:?}: {}",
                    crate::error::GoText::go_text(&e)
                ))
            })?;
        }
        sys::clone(
            Box::new(|| child::finish(chan, child::exec_main(spec, chan, io, opts))),
            CloneFlags::CLONE_PARENT,
        )
        .map_err(|e| StartError::other(format!("clone: {}", crate::error::GoText::go_text(&e))))
    })();
    match r {
        Ok(pid) => {
            let _ = chan.report_pid(pid.as_raw());
            0
        }
        Err(e) => {
            chan.fail(&e);
            1
        }
    }
}
