//! A view of a container's filesystem for the filesystem API (docker cp, export): a thread of
//! its own whose root directory is the container's root, so that the kernel resolves every
//! path, symlink and `..` inside the container (a container swapping a path for a symlink
//! meanwhile reaches nothing outside it, CVE-2018-15664). As moby's `openContainerFS`:
//!
//! - a running container: the thread joins the container's mount namespace, takes a private
//!   copy of it (so the container never sees what the view does), and unmounts /proc, /sys
//!   and /dev there: the view holds the root filesystem, the volumes, binds and tmpfs mounts;
//! - a container that is not running (it has no shim, nothing is mounted): the thread leaves
//!   the host's mount namespace, mounts the snapshot (read-write, through the mount the images
//!   service prepared) and binds the volumes and bind mounts at their destinations (resolved
//!   inside the root filesystem; read-only ones remounted read-only), then chroots into it.
//!
//! The thread's mount namespace, and every mount in it, end with the thread.

use std::path::{Path, PathBuf};

use berth_bundle::secure_join;
use berth_proto::runtime::v1 as pb;
use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};

use crate::container::Container;

/// Where the view comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The host pid of a running container's main process.
    Running(u32),
    /// A container that is not running: its snapshot mount and its mounts, mounted at
    /// `scratch` (a directory the runtime owns, removed after the view).
    Stopped {
        rootfs: pb::RootfsMount,
        mounts: Vec<pb::MountPoint>,
        scratch: PathBuf,
    },
}

impl Source {
    /// The view of `c`; `scratch` is used when it does not run.
    pub(crate) fn of(c: &Container, scratch: PathBuf) -> Result<Source, String> {
        if c.state.running() && c.state.pid > 0 {
            return Ok(Source::Running(c.state.pid));
        }
        let rootfs = c
            .rootfs
            .clone()
            .ok_or_else(|| format!("container {} has no rootfs", c.id))?;
        Ok(Source::Stopped {
            rootfs,
            mounts: c.mount_points.clone(),
            scratch,
        })
    }
}

fn errno(what: &str) -> impl Fn(nix::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Makes the calling thread's root the container's filesystem.
fn enter(src: &Source) -> Result<(), String> {
    match src {
        Source::Running(pid) => {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
                .map_err(|e| format!("opening the container's mount namespace: {e}"))?;
            unshare(CloneFlags::CLONE_FS).map_err(errno("unshare"))?;
            setns(&ns, CloneFlags::CLONE_NEWNS).map_err(errno("joining the mount namespace"))?;
            unshare(CloneFlags::CLONE_NEWNS).map_err(errno("unshare"))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(errno("making / a slave"))?;
            for fs in ["/proc", "/sys", "/dev"] {
                let _ = umount2(fs, MntFlags::MNT_DETACH);
            }
        }
        Source::Stopped {
            rootfs,
            mounts,
            scratch,
        } => {
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS).map_err(errno("unshare"))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )
            .map_err(errno("making / a slave"))?;
            std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
            mount_rootfs(rootfs, scratch)?;
            for m in mounts {
                bind(scratch, m)?;
            }
            nix::unistd::chroot(scratch.as_path()).map_err(errno("chroot"))?;
        }
    }
    nix::unistd::chdir("/").map_err(errno("chdir"))?;
    Ok(())
}

fn mount_rootfs(rootfs: &pb::RootfsMount, at: &Path) -> Result<(), String> {
    match rootfs.r#type.as_str() {
        "overlay" => mount(
            Some("overlay"),
            at,
            Some("overlay"),
            MsFlags::empty(),
            Some(rootfs.options.join(",").as_str()),
        )
        .map_err(errno("mounting the container's filesystem")),
        "bind" | "rbind" => mount(
            Some(rootfs.source.as_str()),
            at,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(errno("mounting the container's filesystem")),
        other => Err(format!("cannot mount a {other} root filesystem")),
    }
}

/// Binds a volume or bind mount at its destination inside `root` (made when missing, as
/// moby's `createIfNotExists`). tmpfs mounts are left out: their content lives only while
/// the container runs.
fn bind(root: &Path, m: &pb::MountPoint) -> Result<(), String> {
    if m.source.is_empty() {
        return Ok(());
    }
    let target = secure_join(root, &m.destination);
    let is_dir = std::fs::metadata(&m.source)
        .map_err(|e| format!("{}: {e}", m.source))?
        .is_dir();
    let made = if is_dir {
        std::fs::create_dir_all(&target)
    } else {
        target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&target)
                    .map(drop)
            })
    };
    made.map_err(|e| format!("{}: {e}", target.display()))?;
    let mut flags = MsFlags::MS_BIND;
    if !m.non_recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(
        Some(m.source.as_str()),
        &target,
        None::<&str>,
        flags,
        None::<&str>,
    )
    .map_err(errno("binding a mount"))?;
    if m.read_only {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(errno("remounting read-only"))?;
    }
    Ok(())
}

/// Runs `f` in a view of `src` on a thread of its own; the answer is `f`'s result, or why the
/// view could not be made.
pub(crate) fn spawn<T: Send + 'static>(
    src: Source,
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<Result<T, String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let scratch = match &src {
        Source::Stopped { scratch, .. } => Some(scratch.clone()),
        Source::Running(_) => None,
    };
    std::thread::spawn(move || {
        // The view's thread, so its namespace, ends with `f`; the scratch directory is removed
        // from another thread, in the host's namespace.
        let r = std::thread::spawn(move || enter(&src).map(|()| f()))
            .join()
            .unwrap_or_else(|_| Err("the filesystem view's thread panicked".to_owned()));
        if let Some(s) = scratch {
            let _ = std::fs::remove_dir(&s);
        }
        let _ = tx.send(r);
    });
    rx
}
