//! `berth-shim probe rro`: whether this kernel can make a mount read-only with every mount
//! below it (mount_setattr(2) with `AT_RECURSIVE`, Linux 5.12), found by trying, as moby's
//! `kernelSupportsRecursivelyReadOnly`: a tmpfs mounted on a fresh directory and made
//! recursively read-only. The calling thread first leaves the host's mount namespace for a
//! private one, so the test mount never shows on the host and ends with the thread. The
//! runtime runs this once and keeps the answer.

use std::path::{Path, PathBuf};

use nix::{
    errno::Errno,
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, unshare},
};

/// Go's text of an errno (`syscall.Errno.Error()`): "function not implemented".
fn go_errno(e: Errno) -> String {
    let text = e.desc();
    let mut chars = text.chars();
    chars
        .next()
        .map(|f| f.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Why a recursively read-only mount cannot be made here (moby's words), if it cannot.
pub fn recursive_read_only() -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).map_err(|e| {
        format!(
            "failed to leave the host's mount namespace: {}",
            go_errno(e)
        )
    })?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("failed to make / private: {}", go_errno(e)))?;
    let dir = fresh_dir()?;
    let r = on_tmpfs(&dir);
    let _ = std::fs::remove_dir(&dir);
    r
}

/// A new empty directory (Go's `os.MkdirTemp("", "berth-detect-rro")`).
fn fresh_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    let mut last = String::new();
    for n in 0..16u32 {
        let dir = base.join(format!("berth-detect-rro{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("failed to create a temp directory: {last}"))
}

fn on_tmpfs(dir: &Path) -> Result<(), String> {
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| {
        format!(
            "failed to mount tmpfs on \"{}\": {}",
            dir.display(),
            go_errno(e)
        )
    })?;
    let r = crate::sys::make_recursively_read_only(dir)
        .map_err(|e| format!("failed to call mount_setattr: {}", go_errno(e)));
    let _ = umount2(dir, MntFlags::MNT_DETACH);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_read_as_go_writes_them() {
        assert_eq!(go_errno(Errno::ENOSYS), "function not implemented");
        assert_eq!(go_errno(Errno::EPERM), "operation not permitted");
    }

    /// This host's kernel (5.12 or later, as the engine's hosts) has it; the probe leaves
    /// no mount behind on the host. Run as root, as the engine.
    #[test]
    fn this_kernel_makes_recursively_read_only_mounts() {
        if !nix::unistd::geteuid().is_root() {
            panic!("run as root: the probe mounts a tmpfs");
        }
        let r = std::thread::spawn(recursive_read_only).join().unwrap();
        assert_eq!(r, Ok(()));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains("berth-detect-rro"), "{mounts}");
    }
}
