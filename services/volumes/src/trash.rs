//! Removing a volume's directory without making the caller wait for its files: the directory
//! is renamed into `<root>/.removing` (a name no volume can have: they start with a letter or
//! digit) and deleted there by a thread of its own. Removing tens of thousands of files can
//! take longer on a busy disk than a client's deadline; dockerd's `docker volume rm` has none,
//! so a slow delete must not turn into a failed removal. What a crash leaves in
//! `.removing` is deleted when the service starts.

use std::path::{Path, PathBuf};

/// The directory that holds what is being deleted.
fn trash(root: &Path) -> PathBuf {
    root.join(".removing")
}

fn delete(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, dir = %path.display(), "removing a volume's directory");
    }
}

/// Deletes `path` in the trash, then the trash itself once nothing else is being deleted.
fn delete_in_trash(root: &Path, path: &Path) {
    delete(path);
    // Fails while another deletion runs; the last one takes it.
    let _ = std::fs::remove_dir(trash(root));
}

/// Removes `dir` when it holds nothing but empty directories (a volume never written to, as
/// in `docker volume create` then `rm`): in place, at once, with no rename and no thread.
/// Whether it is gone; what it could not remove is left for [`remove`]. A mount point is
/// never removed (`rmdir` refuses it), so this needs no look at the mount table first.
pub(crate) fn remove_if_empty(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries {
        // Fails on a file, a symlink or a directory that is not empty.
        if e.and_then(|e| std::fs::remove_dir(e.path())).is_err() {
            return false;
        }
    }
    std::fs::remove_dir(dir).is_ok()
}

/// Removes `dir` (below `root`): an empty one at once; else renamed out of the way now,
/// deleted in the background; deleted in place when it cannot be renamed. Returns the
/// background deletion, if any.
pub(crate) fn remove(root: &Path, dir: &Path) -> Option<std::thread::JoinHandle<()>> {
    if remove_if_empty(dir) {
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let to = trash(root).join(format!("{}-{nanos}", name.unwrap_or_default()));
    // The trash may go between its creation and the rename (the last deletion takes it).
    for _ in 0..3 {
        if !dir.exists() {
            return None;
        }
        if std::fs::create_dir_all(trash(root)).is_ok() && std::fs::rename(dir, &to).is_ok() {
            let root = root.to_owned();
            return std::thread::Builder::new()
                .name("volume-rm".to_owned())
                .spawn(move || delete_in_trash(&root, &to))
                .ok();
        }
    }
    delete(dir);
    None
}

/// Deletes what an earlier run left in the trash, in the background.
pub(crate) fn sweep(root: &Path) -> Option<std::thread::JoinHandle<()>> {
    if !trash(root).exists() {
        return None;
    }
    let root = root.to_owned();
    std::thread::Builder::new()
        .name("volume-rm".to_owned())
        .spawn(move || delete(&trash(&root)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_goes_at_once_and_its_files_soon_after() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("vol");
        std::fs::create_dir_all(dir.join("_data/sub")).unwrap();
        std::fs::write(dir.join("_data/sub/f"), "x").unwrap();
        let h = remove(root.path(), &dir).expect("deleted in the background");
        assert!(!dir.exists());
        h.join().unwrap();
        assert!(
            !trash(root.path()).exists(),
            "the trash goes with the last deletion"
        );
        // Gone already: nothing to do.
        assert!(remove(root.path(), &dir).is_none());
    }

    #[test]
    fn an_empty_volume_goes_in_place_without_a_thread() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("vol");
        std::fs::create_dir_all(dir.join("_data")).unwrap();
        assert!(
            remove(root.path(), &dir).is_none(),
            "no background deletion"
        );
        assert!(!dir.exists());
        assert!(!trash(root.path()).exists(), "no trash made");
        // A symlink in it is not followed: the directory goes through the trash.
        std::fs::create_dir_all(root.path().join("elsewhere/kept")).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(root.path().join("elsewhere"), dir.join("_data")).unwrap();
        remove(root.path(), &dir)
            .expect("deleted in the background")
            .join()
            .unwrap();
        assert!(!dir.exists());
        assert!(root.path().join("elsewhere/kept").is_dir());
    }

    #[test]
    fn a_mount_point_is_never_removed_in_place() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("vol");
        let data = dir.join("_data");
        std::fs::create_dir_all(&data).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &data,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        let removed = remove_if_empty(&dir);
        let kept = data.is_dir();
        nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(!removed && kept, "an empty mount point was removed");
        assert!(remove_if_empty(&dir), "once unmounted it goes");
    }

    #[test]
    fn what_a_crash_left_is_swept() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(trash(root.path()).join("vol-1/_data")).unwrap();
        sweep(root.path()).expect("a sweep").join().unwrap();
        assert!(!trash(root.path()).exists());
        assert!(sweep(root.path()).is_none());
    }
}
