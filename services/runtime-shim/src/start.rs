//! `berth-shim start --bundle DIR`: detaches the shim from the launcher (fork, setsid, fork:
//! the shim is re-parented to init, or to the nearest subreaper, and survives the launcher),
//! waits until the container's process is created, and returns the socket address or the
//! start error (also written to `<bundle>/start-error.json`).

use std::{
    fs::File,
    io::Read,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use nix::{
    fcntl::OFlag,
    sys::wait::waitpid,
    unistd::{ForkResult, pipe2, setsid},
};

pub use berth_bundle::START_ERROR_FILE;

use crate::{
    config,
    daemon::{self, Report},
    error::{StartError, StartErrorKind},
    exit::EXIT_FILE,
    sys,
};

pub fn write_start_error(bundle: &Path, e: &StartError) {
    let _ = e.write(bundle);
}

/// Starts the shim for the bundle; returns the address it serves on.
pub fn start(bundle: &Path) -> Result<String, StartError> {
    let bundle: PathBuf = bundle
        .canonicalize()
        .map_err(|e| StartError::other(format!("bundle {}: {e}", bundle.display())))?;
    let _ = std::fs::remove_file(bundle.join(START_ERROR_FILE));
    let cfg = match config::load(&bundle) {
        Ok(c) => c,
        Err(e) => {
            let e = StartError::from(e);
            write_start_error(&bundle, &e);
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(bundle.join(EXIT_FILE));
    let (r, w) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| StartError::other(format!("pipe: {}", crate::error::GoText::go_text(&e))))?;
    match sys::fork()
        .map_err(|e| StartError::other(format!("fork: {}", crate::error::GoText::go_text(&e))))?
    {
        ForkResult::Parent { child } => {
            drop(w);
            let text = read_line(File::from(r));
            let _ = waitpid(child, None);
            match serde_json::from_slice::<Report>(&text) {
                Ok(Report::Address(a)) => Ok(a),
                Ok(Report::Error(e)) => Err(e),
                Err(_) => {
                    let e = StartError::other(format!(
                        "the shim exited before reporting; see {}",
                        bundle.join("shim.log").display()
                    ));
                    write_start_error(&bundle, &e);
                    Err(e)
                }
            }
        }
        ForkResult::Child => {
            drop(r);
            let _ = setsid();
            match sys::fork() {
                Ok(ForkResult::Parent { .. }) => sys::exit_now(0),
                Ok(ForkResult::Child) => {
                    if let Err(e) = redirect_stdio(&bundle) {
                        eprintln!("berth-shim: redirecting stdio: {e}");
                    }
                    daemon::run(cfg, bundle, File::from(w))
                }
                Err(_) => sys::exit_now(StartErrorKind::Other.exit_code()),
            }
        }
    }
}

/// One report line. Not "until EOF": a container held by wait_for_start still has a copy of
/// the pipe until it execs.
fn read_line(mut f: File) -> Vec<u8> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return text,
            Ok(n) => {
                text.extend_from_slice(&buf[..n]);
                if let Some(i) = text.iter().position(|b| *b == b'\n') {
                    text.truncate(i);
                    return text;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return text,
        }
    }
}

/// The shim keeps nothing of the launcher's: stdin and stdout are /dev/null (so the launcher
/// reading our stdout sees EOF), stderr is `<bundle>/shim.log`.
fn redirect_stdio(bundle: &Path) -> std::io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(bundle.join("shim.log"))?;
    let null = OwnedFd::from(null);
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(OwnedFd::from(log))?;
    Ok(())
}
