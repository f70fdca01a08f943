//! `/dev` inside the container: a tmpfs with Docker's standard nodes and links, its own devpts
//! instance (so the container's ptys are /dev/pts/N of its own), /dev/shm and /dev/mqueue.

use std::path::Path;

use nix::{
    mount::{MsFlags, mount},
    sys::stat::{Mode, SFlag, makedev, mknod, umask},
};

use crate::error::StartError;

/// (name, major, minor): Docker's default devices, all mode 0666.
const NODES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

fn fail(what: impl std::fmt::Display, e: impl crate::error::GoText) -> StartError {
    StartError::other(format!("{what}: {}", e.go_text()))
}

/// Makes the extra device nodes (`--device`, `--privileged`) under `rootfs`, as they are on the
/// host; a standard node already there is kept.
pub(crate) fn make_nodes(
    rootfs: &Path,
    nodes: &[berth_bundle::DeviceNode],
) -> Result<(), StartError> {
    let old = umask(Mode::empty());
    let r = nodes.iter().try_for_each(|n| {
        let dest = crate::pathutil::secure_join(rootfs, &n.path);
        if dest.symlink_metadata().is_ok() {
            return Ok(());
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(dir.display(), e))?;
        }
        let kind = match n.kind {
            berth_bundle::DeviceKind::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFCHR,
        };
        mknod(
            &dest,
            kind,
            Mode::from_bits_truncate(n.file_mode),
            makedev(u64::from(n.major), u64::from(n.minor)),
        )
        .map_err(|e| fail(format_args!("mknod {}", n.path), e))?;
        nix::unistd::chown(
            &dest,
            Some(nix::unistd::Uid::from_raw(n.uid)),
            Some(nix::unistd::Gid::from_raw(n.gid)),
        )
        .map_err(|e| fail(format_args!("chown {}", n.path), e))
    });
    umask(old);
    r
}

/// Mounts and fills `<rootfs>/dev`.
pub(crate) fn setup(rootfs: &Path, shm_size: u64) -> Result<(), StartError> {
    let dev = rootfs.join("dev");
    std::fs::create_dir_all(&dev).map_err(|e| fail(dev.display(), e))?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(|e| fail("mounting tmpfs on /dev", e))?;

    let old = umask(Mode::empty());
    let nodes = NODES.iter().try_for_each(|(name, major, minor)| {
        mknod(
            &dev.join(name),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(*major, *minor),
        )
        .map_err(|e| fail(format_args!("mknod /dev/{name}"), e))
    });
    umask(old);
    nodes?;
    for (name, target) in LINKS {
        // As runc: /dev/core only where the kernel has a /proc/kcore.
        if *name == "core" && !Path::new(target).exists() {
            continue;
        }
        std::os::unix::fs::symlink(target, dev.join(name))
            .map_err(|e| fail(format_args!("symlink /dev/{name}"), e))?;
    }

    let sub = |name: &str, fstype: &str, flags: MsFlags, data: Option<&str>| {
        let p = dev.join(name);
        std::fs::create_dir_all(&p).map_err(|e| fail(p.display(), e))?;
        mount(Some(fstype), &p, Some(fstype), flags, data)
            .map_err(|e| fail(format_args!("mounting {fstype} on /dev/{name}"), e))
    };
    sub(
        "pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = match shm_size {
        0 => "mode=1777,size=65536k".to_owned(),
        n => format!("mode=1777,size={n}"),
    };
    sub(
        "shm",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&shm),
    )?;
    sub(
        "mqueue",
        "mqueue",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    Ok(())
}
