//! Facts about the filesystem that holds overlay2 layers (`DriverStatus` in `/info`).

use std::path::Path;

use nix::sys::statfs::{self, FsType};

/// The backing filesystem's name as moby reports it (`extfs`, `xfs`, `btrfs`, ...).
pub(crate) fn backing_filesystem(path: &Path) -> String {
    let Ok(fs) = statfs::statfs(path) else {
        return "<unknown>".to_owned();
    };
    let t = fs.filesystem_type();
    let known: [(FsType, &str); 6] = [
        (statfs::EXT4_SUPER_MAGIC, "extfs"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
    ];
    known
        .iter()
        .find(|(m, _)| *m == t)
        .map_or_else(|| format!("0x{:x}", t.0), |(_, n)| (*n).to_owned())
}

/// Whether directory entries carry their type (`d_type`), which overlayfs requires.
pub(crate) fn supports_d_type(dir: &Path) -> std::io::Result<bool> {
    let probe = tempfile_dir(dir)?;
    std::fs::write(probe.join("f"), b"")?;
    let mut d = nix::dir::Dir::open(
        &probe,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )?;
    let typed = d
        .iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_bytes() == b"f")
        .all(|e| e.file_type().is_some());
    drop(d);
    std::fs::remove_dir_all(&probe)?;
    Ok(typed)
}

fn tempfile_dir(parent: &Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(parent)?;
    let p = parent.join(format!(".d_type-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir(&p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!backing_filesystem(dir.path()).is_empty());
        // Every filesystem this runs on in CI (ext4, xfs, tmpfs) has d_type.
        assert!(supports_d_type(dir.path()).unwrap());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe removed"
        );
    }
}
