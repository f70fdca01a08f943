//! The long-lived shim process, after `start` has detached it: it creates the container, tells
//! the launcher the socket address (or the failure), then serves `berth.shim.v1` (see
//! `berth_shim_proto`) on a current-thread tokio runtime until Delete or Shutdown.
//!
//! The runtime is current-thread and nothing in the shim uses spawn_blocking or tokio::fs, so
//! the shim stays single-threaded: exec's fork (in `process`) needs that, and it keeps the
//! memory small.

use std::{
    fs::File,
    io::Write,
    os::unix::{fs::PermissionsExt, net::UnixListener},
    path::{Path, PathBuf},
    time::Duration,
};

use berth_shim_proto::Call;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::{
    config::Config,
    error::{ShimError, StartError},
    logfile::{JsonLog, LogSink},
    process, reaper, rpc,
    shim::Shim,
    start::write_start_error,
};
use berth_cgroup::Cgroup;

pub use berth_bundle::{ADDRESS_FILE, PID_FILE};

/// What the shim tells the launcher over the report pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Report {
    Address(String),
    Error(StartError),
}

/// The shim's main, in the detached process. Never returns.
pub(crate) fn run(cfg: Config, bundle: PathBuf, mut report: File) -> ! {
    let send = |report: &mut File, r: &Report| {
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        let _ = report.write_all(&line);
    };
    let cgroup = match Cgroup::at(&cfg.cgroup_path) {
        Ok(c) => c.keeping_parents(cfg.cgroup_keep_parents),
        Err(e) => fail(&bundle, &mut report, ShimError::from(e).into(), None),
    };
    let (spawned, listener, log) = match setup(&cfg, &bundle, &cgroup) {
        Ok(s) => s,
        Err(e) => fail(&bundle, &mut report, e.into(), Some(&cgroup)),
    };
    let socket = cfg.socket_path(&bundle);
    let address = format!("unix://{}", socket.display());
    let files = crate::exit::write_atomic(
        &bundle.join(PID_FILE),
        std::process::id().to_string().as_bytes(),
    )
    .and_then(|()| crate::exit::write_atomic(&bundle.join(ADDRESS_FILE), address.as_bytes()));
    if let Err(e) = files {
        eprintln!("berth-shim: writing shim.pid/address: {e}");
    }
    send(&mut report, &Report::Address(address));
    drop(report);

    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth-shim: tokio runtime: {e}");
            crate::sys::exit_now(1);
        }
    };
    let code = match rt.block_on(serve(cfg, bundle, cgroup, spawned, log, listener)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth-shim: {}", e.chain());
            1
        }
    };
    drop(rt);
    std::process::exit(code)
}

/// Cleans up, then reports: the launcher returns as soon as it has the report, so nothing
/// may be left behind after it.
fn fail(bundle: &Path, report: &mut File, e: StartError, cgroup: Option<&Cgroup>) -> ! {
    eprintln!("berth-shim: start failed: {}", e.message);
    if let Some(cg) = cgroup
        && let Err(err) = cg.remove_blocking()
    {
        eprintln!("berth-shim: {}", ShimError::from(err).chain());
    }
    let _ = std::fs::remove_dir(bundle.join("rootfs"));
    write_start_error(bundle, &e);
    let mut line = serde_json::to_vec(&Report::Error(e.clone())).unwrap_or_default();
    line.push(b'\n');
    let _ = report.write_all(&line);
    std::process::exit(e.kind.exit_code())
}

type Setup = (process::Spawned, UnixListener, Option<LogSink>);

fn setup(cfg: &Config, bundle: &Path, cgroup: &Cgroup) -> Result<Setup, ShimError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| ShimError::sys("PR_SET_CHILD_SUBREAPER", e))?;
    let socket = cfg.socket_path(bundle);
    if socket.as_os_str().len() >= 108 {
        return Err(ShimError::InvalidArgument(format!(
            "socket path {} is longer than a unix socket allows (107 bytes); set \"socket\" in config.json",
            socket.display()
        )));
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| ShimError::io(&socket, e))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ShimError::io(&socket, e))?;
    let log = match &cfg.log {
        Some(l) => Some(LogSink::new(
            JsonLog::open(l).map_err(|e| ShimError::io(&l.path, e))?,
        )),
        None => None,
    };
    cgroup.create()?;
    if let Err(e) = cgroup
        .restrict_devices(&cfg.device_rules)
        .and_then(|()| cgroup.apply_limits(&cfg.resources))
    {
        let _ = cgroup.remove_blocking();
        let _ = std::fs::remove_file(&socket);
        return Err(e.into());
    }
    let spawned = process::spawn_container(cfg, &bundle.join("rootfs"), cgroup);
    match spawned {
        Ok(s) => Ok((s, listener, log)),
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            Err(e)
        }
    }
}

async fn serve(
    cfg: Config,
    bundle: PathBuf,
    cgroup: Cgroup,
    spawned: process::Spawned,
    log: Option<LogSink>,
    listener: UnixListener,
) -> Result<(), ShimError> {
    let io_err = |e| ShimError::io(&bundle, e);
    listener.set_nonblocking(true).map_err(io_err)?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(io_err)?;
    let shim = Shim::new(cfg, bundle.clone(), cgroup, spawned, log)?;
    let reaper = tokio::spawn(reaper::run(shim.clone()));
    let stop = shim.stopped();
    tokio::pin!(stop);
    let mut calls = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            r = listener.accept() => match r {
                Ok((conn, _)) => {
                    let shim = shim.clone();
                    calls.spawn(async move {
                        let Some((call, hangup)) = Call::accept(conn).await else {
                            return;
                        };
                        // A client that hangs up cancels its call (a Wait, an Attach).
                        tokio::select! {
                            () = rpc::handle(&shim, call) => {}
                            () = hangup.wait() => {}
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    eprintln!("berth-shim: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
        }
    }
    // The calls in flight, Delete's own answer among them, finish before the shim exits; an
    // attached client cannot keep a deleted shim alive beyond the grace period.
    let drain = async { while calls.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    reaper.abort();
    Ok(())
}

/// The shim's own files in the bundle (exit.json and start-error.json stay).
pub(crate) fn remove_files(cfg: &Config, bundle: &Path) {
    let _ = std::fs::remove_file(cfg.socket_path(bundle));
    let _ = std::fs::remove_file(bundle.join(ADDRESS_FILE));
    let _ = std::fs::remove_file(bundle.join(PID_FILE));
    let _ = std::fs::remove_dir(bundle.join("rootfs"));
}
