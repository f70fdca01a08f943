//! Copy-up: a fresh volume filled from the image's directory it shadows, as dockerd does it
//! at create. The container's root filesystem is mounted read-only in a thread's private
//! mount namespace, and nothing of it is followed out of the root.

use std::{
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
    copy_dir(&src, data)?;
    std::os::unix::fs::lchown(data, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(())
}

/// Copies the entries of `src` into the existing directory `dst`, never following a
/// symlink: links are copied as links, owners and modes kept.
fn copy_dir(src: &Path, dst: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, lchown};
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
            continue;
        }
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_dir(&from, &to)?;
        } else if ft.is_file() {
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
        lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
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
}
