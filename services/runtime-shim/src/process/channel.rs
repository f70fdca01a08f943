//! The channel between the shim and a process it is creating.
//!
//! Channel design: one `SOCK_SEQPACKET` socketpair, both ends close-on-exec. The shim keeps
//! [`ParentEnd`]; the child (and, for an exec, the intermediate process and its child) keeps
//! [`ChildEnd`]. Messages are JSON, one per packet; a pty master travels as SCM_RIGHTS.
//!
//! ```text
//!  shim (ParentEnd)                 child (ChildEnd)
//!   ── Continue ──────────────────▶  (after the shim put it in the container's cgroup)
//!   ◀───────────────────── Pid(n)    (exec only: the pid of the process in the container)
//!   ◀──────────────────── Pty + fd   (terminal only: the master of the container's pty)
//!   ◀─────────────────────── Ready   (set up; about to exec)
//!   ── Exec ──────────────────────▶
//!   ◀─────────── Error(StartError)   (any failure, exec's included), or
//!   EOF                              (execve succeeded: close-on-exec closed the last copy)
//! ```

use std::{
    io::{IoSlice, IoSliceMut},
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
    time::Duration,
};

use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::socket::{
        AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
        sendmsg, socketpair,
    },
};
use serde::{Deserialize, Serialize};

use crate::error::{ShimError, StartError};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToParent {
    Pid(i32),
    Pty,
    Ready,
    Error(StartError),
}

#[derive(Debug, Serialize, Deserialize)]
enum ToChild {
    Continue,
    Exec,
}

pub(crate) struct ParentEnd(OwnedFd);
pub(crate) struct ChildEnd(OwnedFd);

pub(crate) fn pair() -> Result<(ParentEnd, ChildEnd), ShimError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ShimError::sys("socketpair", e))?;
    Ok((ParentEnd(a), ChildEnd(b)))
}

fn send<T: Serialize>(
    fd: BorrowedFd<'_>,
    msg: &T,
    pass: Option<BorrowedFd<'_>>,
) -> nix::Result<()> {
    let bytes = serde_json::to_vec(msg).unwrap_or_default();
    let raw;
    let cmsgs: Vec<ControlMessage<'_>> = match pass {
        Some(p) => {
            raw = [p.as_raw_fd()];
            vec![ControlMessage::ScmRights(&raw)]
        }
        None => Vec::new(),
    };
    sendmsg::<()>(
        fd.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(drop)
}

/// One message, or None at EOF.
fn recv<T: for<'de> Deserialize<'de>>(
    fd: BorrowedFd<'_>,
) -> nix::Result<Option<(T, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; 8 * 1024];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        (msg.bytes, fds)
    };
    let mut owned: Vec<OwnedFd> = fds.into_iter().map(crate::sys::own_received_fd).collect();
    if n == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..n]).map_err(|_| nix::errno::Errno::EBADMSG)?;
    Ok(Some((msg, owned.pop())))
}

impl ParentEnd {
    /// The child is in its cgroup; it may go on.
    pub(crate) fn send_continue(&self) -> Result<(), ShimError> {
        send(self.0.as_fd(), &ToChild::Continue, None)
            .map_err(|e| ShimError::sys("signalling the child to continue", e))
    }

    /// The child may exec.
    pub(crate) fn send_exec(&self) -> Result<(), ShimError> {
        send(self.0.as_fd(), &ToChild::Exec, None)
            .map_err(|e| ShimError::sys("signalling the child to exec", e))
    }

    /// The next message (with a passed descriptor), None once every child copy is closed.
    /// Fails after `timeout` without a message.
    pub(crate) fn recv(
        &self,
        timeout: Duration,
    ) -> Result<Option<(ToParent, Option<OwnedFd>)>, ShimError> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => {
                    return Err(ShimError::Start(StartError::other(format!(
                        "the container process did not answer within {timeout:?}"
                    ))));
                }
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(ShimError::sys("poll", e)),
            }
        }
        recv(self.0.as_fd()).map_err(|e| ShimError::sys("reading from the child", e))
    }
}

impl ChildEnd {
    pub(crate) fn wait_continue(&self) -> Result<(), StartError> {
        self.wait_for("continue", |m| matches!(m, ToChild::Continue))
    }

    pub(crate) fn wait_exec(&self) -> Result<(), StartError> {
        self.wait_for("exec", |m| matches!(m, ToChild::Exec))
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&ToChild) -> bool) -> Result<(), StartError> {
        loop {
            match recv::<ToChild>(self.0.as_fd()) {
                Ok(Some((m, _))) if ok(&m) => return Ok(()),
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(StartError::other(format!(
                        "the shim went away before {what}"
                    )));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(StartError::other(format!(
                        "waiting for {what}: {}",
                        crate::error::GoText::go_text(&e)
                    )));
                }
            }
        }
    }

    pub(crate) fn report_pid(&self, pid: i32) -> nix::Result<()> {
        send(self.0.as_fd(), &ToParent::Pid(pid), None)
    }

    pub(crate) fn send_pty(&self, master: BorrowedFd<'_>) -> nix::Result<()> {
        send(self.0.as_fd(), &ToParent::Pty, Some(master))
    }

    pub(crate) fn ready(&self) -> nix::Result<()> {
        send(self.0.as_fd(), &ToParent::Ready, None)
    }

    pub(crate) fn fail(&self, err: &StartError) {
        let _ = send(self.0.as_fd(), &ToParent::Error(err.clone()), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross() {
        let (p, c) = pair().unwrap();
        c.report_pid(42).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        c.send_pty(devnull.as_fd()).unwrap();
        c.fail(&StartError::other("boom"));
        let t = Duration::from_secs(5);
        assert!(matches!(
            p.recv(t).unwrap(),
            Some((ToParent::Pid(42), None))
        ));
        let (m, fd) = p.recv(t).unwrap().unwrap();
        assert!(matches!(m, ToParent::Pty) && fd.is_some());
        assert!(matches!(
            p.recv(t).unwrap(),
            Some((ToParent::Error(e), None)) if e.message == "boom"
        ));
        p.send_continue().unwrap();
        c.wait_continue().unwrap();
        drop(c);
        assert!(
            p.recv(t).unwrap().is_none(),
            "EOF once the child end is closed"
        );
    }
}
