//! The shim is its children's reaper (and, as a subreaper, of any orphan re-parented to it):
//! on every SIGCHLD it collects every exited child with waitpid(-1, WNOHANG) and hands the
//! status to the shim. Nothing else in the shim calls wait, so no exit is lost to another
//! waiter.

use std::sync::Arc;

use nix::{
    errno::Errno,
    sys::wait::{WaitPidFlag, WaitStatus, waitpid},
};
use tokio::signal::unix::{SignalKind, signal};

use crate::shim::Shim;

/// Runs until the shim stops. The first sweep picks up exits that happened before the
/// handler was installed (a container that exits at once).
pub(crate) async fn run(shim: Arc<Shim>) -> std::io::Result<()> {
    let mut sigchld = signal(SignalKind::child())?;
    loop {
        reap_all(&shim);
        if sigchld.recv().await.is_none() {
            return Ok(());
        }
    }
}

fn reap_all(shim: &Arc<Shim>) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(ws) => {
                if let Some(pid) = ws.pid() {
                    shim.on_exit(pid, ws);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("berth-shim: waitpid: {e}");
                return;
            }
        }
    }
}
