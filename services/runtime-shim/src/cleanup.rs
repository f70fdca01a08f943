//! `berth-shim delete --bundle DIR`: what the runtime runs for a bundle whose shim it cannot
//! reach (containerd's `shim delete`): kills the shim if it still lives, kills what is left of
//! the container through its cgroup, removes the cgroup and the shim's files, and makes sure
//! an exit status is on disk.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{
    config,
    daemon::{self, PID_FILE},
    error::ShimError,
    exit::{self, ExitStatus},
};
use berth_cgroup::Cgroup;

pub fn delete(bundle: &Path) -> Result<ExitStatus, ShimError> {
    let cfg = config::load(bundle)?;
    if let Some(pid) = live_shim(bundle) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    }
    let cgroup = Cgroup::at(&cfg.cgroup_path)?.keeping_parents(cfg.cgroup_keep_parents);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| ShimError::io(bundle, e))?;
    rt.block_on(kill_all(&cgroup))?;
    let status = match exit::read(bundle) {
        Some(s) => s,
        None => {
            let s = unrecorded_exit();
            exit::write(bundle, &s).map_err(|e| ShimError::io(bundle, e))?;
            s
        }
    };
    daemon::remove_files(&cfg, bundle);
    Ok(status)
}

/// The exit of a container whose shim died before recording one: 137, as if SIGKILLed,
/// whether or not something was left to kill (containerd's runc shim cleanup answers
/// `128 + SIGKILL` alike, and dockerd records that).
fn unrecorded_exit() -> ExitStatus {
    ExitStatus {
        signal: Some(9),
        ..ExitStatus::failed(137)
    }
}

/// The shim's pid from shim.pid, if that process is still a berth-shim.
fn live_shim(bundle: &Path) -> Option<Pid> {
    let pid: i32 = std::fs::read_to_string(bundle.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "berth-shim").then(|| Pid::from_raw(pid))
}

/// SIGKILLs the cgroup's processes until it is empty, then removes it. True if anything was
/// still running.
async fn kill_all(cgroup: &Cgroup) -> Result<bool, ShimError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut killed = false;
    loop {
        let procs = cgroup.procs();
        if procs.is_empty() {
            match cgroup.remove() {
                Ok(()) => return Ok(killed),
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => {}
            }
        }
        for p in procs {
            killed = true;
            let _ = nix::sys::signal::kill(p, Signal::SIGKILL);
        }
        // A paused container's processes die only once thawed (the v1 freezer holds even
        // SIGKILL).
        if killed && cgroup.frozen() {
            let _ = cgroup.set_frozen(false);
        }
        if Instant::now() > deadline {
            return Err(ShimError::Precondition(
                "processes of the container survive SIGKILL".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrecorded_exit_is_a_sigkill() {
        let s = unrecorded_exit();
        assert_eq!((s.exit_code, s.signal, s.oom_killed), (137, Some(9), false));
        assert!(!s.exited_at.is_empty());
    }
}
