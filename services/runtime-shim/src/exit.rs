//! The exit status as the shim records it: `exit.json` in the bundle (`berth_bundle::exit`,
//! shared with the runtime), written atomically before anyone is told the process stopped, so
//! a runtime that was down learns every exit from disk.

use std::path::Path;

pub use berth_bundle::{EXIT_FILE, ExitStatus, exit_path, rfc3339_nano, write_atomic};
use nix::sys::wait::WaitStatus;

/// From a wait status that means the process is gone; None for the others.
pub fn from_wait(ws: WaitStatus) -> Option<ExitStatus> {
    match ws {
        WaitStatus::Exited(_, code) => Some(ExitStatus::new(code, None)),
        WaitStatus::Signaled(_, sig, _) => {
            Some(ExitStatus::new(128 + sig as i32, Some(sig as i32)))
        }
        _ => None,
    }
}

pub fn write(bundle: &Path, status: &ExitStatus) -> std::io::Result<()> {
    status.write(bundle)
}

/// The recorded exit; None when there is none or it cannot be read.
pub fn read(bundle: &Path) -> Option<ExitStatus> {
    ExitStatus::read(bundle).ok().flatten()
}

#[cfg(test)]
mod tests {
    use nix::{sys::signal::Signal, unistd::Pid};

    use super::*;

    #[test]
    fn wait_statuses() {
        let p = Pid::from_raw(1);
        let e = from_wait(WaitStatus::Exited(p, 3)).unwrap();
        assert_eq!((e.exit_code, e.signal), (3, None));
        let s = from_wait(WaitStatus::Signaled(p, Signal::SIGTERM, false)).unwrap();
        assert_eq!((s.exit_code, s.signal), (143, Some(15)));
        assert!(from_wait(WaitStatus::StillAlive).is_none());
    }

    #[test]
    fn exit_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_none());
        let s = ExitStatus::failed(127);
        write(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path()).unwrap(), s);
    }
}
