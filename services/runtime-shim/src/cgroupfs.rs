//! The container's own cgroup at `/sys/fs/cgroup`, as runc builds dockerd's `cgroup` mount
//! (which hierarchies, named how: `berth_cgroup::view`). Read-only unless /sys is writable
//! (`--privileged`, for which dockerd clears the mount's read-only flag too).
//!
//! - v1 (legacy or hybrid host): a tmpfs, one directory per hierarchy and a symlink per
//!   controller of a comounted one; each hierarchy mounted afresh in a private cgroup
//!   namespace (the kernel roots it at the container's cgroup), else the container's
//!   directory bound from the host.
//! - v2-only host: the unified hierarchy on `/sys/fs/cgroup` itself, mounted or bound the
//!   same way.
//!
//! Runs in the container's mount namespace (and cgroup namespace, if private) before
//! pivot_root, after /sys is mounted.

use std::path::Path;

use berth_cgroup::ViewMount;
use nix::mount::{MsFlags, mount};

use crate::{
    config::Config,
    error::StartError,
    rootfs::{bind, remount},
};

fn fail(what: impl std::fmt::Display, e: impl crate::error::GoText) -> StartError {
    StartError::other(format!("{what}: {}", e.go_text()))
}

const FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_RELATIME);

/// What to mount, read from the host's mountinfo: in the host's cgroup namespace, before the
/// container gets its own (in which the cgroup mounts' roots are shown relative to it).
pub(crate) fn view(cfg: &Config) -> Result<Vec<ViewMount>, StartError> {
    berth_cgroup::host_view(&cfg.cgroup_path).map_err(|e| fail("reading the cgroup mounts", e))
}

/// Mounts the container's view of its cgroup on `<rootfs>/sys/fs/cgroup`.
pub(crate) fn mount_view(
    cfg: &Config,
    rootfs: &Path,
    view: &[ViewMount],
) -> Result<(), StartError> {
    let target = rootfs.join("sys/fs/cgroup");
    if view.is_empty() || !target.is_dir() {
        return Ok(());
    }
    let private = cfg.namespaces.cgroup;
    let read_only = !cfg.writable_sysfs;
    if let [only] = view
        && only.v2
    {
        return hierarchy(only, &target, private, read_only);
    }
    mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        FLAGS,
        Some("mode=755"),
    )
    .map_err(|e| fail("mounting a tmpfs on /sys/fs/cgroup", e))?;
    for m in view {
        let dir = target.join(&m.name);
        std::fs::create_dir_all(&dir).map_err(|e| fail(dir.display(), e))?;
        hierarchy(m, &dir, private, read_only)?;
        for link in &m.links {
            let path = target.join(link);
            std::os::unix::fs::symlink(&m.name, &path).map_err(|e| fail(path.display(), e))?;
        }
    }
    if read_only {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | FLAGS,
            Some("mode=755"),
        )
        .map_err(|e| fail("making /sys/fs/cgroup read-only", e))?;
    }
    Ok(())
}

/// One hierarchy on `dir`: a fresh mount in a private cgroup namespace, else the container's
/// directory bound; then read-only (a per-mount flag: the superblock is the host's).
fn hierarchy(m: &ViewMount, dir: &Path, private: bool, read_only: bool) -> Result<(), StartError> {
    let what = format!("/sys/fs/cgroup/{}", m.name);
    let r = if private {
        let (fs, data) = if m.v2 {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(m.data.as_str()))
        };
        mount(Some(fs), dir, Some(fs), FLAGS, data)
    } else {
        bind(&m.host_dir, dir, MsFlags::MS_REC).and_then(|()| remount(dir, FLAGS))
    };
    r.map_err(|e| fail(format_args!("mounting {what}"), e))?;
    if read_only {
        remount(dir, MsFlags::MS_RDONLY | FLAGS)
            .map_err(|e| fail(format_args!("making {what} read-only"), e))?;
    }
    Ok(())
}
