//! `--oom-score-adj`: the shim writes the value into its new child's
//! `/proc/<pid>/oom_score_adj` (the host's procfs, before the child enters the container's
//! mount namespace), so the container's init, or an exec's intermediate process, and every
//! process they create inherit it, as runc applies `process.oomScoreAdj` before exec.

use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::error::ShimError;

/// Sets `pid`'s score adjustment to `value` under `proc_root` (`/proc`). A value equal to the
/// current one is not written: lowering a score takes CAP_SYS_RESOURCE, so an unchanged
/// value must not need it.
pub(crate) fn set(proc_root: &Path, pid: Pid, value: i32) -> Result<(), ShimError> {
    let path: PathBuf = proc_root.join(pid.to_string()).join("oom_score_adj");
    let current = std::fs::read_to_string(&path).map_err(|e| ShimError::io(&path, e))?;
    if current.trim().parse::<i32>().ok() == Some(value) {
        return Ok(());
    }
    std::fs::write(&path, value.to_string()).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (a value below the engine's own takes CAP_SYS_RESOURCE)"
        } else {
            ""
        };
        ShimError::Precondition(format!(
            "failed to set oom_score_adj to {value}: write {}: {e}{hint}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(current: &str) -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("42");
        std::fs::create_dir(&dir).unwrap();
        let f = dir.join("oom_score_adj");
        std::fs::write(&f, current).unwrap();
        (t, f)
    }

    #[test]
    fn writes_a_new_value_only() {
        let (t, f) = fixture("0\n");
        set(t.path(), Pid::from_raw(42), 500).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "500");
        // Unchanged: not written at all (the kernel's newline stays).
        let (t, f) = fixture("-200\n");
        set(t.path(), Pid::from_raw(42), -200).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "-200\n");
        let e = set(t.path(), Pid::from_raw(7), 1).unwrap_err();
        assert!(e.to_string().contains("7/oom_score_adj"), "{e}");
    }

    #[test]
    fn a_real_process_takes_it() {
        // Raising a score needs no privilege: this test process's own, by one.
        let path = format!("/proc/{}/oom_score_adj", Pid::this());
        let before: i32 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let want = (before + 1).min(1000);
        set(Path::new("/proc"), Pid::this(), want).unwrap();
        let after: i32 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(after, want);
    }
}
