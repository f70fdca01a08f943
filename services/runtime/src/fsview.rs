//! A view of a container's filesystem for the filesystem API (docker cp, export): a thread of
//! its own whose root directory is the container's root, so that the kernel resolves every
//! path, symlink and `..` inside the container (a container swapping a path for a symlink
//! meanwhile reaches nothing outside it, CVE-2018-15664). As moby's `openContainerFS`:
//!
//! - a running container: the thread joins the container's mount namespace, takes a private
//!   copy of it (so the container never sees what the view does), and unmounts /proc, /sys,
//!   /dev and the tmpfs mounts there: the view holds the root filesystem, the volumes and
//!   binds, as moby's (which never has the tmpfs mounts: a copy at a tmpfs path reads and
//!   writes the root filesystem's directory under it, running or not);
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
    /// A running container: the host pid of its main process, and its tmpfs mounts'
    /// destinations (left out of the view).
    Running { pid: u32, tmpfs: Vec<String> },
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
            return Ok(Source::Running {
                pid: c.state.pid,
                tmpfs: tmpfs_destinations(c),
            });
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

/// The destinations of the container's tmpfs mounts (`--tmpfs`, `--mount type=tmpfs`), the
/// deepest first.
fn tmpfs_destinations(c: &Container) -> Vec<String> {
    let mut d: Vec<String> = c
        .spec
        .tmpfs
        .keys()
        .cloned()
        .chain(
            c.mount_points
                .iter()
                .filter(|m| m.r#type == pb::mount_spec::Type::Tmpfs as i32)
                .map(|m| m.destination.clone()),
        )
        .collect();
    d.sort_by_key(|p| std::cmp::Reverse(p.len()));
    d.dedup();
    d
}

fn errno(what: &str) -> impl Fn(nix::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Makes the calling thread's root the container's filesystem.
fn enter(src: &Source) -> Result<(), String> {
    match src {
        Source::Running { pid, tmpfs } => {
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
            // Not detached: one with a volume or bind mounted below it stays (busy), so that
            // the view keeps that mount.
            for t in tmpfs {
                let _ = umount2(t.as_str(), MntFlags::UMOUNT_NOFOLLOW);
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
            for m in by_depth(mounts) {
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
        read_only(&target)?;
        // As in the container: every mount below it too, where it is made so there.
        if !m.non_recursive && crate::read_only::option(m).is_ok_and(|o| o == "rro") {
            let info = std::fs::read_to_string("/proc/thread-self/mountinfo")
                .map_err(|e| format!("reading the view's mounts: {e}"))?;
            for below in mounts_below(&info, &target) {
                read_only(&below)?;
            }
        }
    }
    Ok(())
}

fn read_only(target: &Path) -> Result<(), String> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(errno("remounting read-only"))
}

/// Parents before children (as the shim mounts them), so that a mount on /data does not
/// hide one on /data/sub; stable for mounts at the same depth.
fn by_depth(mounts: &[pb::MountPoint]) -> Vec<&pb::MountPoint> {
    let mut ordered: Vec<&pb::MountPoint> = mounts.iter().collect();
    ordered.sort_by_key(|m| Path::new(&m.destination).components().count());
    ordered
}

/// The mount points strictly below `top` in `mountinfo` (its fifth field, with the kernel's
/// octal escapes of spaces, tabs, newlines and backslashes undone).
fn mounts_below(mountinfo: &str, top: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p != top && p.starts_with(top))
        .collect()
}

fn unescape(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut rest = p;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
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
        Source::Running { .. } => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parents_first_and_the_mounts_below_one() {
        let point = |d: &str| pb::MountPoint {
            destination: d.to_owned(),
            ..Default::default()
        };
        let mounts = [point("/data/ro"), point("/a"), point("/data"), point("/b")];
        let order: Vec<&str> = by_depth(&mounts)
            .iter()
            .map(|m| m.destination.as_str())
            .collect();
        assert_eq!(order, ["/a", "/data", "/b", "/data/ro"]);
        let info = "\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
30 22 0:30 / /s/data rw - ext4 /dev/sda1 rw
31 30 0:31 / /s/data/sub rw - tmpfs tmpfs rw
32 31 0:32 / /s/data/sub/with\\040space rw - tmpfs tmpfs rw
33 22 0:33 / /s/database rw - tmpfs tmpfs rw
";
        assert_eq!(
            mounts_below(info, Path::new("/s/data")),
            [
                PathBuf::from("/s/data/sub"),
                PathBuf::from("/s/data/sub/with space")
            ]
        );
    }

    #[test]
    fn tmpfs_mounts_of_both_kinds_deepest_first() {
        let mut c = crate::container::tests::sample('a', "t");
        c.spec.tmpfs.insert("/run".to_owned(), String::new());
        c.spec
            .tmpfs
            .insert("/run/a/b".to_owned(), "size=1m".to_owned());
        c.mount_points.push(pb::MountPoint {
            r#type: pb::mount_spec::Type::Tmpfs as i32,
            destination: "/run/a".to_owned(),
            ..Default::default()
        });
        c.mount_points.push(pb::MountPoint {
            r#type: pb::mount_spec::Type::Volume as i32,
            source: "/var/lib/v/_data".to_owned(),
            destination: "/data".to_owned(),
            ..Default::default()
        });
        assert_eq!(tmpfs_destinations(&c), ["/run/a/b", "/run/a", "/run"]);
        c.state.status = crate::container::Status::Running;
        c.state.pid = 42;
        match Source::of(&c, PathBuf::new()).unwrap() {
            Source::Running { pid, tmpfs } => {
                assert_eq!(pid, 42);
                assert_eq!(tmpfs.len(), 3);
            }
            other => panic!("{other:?}"),
        }
    }
}
