//! Copy-up: a fresh volume filled from the image's directory it shadows, as dockerd does it
//! at create. The container's root filesystem is mounted read-only in a thread's private
//! mount namespace, and nothing of it is followed out of the root.

use std::{
    collections::HashMap,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use berth_proto::runtime::v1 as pb;

use berth_bundle::secure_join;

/// Runs `f` on the container's root filesystem: in a thread of its own that leaves the
/// host's mount namespace, the root filesystem is mounted read-only at `scratch` and `f` given
/// its root. The thread's namespace, and the mount in it, end with the thread.
fn with_image_root<T: Send + 'static>(
    rootfs: &pb::RootfsMount,
    scratch: &Path,
    f: impl FnOnce(&Path) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let rootfs = rootfs.clone();
    let dir = scratch.to_owned();
    let scratch = scratch.to_owned();
    let r = std::thread::spawn(move || -> anyhow::Result<T> {
        use nix::mount::{MsFlags, mount};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS)
            .map_err(|e| anyhow::anyhow!("unshare: {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| anyhow::anyhow!("making / private: {e}"))?;
        std::fs::create_dir_all(&scratch)?;
        let root = mount_readonly(&rootfs, &scratch)?;
        let r = f(&root);
        let _ = nix::mount::umount2(&scratch, nix::mount::MntFlags::MNT_DETACH);
        r
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the copy-up thread panicked"))?;
    let _ = std::fs::remove_dir(dir);
    r
}

/// Which of the container paths are directories in the image (the only ones copied up).
pub(crate) fn image_dirs(
    rootfs: &pb::RootfsMount,
    scratch: &Path,
    dests: Vec<String>,
) -> anyhow::Result<Vec<bool>> {
    with_image_root(rootfs, scratch, move |root| {
        Ok(dests
            .iter()
            .map(|d| std::fs::symlink_metadata(secure_join(root, d)).is_ok_and(|m| m.is_dir()))
            .collect())
    })
}

/// Fills each fresh volume (`(container path, data path)`) from the image's directory at
/// that path, when the volume is empty.
pub(crate) fn copy_up(
    rootfs: &pb::RootfsMount,
    scratch: &Path,
    copies: Vec<(String, PathBuf)>,
) -> anyhow::Result<()> {
    with_image_root(rootfs, scratch, move |root| {
        for (dest, data) in &copies {
            copy_into(root, dest, data)?;
        }
        Ok(())
    })
}

/// Mounts the root filesystem read-only at `at` (an overlay: its upper directory becomes the
/// top lower one, so the container's own work directory is not touched). Returns the root.
fn mount_readonly(rootfs: &pb::RootfsMount, at: &Path) -> anyhow::Result<PathBuf> {
    use nix::mount::{MsFlags, mount};
    match rootfs.r#type.as_str() {
        "overlay" => {
            let opt = |k: &str| {
                rootfs
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix(k).map(str::to_owned))
            };
            let lower = opt("lowerdir=").unwrap_or_default();
            let lowers = match opt("upperdir=") {
                Some(u) if lower.is_empty() => u,
                Some(u) => format!("{u}:{lower}"),
                None => lower,
            };
            if !lowers.contains(':') {
                // One layer: read it in place.
                return Ok(PathBuf::from(lowers));
            }
            mount(
                Some("overlay"),
                at,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(format!("lowerdir={lowers}").as_str()),
            )
            .map_err(|e| anyhow::anyhow!("mounting the image's filesystem: {e}"))?;
            Ok(at.to_owned())
        }
        "bind" | "rbind" => Ok(PathBuf::from(&rootfs.source)),
        other => Err(anyhow::anyhow!("cannot read a {other} root filesystem")),
    }
}

/// Files with more than one link already copied, by (device, inode): the copy to link to.
type Links = HashMap<(u64, u64), PathBuf>;

/// Copies the image's `dest` (resolved inside `root`) into the volume's data directory when
/// that is empty and the image path is a directory, as dockerd does.
fn copy_into(root: &Path, dest: &str, data: &Path) -> anyhow::Result<()> {
    let src = secure_join(root, dest);
    let Ok(meta) = std::fs::symlink_metadata(&src) else {
        return Ok(());
    };
    if !meta.is_dir() || std::fs::read_dir(data)?.next().is_some() {
        return Ok(());
    }
    copy_dir(&src, data, &mut Links::new())?;
    finish(&src, data, &meta)
}

/// Copies the entries of `src` into the existing directory `dst` as dockerd's copy (moby's
/// use of continuity's `fs.CopyDir`) does: never following a symlink (links are copied as
/// links), hard links kept as links, owners, modes, extended attributes (file capabilities
/// among them) and times kept.
fn copy_dir(src: &Path, dst: &Path, links: &mut Links) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_dir(&from, &to, links)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    std::fs::hard_link(first, &to)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), to.clone());
            }
            let mut r = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&from)?;
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&to)?;
            std::io::copy(&mut r, &mut w)?;
        } else {
            // Device nodes and fifos as they are; sockets are not copied.
            use std::os::unix::fs::FileTypeExt;
            if ft.is_socket() {
                continue;
            }
            let kind = if ft.is_fifo() {
                nix::sys::stat::SFlag::S_IFIFO
            } else if ft.is_char_device() {
                nix::sys::stat::SFlag::S_IFCHR
            } else {
                nix::sys::stat::SFlag::S_IFBLK
            };
            nix::sys::stat::mknod(
                &to,
                kind,
                nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777),
                meta.rdev(),
            )?;
        }
        finish(&from, &to, &meta)?;
    }
    Ok(())
}

/// Owner, mode, extended attributes, then times, in that order: a chown drops set-id bits
/// and file capabilities, and each step before the last would move a directory's times.
fn finish(from: &Path, to: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    copy_xattrs(from, to)?;
    filetime::set_symlink_file_times(
        to,
        filetime::FileTime::from_last_access_time(meta),
        filetime::FileTime::from_last_modification_time(meta),
    )?;
    Ok(())
}

/// The extended attributes of `from` onto `to` (never through a symlink); one the volume's
/// filesystem does not support is skipped, as dockerd skips it.
fn copy_xattrs(from: &Path, to: &Path) -> anyhow::Result<()> {
    let unsupported = |e: &std::io::Error| e.raw_os_error() == Some(nix::libc::ENOTSUP);
    let names = match xattr::list(from) {
        Ok(n) => n,
        Err(e) if unsupported(&e) => return Ok(()),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "listing the attributes of {}: {e}",
                from.display()
            ));
        }
    };
    for name in names {
        let Some(value) = xattr::get(from, &name)? else {
            continue;
        };
        match xattr::set(to, &name, &value) {
            Ok(()) => {}
            Err(e) if unsupported(&e) => {}
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "setting {} on {}: {e}",
                    name.to_string_lossy(),
                    to.display()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/../../etc", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("real", root.join("rel")).unwrap();
        assert_eq!(secure_join(root, "/escape"), root.join("etc"));
        assert_eq!(secure_join(root, "/../../x"), root.join("x"));
        assert_eq!(secure_join(root, "/rel/f"), root.join("real/f"));
    }

    #[test]
    fn copy_keeps_links_as_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0").unwrap();
        std::fs::set_permissions(root.join("etc/sub"), std::fs::Permissions::from_mode(0o710))
            .unwrap();
        std::os::unix::fs::symlink("/host-secret", root.join("etc/link")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        copy_into(&root, "/etc", &data).unwrap();
        assert_eq!(
            std::fs::read_to_string(data.join("passwd")).unwrap(),
            "root:x:0:0"
        );
        assert_eq!(
            std::fs::read_link(data.join("link")).unwrap(),
            Path::new("/host-secret")
        );
        let mode = std::fs::metadata(data.join("sub")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o710);
        // Not into a volume that has content.
        std::fs::write(root.join("etc/new"), "x").unwrap();
        copy_into(&root, "/etc", &data).unwrap();
        assert!(!data.join("new").exists());
    }

    #[test]
    fn copy_keeps_hard_links_xattrs_capabilities_and_times() {
        use filetime::FileTime;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let etc = root.join("etc");
        std::fs::create_dir_all(etc.join("d")).unwrap();
        std::fs::write(etc.join("a"), "one inode").unwrap();
        std::fs::hard_link(etc.join("a"), etc.join("d/b")).unwrap();
        std::fs::write(etc.join("cap"), "binary").unwrap();
        // VFS_CAP_REVISION_2 with the effective bit; CAP_NET_RAW (13) permitted.
        let mut cap = vec![0u8; 20];
        cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
        cap[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
        std::os::unix::fs::lchown(etc.join("cap"), Some(1000), Some(1000)).unwrap();
        xattr::set(etc.join("cap"), "security.capability", &cap).unwrap();
        xattr::set(etc.join("a"), "user.berth", b"kept").unwrap();
        std::os::unix::fs::symlink("a", etc.join("l")).unwrap();
        let old = FileTime::from_unix_time(1_000_000_000, 0);
        for p in ["a", "cap", "d"] {
            filetime::set_file_times(etc.join(p), old, old).unwrap();
        }
        filetime::set_symlink_file_times(etc.join("l"), old, old).unwrap();
        filetime::set_file_times(&etc, old, old).unwrap();

        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        copy_into(&root, "/etc", &data).unwrap();
        let a = std::fs::metadata(data.join("a")).unwrap();
        let b = std::fs::metadata(data.join("d/b")).unwrap();
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert_eq!(
            xattr::get(data.join("a"), "user.berth").unwrap().as_deref(),
            Some(&b"kept"[..])
        );
        let c = std::fs::symlink_metadata(data.join("cap")).unwrap();
        assert_eq!((c.uid(), c.gid()), (1000, 1000));
        assert_eq!(
            xattr::get(data.join("cap"), "security.capability")
                .unwrap()
                .as_deref(),
            Some(&cap[..])
        );
        for p in ["a", "cap", "d", "l", ""] {
            let m = std::fs::symlink_metadata(data.join(p)).unwrap();
            assert_eq!(FileTime::from_last_modification_time(&m), old, "{p}");
        }
    }
}
