//! What docker cp does inside a filesystem view (see `fsview`): stat a path, tar it, extract a
//! tar into a directory, as moby's `daemon/archive*.go` and `containerfs_linux.go`. These run
//! on the view's thread, whose root is the container's: paths are the container's.

use std::{
    io::{self, Read, Write},
    os::unix::fs::MetadataExt,
    path::Path,
};

use berth_proto::runtime::v1 as pb;
use berth_treetar::{ExtractError, ExtractOptions, TreeTar, Whiteouts};

/// Why a filesystem API call failed inside the view.
#[derive(Debug)]
pub(crate) enum FsError {
    /// The path does not exist (404 "Could not find the file ...").
    NotFound,
    /// The request is refused (400).
    Invalid(String),
    Io(io::Error),
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            FsError::NotFound
        } else {
            FsError::Io(e)
        }
    }
}

/// Go's `filepath.Join("/", p)` (cleaned, `..` stopping at the root) keeping a trailing `/`
/// or `/.` of `p` (go-archive's `PreserveTrailingDotOrSeparator`).
pub(crate) fn container_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let clean = format!("/{}", parts.join("/"));
    let dot = p == "." || p.ends_with("/.");
    match (dot, p.ends_with('/') && clean != "/") {
        (true, _) if clean == "/" => "/.".to_owned(),
        (true, _) => format!("{clean}/."),
        (false, true) => format!("{clean}/"),
        _ => clean,
    }
}

/// Go's `filepath.Base`.
fn base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".to_owned();
    }
    t.rsplit('/').next().unwrap_or(t).to_owned()
}

/// Go's `os.FileMode` of a `st_mode`.
pub(crate) fn go_mode(m: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut out = m & 0o777;
    out |= match m & 0o170000 {
        0o060000 => DEVICE,
        0o020000 => DEVICE | CHAR,
        0o040000 => DIR,
        0o010000 => PIPE,
        0o120000 => SYMLINK,
        0o140000 => SOCKET,
        _ => 0,
    };
    if m & 0o4000 != 0 {
        out |= SETUID;
    }
    if m & 0o2000 != 0 {
        out |= SETGID;
    }
    if m & 0o1000 != 0 {
        out |= STICKY;
    }
    out
}

/// The PathStat of `path` (already a container path): its own metadata (a symlink is not
/// followed), and for a symlink its target resolved inside the container.
pub(crate) fn stat(path: &str) -> Result<pb::PathStat, FsError> {
    let meta = std::fs::symlink_metadata(path)?;
    let link_target = if meta.file_type().is_symlink() {
        berth_bundle::secure_join(Path::new("/"), path)
            .display()
            .to_string()
    } else {
        String::new()
    };
    Ok(pb::PathStat {
        name: base(path),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mode: go_mode(meta.mode()),
        mtime: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        link_target,
    })
}

/// Writes the tar of `path` (a container path) to `out`: a directory as its base name with
/// everything under it (`dir/.` as `./`), anything else as one entry of its base name.
pub(crate) fn archive(path: &str, out: impl Write) -> Result<(), FsError> {
    let meta = std::fs::symlink_metadata(path)?;
    let name = base(path);
    let mut t = TreeTar::new(out, Whiteouts::Keep);
    if meta.is_dir() {
        let name = if name == "/" { String::new() } else { name };
        t.append_tree(Path::new(path), &name)?;
    } else {
        t.append_tree(Path::new(path.trim_end_matches('/')), &name)?;
    }
    t.finish()?;
    Ok(())
}

/// What an extraction checks and does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extract {
    pub(crate) no_overwrite_dir_non_dir: bool,
    /// The container's user, when docker cp -a asks for its ownership.
    pub(crate) copy_uid_gid_user: Option<String>,
    pub(crate) mounts: Vec<pb::MountPoint>,
    pub(crate) readonly_rootfs: bool,
}

/// moby's `checkWritablePath`: the mount the path is in decides, else the root filesystem.
/// Of nested mounts (a read-only volume under a writable one) the deepest holds the path
/// (moby takes the first its map yields, in a random order).
fn check_writable(path: &str, x: &Extract) -> Result<(), FsError> {
    let holding = x
        .mounts
        .iter()
        .filter(|m| {
            let dest = m.destination.trim_end_matches('/');
            path == dest || path.starts_with(&format!("{dest}/"))
        })
        .max_by_key(|m| m.destination.trim_end_matches('/').len());
    if let Some(m) = holding {
        if m.read_only {
            return Err(FsError::Invalid(
                "mounted volume is marked read-only".to_owned(),
            ));
        }
        return Ok(());
    }
    if x.readonly_rootfs {
        return Err(FsError::Invalid(
            "container rootfs is marked read-only".to_owned(),
        ));
    }
    Ok(())
}

/// Extracts the tar `input` into the directory `path` (a container path; symlinks followed).
pub(crate) fn extract(path: &str, input: impl Read, x: &Extract) -> Result<(), FsError> {
    let real = std::fs::canonicalize(path)?;
    let meta = std::fs::symlink_metadata(&real)?;
    if !meta.is_dir() {
        return Err(FsError::Invalid(
            "extraction point is not a directory".to_owned(),
        ));
    }
    let real_str = real.display().to_string();
    check_writable(&real_str, x)?;
    let chown = match &x.copy_uid_gid_user {
        Some(u) if !u.is_empty() => Some(crate::archive_user::lookup(u).map_err(FsError::Invalid)?),
        _ => None,
    };
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: x.no_overwrite_dir_non_dir,
        chown,
    };
    // The upload is written under `real` as it is read: it stops before the filesystem there
    // is down to Berth's reserve.
    let input = berth_service::FreeSpace::new(&real).bound(input);
    berth_treetar::extract(input, &real, opts).map_err(|e| match e {
        ExtractError::Invalid(m) => FsError::Invalid(m),
        ExtractError::Io(e) => FsError::Io(e),
    })
}

/// docker export: everything under the view's root, named relative to it.
pub(crate) fn export(root: &Path, out: impl Write) -> Result<(), FsError> {
    let mut t = TreeTar::new(out, Whiteouts::Keep);
    t.append_tree(root, "")?;
    t.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_keep_their_trailing_dot_or_slash() {
        for (p, want) in [
            ("etc", "/etc"),
            ("/etc/", "/etc/"),
            ("/etc/.", "/etc/."),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/", "/"),
            (".", "/."),
            ("a//b/./c", "/a/b/c"),
        ] {
            assert_eq!(container_path(p), want, "{p}");
        }
        assert_eq!(base("/etc/."), ".");
        assert_eq!(base("/etc/"), "etc");
        assert_eq!(base("/"), "/");
    }

    #[test]
    fn modes_are_go_file_modes() {
        // The example of Docker's API reference: a 0755 directory.
        assert_eq!(go_mode(0o040755), 2_147_484_141);
        assert_eq!(go_mode(0o100644), 0o644);
        assert_eq!(go_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_mode(0o104755), (1 << 23) | 0o755);
    }

    #[test]
    fn writable_paths_as_dockerd_checks_them() {
        let x = Extract {
            mounts: vec![pb::MountPoint {
                destination: "/data".into(),
                read_only: true,
                ..Default::default()
            }],
            readonly_rootfs: true,
            ..Default::default()
        };
        let e = |p| match check_writable(p, &x) {
            Err(FsError::Invalid(m)) => m,
            other => format!("{other:?}"),
        };
        assert_eq!(e("/data/x"), "mounted volume is marked read-only");
        assert_eq!(e("/tmp"), "container rootfs is marked read-only");
        assert_eq!(e("/database"), "container rootfs is marked read-only");
    }

    #[test]
    fn the_deepest_of_nested_mounts_decides() {
        let point = |d: &str, ro| pb::MountPoint {
            destination: d.into(),
            read_only: ro,
            ..Default::default()
        };
        // Listed parent first and child first.
        for mounts in [
            vec![
                point("/data", false),
                point("/data/ro", true),
                point("/data/ro/rw/", false),
            ],
            vec![
                point("/data/ro/rw/", false),
                point("/data/ro", true),
                point("/data", false),
            ],
        ] {
            let x = Extract {
                mounts,
                ..Default::default()
            };
            let ok = |p| check_writable(p, &x).is_ok();
            assert!(ok("/data"));
            assert!(ok("/data/rox"));
            assert!(!ok("/data/ro"));
            assert!(!ok("/data/ro/sub"));
            assert!(ok("/data/ro/rw"));
            assert!(ok("/data/ro/rw/x"));
        }
    }
}
