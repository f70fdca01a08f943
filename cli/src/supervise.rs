//! Child processes for `berth up`: started with a parent-death signal, restarted when they fail
//! (like systemd's `Restart=on-failure`), stopped with SIGTERM then SIGKILL.

use std::{path::PathBuf, process::ExitStatus, time::Duration};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};

/// A program and its arguments.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) log: PathBuf,
}

pub(crate) fn spawn(spec: &Spec) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(false);
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2),
    // which is async-signal-safe. It makes the child receive SIGTERM if `berth up` dies, so an
    // all-in-one run never leaves services behind.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
        .map_err(|e| anyhow::anyhow!("starting {} ({}): {e}", spec.name, spec.program.display()))
}

/// Whether systemd's `Restart=on-failure` would restart after this exit.
pub(crate) fn failed(status: &ExitStatus) -> bool {
    !status.success()
}

/// SIGTERM, then SIGKILL after `grace`.
pub(crate) async fn stop(name: &str, child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        return;
    };
    let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            eprintln!("berth: {name} did not stop within {grace:?}; killing it");
            let _ = child.kill().await;
        }
    }
}
