//! The container's filesystem, built in its new mount namespace: the root filesystem mount
//! (the images service's overlay), /proc, /sys, /dev, bind mounts, the /etc files, then
//! pivot_root; after it, Docker's masked and read-only paths. Nothing here is visible on the
//! host: every mount lives and dies with the container's mount namespace.

use std::path::{Path, PathBuf};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sys::statvfs::{FsFlags, statvfs},
    unistd::{chdir, pivot_root},
};

use crate::{
    config::{BindMount, Config, Mount, TmpfsMount},
    devices,
    error::StartError,
    pathutil::secure_join,
};

fn fail(what: impl std::fmt::Display, e: impl crate::error::GoText) -> StartError {
    StartError::other(format!("{what}: {}", e.go_text()))
}

/// Everything up to and including pivot_root into `rootfs`. With a terminal, /dev/console
/// is created for the pty to be bound on it.
pub(crate) fn prepare(
    cfg: &Config,
    rootfs: &Path,
    cgroup_view: &[berth_cgroup::ViewMount],
) -> Result<(), StartError> {
    // Mounts made here must not propagate back to the host, unless a bind mount is to share
    // them (rshared, shared): then, as runc with Docker's rootfsPropagation=shared, / stays
    // shared and the parent of the root filesystem is made private instead, so that only the
    // shared binds carry mounts back.
    let shared = cfg
        .mounts
        .iter()
        .any(|m| matches!(m.propagation(), "shared" | "rshared"));
    let root_flags = if shared {
        MsFlags::MS_SHARED
    } else {
        MsFlags::MS_REC | MsFlags::MS_SLAVE
    };
    mount(None::<&str>, "/", None::<&str>, root_flags, None::<&str>)
        .map_err(|e| fail("setting the propagation of /", e))?;
    if shared {
        let parent = parent_mount(rootfs);
        mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| fail(format_args!("making {} private", parent.display()), e))?;
    }
    mount_rootfs(&cfg.rootfs, rootfs)?;

    let proc_dir = mkdir_in(rootfs, "/proc")?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| fail("mounting /proc", e))?;
    mount_sys(&mkdir_in(rootfs, "/sys")?, cfg.writable_sysfs)?;
    crate::cgroupfs::mount_view(cfg, rootfs, cgroup_view)?;
    devices::setup(rootfs, cfg.shm_size)?;
    devices::make_nodes(rootfs, &cfg.devices)?;
    if cfg.process.terminal {
        touch(&rootfs.join("dev/console")).map_err(|e| fail("making /dev/console", e))?;
    }
    // Parents before children (Docker sorts by depth), so a mount on /data does not hide one
    // on /data/sub; the sort is stable for mounts at the same depth.
    let mut mounts: Vec<(&str, Result<&BindMount, &TmpfsMount>)> = cfg
        .mounts
        .iter()
        .map(|m| (m.destination.as_str(), Ok(m)))
        .chain(cfg.tmpfs.iter().map(|t| (t.destination.as_str(), Err(t))))
        .collect();
    mounts.sort_by_key(|(d, _)| Path::new(d).components().count());
    for (_, m) in mounts {
        match m {
            Ok(b) => bind_mount(rootfs, b)
                .map_err(|e| mounting(&b.source.display(), &b.destination, e))?,
            Err(t) => tmpfs_mount(rootfs, t).map_err(|e| mounting(&"tmpfs", &t.destination, e))?,
        }
    }
    let etc = &cfg.etc_files;
    // As dockerd: with a read-only root these files are read-only too.
    let mut etc_options = vec!["bind".to_owned()];
    if cfg.readonly_rootfs {
        etc_options.push("ro".to_owned());
    }
    for (src, dst) in [
        (&etc.hostname, "/etc/hostname"),
        (&etc.hosts, "/etc/hosts"),
        (&etc.resolv_conf, "/etc/resolv.conf"),
    ] {
        if let Some(src) = src {
            let m = BindMount {
                source: src.clone(),
                destination: dst.to_owned(),
                options: etc_options.clone(),
                subpath: None,
            };
            bind_mount(rootfs, &m)?;
        }
    }
    if shared {
        enter_keeping_shared(rootfs)
    } else {
        enter(rootfs)
    }
}

/// After pivot_root: masked paths, read-only paths, a read-only root.
pub(crate) fn finish(cfg: &Config) -> Result<(), StartError> {
    // In the container's namespaces, before /proc/sys goes read-only.
    for (k, v) in &cfg.sysctls {
        let path = Path::new("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| fail(format_args!("sysctl {k}={v}"), e))?;
    }
    for p in &cfg.masked_paths {
        mask(Path::new(p))?;
    }
    for p in &cfg.readonly_paths {
        let path = Path::new(p);
        match bind(path, path, MsFlags::MS_REC) {
            Err(nix::errno::Errno::ENOENT) => continue,
            r => r.map_err(|e| fail(format_args!("binding {p}"), e))?,
        }
        remount(path, MsFlags::MS_RDONLY).map_err(|e| fail(format_args!("read-only {p}"), e))?;
    }
    if cfg.readonly_rootfs {
        remount(Path::new("/"), MsFlags::MS_RDONLY).map_err(|e| fail("read-only /", e))?;
    }
    Ok(())
}

/// Binds the pty `slave_path` (inside the container) over /dev/console, as Docker does.
pub(crate) fn bind_console(slave_path: &str) -> Result<(), StartError> {
    bind(
        Path::new(slave_path),
        Path::new("/dev/console"),
        MsFlags::empty(),
    )
    .map_err(|e| fail("binding the pty on /dev/console", e))
}

/// Mounts the root filesystem spec at `target`. Overlay options longer than a page (many
/// layers) are shortened the way containerd does it: lowerdirs relative to their common
/// parent, which the mount resolves from the current directory.
fn mount_rootfs(spec: &Mount, target: &Path) -> Result<(), StartError> {
    let (mut flags, mut data) = parse_options(&spec.options);
    let mut source = spec.source.clone();
    if spec.kind == "bind" {
        flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
    }
    if spec.kind == "overlay" && data.len() >= 4095 {
        data = shorten_overlay(&data)?;
    }
    if spec.kind == "bind" && !Path::new(&source).is_absolute() {
        source = format!("/{source}");
    }
    let fstype = (spec.kind != "bind").then_some(spec.kind.as_str());
    let data_opt = (!data.is_empty()).then_some(data.as_str());
    mount(Some(source.as_str()), target, fstype, flags, data_opt).map_err(|e| {
        fail(
            format_args!("mounting the {} root filesystem", spec.kind),
            e,
        )
    })?;
    if spec.kind == "bind" && flags.contains(MsFlags::MS_RDONLY) {
        remount(target, MsFlags::MS_RDONLY).map_err(|e| fail("read-only rootfs", e))?;
    }
    Ok(())
}

/// Splits mount(8)-style options into flags and filesystem data.
pub(crate) fn parse_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "bind" | "rbind" | "defaults" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Rewrites `lowerdir=` with paths relative to their common parent and chdirs there.
fn shorten_overlay(data: &str) -> Result<String, StartError> {
    let mut parts: Vec<String> = data.split(',').map(str::to_owned).collect();
    let Some(lower) = parts.iter_mut().find(|p| p.starts_with("lowerdir=")) else {
        return Ok(data.to_owned());
    };
    let dirs: Vec<&str> = lower["lowerdir=".len()..].split(':').collect();
    let mut common = PathBuf::from(dirs[0]);
    while !dirs.iter().all(|d| Path::new(d).starts_with(&common)) {
        if !common.pop() {
            return Ok(data.to_owned());
        }
    }
    let rel: Vec<String> = dirs
        .iter()
        .map(|d| {
            Path::new(d)
                .strip_prefix(&common)
                .map(|r| r.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    chdir(&common).map_err(|e| fail(common.display(), e))?;
    *lower = format!("lowerdir={}", rel.join(":"));
    Ok(parts.join(","))
}

/// sysfs for a container with its own netns; without one the kernel refuses a new sysfs
/// instance, so the host's is bound instead. Read-only either way.
fn mount_sys(target: &Path, writable: bool) -> Result<(), StartError> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !writable {
        flags |= MsFlags::MS_RDONLY;
    }
    match mount(Some("sysfs"), target, Some("sysfs"), flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => bind(Path::new("/sys"), target, MsFlags::MS_REC)
            .and_then(|()| remount(target, flags))
            .map_err(|e| fail("binding /sys", e)),
        Err(e) => Err(fail("mounting /sys", e)),
    }
}

/// A volume's subpath opened as moby's safepath does: below the source, no symlink followed
/// (the path bound is then the descriptor, so nothing can be swapped in between).
fn open_beneath(base: &Path, sub: &str) -> Result<std::os::fd::OwnedFd, StartError> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
    use nix::sys::stat::Mode;
    let dir = open(
        base,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(format_args!("cannot access path {}", base.display()), e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_SYMLINKS,
        );
    openat2(&dir, sub, how).map_err(|e| {
        fail(
            format_args!("cannot access path {}", base.join(sub).display()),
            e,
        )
    })
}

fn bind_mount(rootfs: &Path, m: &BindMount) -> Result<(), StartError> {
    // Held until the bind is made: the bind's source is this descriptor.
    let sub_fd = match &m.subpath {
        Some(sub) => Some(open_beneath(&m.source, sub)?),
        None => None,
    };
    let source = match &sub_fd {
        Some(fd) => {
            use std::os::fd::AsRawFd;
            PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        }
        None => m.source.clone(),
    };
    let m = &BindMount {
        source,
        ..m.clone()
    };
    let src_meta = std::fs::metadata(&m.source)
        .map_err(|e| fail(format_args!("stat {}", m.source.display()), e))?;
    let dest = secure_join(rootfs, &m.destination);
    if src_meta.is_dir() {
        std::fs::create_dir_all(&dest)
            .map_err(|e| fail(format_args!("mkdir {}", m.destination), e))?;
    } else {
        touch(&dest).map_err(|e| fail(format_args!("mkdir {}", m.destination), e))?;
    }
    let rec = if m.has("bind") {
        MsFlags::empty()
    } else {
        MsFlags::MS_REC
    };
    bind(&m.source, &dest, rec).map_err(|e| {
        fail(
            format_args!("binding {} on {}", m.source.display(), m.destination),
            e,
        )
    })?;
    // Docker's default propagation for binds and volumes: rprivate (private for a bind
    // that is not recursive).
    let propagation = match m.propagation() {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        _ => MsFlags::MS_PRIVATE | rec,
    };
    mount(None::<&str>, &dest, None::<&str>, propagation, None::<&str>).map_err(|e| {
        fail(
            format_args!("setting the propagation of {}", m.destination),
            e,
        )
    })?;
    let mut extra = MsFlags::empty();
    for (opt, flag) in [
        ("ro", MsFlags::MS_RDONLY),
        ("nosuid", MsFlags::MS_NOSUID),
        ("nodev", MsFlags::MS_NODEV),
        ("noexec", MsFlags::MS_NOEXEC),
    ] {
        if m.has(opt) {
            extra |= flag;
        }
    }
    if !extra.is_empty() {
        remount(&dest, extra).map_err(|e| fail(format_args!("remounting {}", m.destination), e))?;
    }
    // Read-only down to every submount (runc's "rro"): the runtime asks only where the
    // kernel can.
    if m.has("rro") {
        crate::sys::make_recursively_read_only(&dest).map_err(|e| {
            fail(
                format_args!("making {} recursively read-only", m.destination),
                e,
            )
        })?;
    }
    Ok(())
}

/// A tmpfs at its destination (made when missing, resolved inside the root).
fn tmpfs_mount(rootfs: &Path, t: &TmpfsMount) -> Result<(), StartError> {
    let dest = secure_join(rootfs, &t.destination);
    std::fs::create_dir_all(&dest).map_err(|e| fail(format_args!("mkdir {}", t.destination), e))?;
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for o in &t.options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "rw" => {}
            other => data.push(other),
        }
    }
    if !data.iter().any(|d| d.starts_with("mode=")) {
        data.push("mode=1777");
    }
    mount(
        Some("tmpfs"),
        &dest,
        Some("tmpfs"),
        flags,
        Some(data.join(",").as_str()),
    )
    .map_err(|e| fail(format_args!("mounting a tmpfs on {}", t.destination), e))
}

/// The mount point `path` is on: the longest mount point above it in mountinfo (the later of
/// two at the same path, which is the one on top).
fn parent_mount(path: &Path) -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parent_in(&info, path)
}

fn parent_in(mountinfo: &str, path: &Path) -> PathBuf {
    let mut best = PathBuf::from("/");
    let mut len = 0;
    for l in mountinfo.lines() {
        let Some(mp) = l.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(mp.replace("\\040", " "));
        let n = mp.as_os_str().len();
        if path.starts_with(&mp) && n >= len {
            best = mp;
            len = n;
        }
    }
    best
}

pub(crate) fn bind(src: &Path, dst: &Path, extra: MsFlags) -> nix::Result<()> {
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | extra,
        None::<&str>,
    )
}

/// Remounts the bind mount at `path` adding `flags`, keeping the flags it has (the kernel
/// refuses to drop nosuid/nodev/noexec from a mount that has them locked).
pub(crate) fn remount(path: &Path, flags: MsFlags) -> nix::Result<()> {
    let mut keep = MsFlags::empty();
    if let Ok(st) = statvfs(path) {
        let f = st.flags();
        for (have, flag) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        ] {
            if f.contains(have) {
                keep |= flag;
            }
        }
    }
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | keep | flags,
        None::<&str>,
    )
}

/// Hides `path`: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(path: &Path) -> Result<(), StartError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(format_args!("masking {}", path.display()), e)),
    };
    let r = if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        bind(Path::new("/dev/null"), path, MsFlags::empty())
    };
    r.map_err(|e| fail(format_args!("masking {}", path.display()), e))
}

/// pivot_root(".", ".") then detaching the old root stacked under it (runc's way: no
/// directory for the old root is needed in the image).
fn enter(rootfs: &Path) -> Result<(), StartError> {
    chdir(rootfs).map_err(|e| fail(rootfs.display(), e))?;
    pivot_root(".", ".").map_err(|e| fail("pivot_root", e))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| fail("making the old root a slave", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detaching the old root", e))?;
    chdir("/").map_err(|e| fail("chdir /", e))
}

/// pivot_root for a container with shared binds. After pivot_root(".", "."), mount(2) on
/// "." names the new root (the old one is stacked on it), so making it a recursive slave
/// would turn the shared binds into slaves too; the old root is put on a directory of its
/// own instead, made a recursive slave (its unmount must not reach the host) and detached.
fn enter_keeping_shared(rootfs: &Path) -> Result<(), StartError> {
    const PUT_OLD: &str = ".berth-old-root";
    chdir(rootfs).map_err(|e| fail(rootfs.display(), e))?;
    std::fs::create_dir(PUT_OLD).map_err(|e| fail(format_args!("making /{PUT_OLD}"), e))?;
    pivot_root(".", PUT_OLD).map_err(|e| fail("pivot_root", e))?;
    let old = Path::new("/").join(PUT_OLD);
    mount(
        None::<&str>,
        &old,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| fail("making the old root a slave", e))?;
    umount2(&old, MntFlags::MNT_DETACH).map_err(|e| fail("detaching the old root", e))?;
    std::fs::remove_dir(&old).map_err(|e| fail(format_args!("removing /{PUT_OLD}"), e))?;
    chdir("/").map_err(|e| fail("chdir /", e))
}

/// runc's words for a mount that failed (dockerd's message): `error mounting "<source>" to
/// rootfs at "<destination>": <why>`.
fn mounting(source: &dyn std::fmt::Display, destination: &str, e: StartError) -> StartError {
    StartError {
        message: format!(
            "error mounting \"{source}\" to rootfs at \"{destination}\": {}",
            e.message
        ),
        ..e
    }
}

fn mkdir_in(rootfs: &Path, path: &str) -> Result<PathBuf, StartError> {
    let p = secure_join(rootfs, path);
    std::fs::create_dir_all(&p).map_err(|e| fail(p.display(), e))?;
    Ok(p)
}

fn touch(p: &Path) -> std::io::Result<()> {
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::symlink_metadata(p).is_err() {
        std::fs::File::create(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let opts: Vec<String> = ["ro", "nosuid", "lowerdir=/a:/b", "upperdir=/u"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let (flags, data) = parse_options(&opts);
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u");
    }

    #[test]
    fn the_parent_mount_is_the_longest_above_the_path() {
        let info = "22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /var/lib rw shared:2 - ext4 /dev/sdb rw\n\
                    31 22 0:6 / /var/lib/b rw - tmpfs t rw\n\
                    32 30 0:7 / /var/lib rw - tmpfs t rw\n";
        assert_eq!(
            parent_in(info, Path::new("/var/lib/berth/rootfs")),
            Path::new("/var/lib")
        );
        assert_eq!(
            parent_in(info, Path::new("/var/lib/b/x")),
            Path::new("/var/lib/b")
        );
        assert_eq!(parent_in(info, Path::new("/srv")), Path::new("/"));
    }
}
