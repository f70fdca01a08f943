//! Spare volume directories. `docker volume create` then `rm` of a volume nothing wrote to
//! made two directories and removed them again; on ext4 a new inode skips every inode freed
//! in the last minutes (`recently_deleted`), and freeing one waits for the journal, so a
//! loop of create and rm got slower with each round (the larger part of the volumes
//! service's time, more than its durable commit). Now a plain volume whose directories
//! nothing has touched since they were made (same inodes, same change time: a chmod, chown,
//! xattr or a file made or removed inside changes it) is moved into `<root>/.spare` when it
//! is removed, and the next volume takes it with one rename. The record is committed as
//! before: a spare is taken before the commit (a crash leaves an empty directory nobody
//! lists, as a mkdir did) and kept after it; what a crash leaves in `.spare` is deleted
//! when the service starts.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

/// How many spares are kept at most.
const KEEP: usize = 16;

/// What identifies a directory as it was made: its inode, owner, mode, last change and
/// extended attributes (the change time is as coarse as the kernel's clock tick: the mode,
/// owner and attributes are compared too, and `_data` is looked at for entries).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    ctime: i64,
    ctime_nsec: i64,
    /// Its extended attributes (names and values; none on most hosts): one set on the
    /// directory, an ACL or a security label, would otherwise outlive the volume.
    xattrs: Vec<(std::ffi::OsString, Option<Vec<u8>>)>,
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(p).ok()?;
    if !m.is_dir() {
        return None;
    }
    // A directory whose attributes cannot be read is not kept.
    let mut xattrs: Vec<_> = xattr::list(p)
        .ok()?
        .map(|n| {
            let v = xattr::get(p, &n).ok().flatten();
            (n, v)
        })
        .collect();
    xattrs.sort();
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        ctime: m.ctime(),
        ctime_nsec: m.ctime_nsec(),
        xattrs,
    })
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_none())
}

#[derive(Default)]
struct State {
    /// Spare volume directories (each with an empty `_data`), in `.spare`.
    free: Vec<PathBuf>,
    /// The volumes made in this run, by name: the stamps of their directory and `_data`.
    fresh: HashMap<String, (Stamp, Stamp)>,
    next: u64,
}

pub(crate) struct Spares {
    dir: PathBuf,
    state: Mutex<State>,
}

impl Spares {
    /// The spares under `root`; what an earlier run left there is deleted.
    pub(crate) fn open(root: &Path) -> Spares {
        let dir = root.join(".spare");
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, dir = %dir.display(), "removing the spare volume directories");
        }
        Spares {
            dir,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves a spare to `dir` (which must not exist). Whether it did.
    pub(crate) fn take(&self, dir: &Path) -> bool {
        let Some(spare) = self.state().free.pop() else {
            return false;
        };
        let cwd = nix::fcntl::AT_FDCWD;
        let flags = nix::fcntl::RenameFlags::RENAME_NOREPLACE;
        if nix::fcntl::renameat2(cwd, &spare, cwd, dir, flags).is_ok() {
            return true;
        }
        // `dir` exists (left by a crash): the spare goes, the caller makes what is missing.
        let _ = std::fs::remove_dir(spare.join("_data"));
        let _ = std::fs::remove_dir(&spare);
        false
    }

    /// `name`'s directory `dir` and its `_data` were just made, empty: remembered as made.
    pub(crate) fn made(&self, name: &str, dir: &Path) {
        if let (Some(d), Some(data)) = (stamp(dir), stamp(&dir.join("_data"))) {
            self.state().fresh.insert(name.to_owned(), (d, data));
        }
    }

    /// `name`'s record is gone: its directory `dir` becomes a spare if the volume was
    /// `plain` (no filesystem of its own), nothing touched it since it was made and there is
    /// room. Whether it did (`dir` is then gone).
    pub(crate) fn keep(&self, name: &str, dir: &Path, plain: bool) -> bool {
        let mut st = self.state();
        let Some((d, data)) = st.fresh.remove(name) else {
            return false;
        };
        if !plain
            || st.free.len() >= KEEP
            || stamp(dir) != Some(d)
            || stamp(&dir.join("_data")) != Some(data)
            || !empty(&dir.join("_data"))
        {
            return false;
        }
        st.next += 1;
        let to = self.dir.join(st.next.to_string());
        let moved = std::fs::rename(dir, &to).is_ok()
            || (std::fs::create_dir(&self.dir).is_ok() && std::fs::rename(dir, &to).is_ok());
        if moved {
            st.free.push(to);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(dir: &Path) {
        std::fs::create_dir_all(dir.join("_data")).unwrap();
    }

    #[test]
    fn an_untouched_volume_directory_is_taken_by_the_next_volume() {
        let root = tempfile::tempdir().unwrap();
        let s = Spares::open(root.path());
        let a = root.path().join("a");
        assert!(!s.take(&a), "no spare yet");
        make(&a);
        s.made("a", &a);
        let ino = std::fs::metadata(a.join("_data")).unwrap().ino();
        assert!(s.keep("a", &a, true));
        assert!(!a.exists());
        let b = root.path().join("b");
        assert!(s.take(&b));
        assert!(b.join("_data").is_dir());
        assert_eq!(std::fs::metadata(b.join("_data")).unwrap().ino(), ino);
        assert!(!s.take(&root.path().join("c")), "one spare, taken once");
    }

    #[test]
    fn a_touched_or_unknown_directory_is_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let s = Spares::open(root.path());
        let a = root.path().join("a");
        make(&a);
        assert!(!s.keep("a", &a, true), "not made in this run");
        s.made("a", &a);
        std::fs::write(a.join("_data/f"), "x").unwrap();
        assert!(!s.keep("a", &a, true), "written to");
        assert!(a.exists());
        std::fs::remove_file(a.join("_data/f")).unwrap();
        s.made("a", &a);
        std::fs::set_permissions(
            a.join("_data"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        assert!(!s.keep("a", &a, true), "its mode changed");
        assert!(!s.keep("a", &a, true), "forgotten once looked at");
        s.made("a", &a);
        assert!(!s.keep("a", &a, false), "a filesystem of its own");
        assert!(a.exists());
    }

    #[test]
    fn a_directory_given_an_extended_attribute_is_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let s = Spares::open(root.path());
        let a = root.path().join("a");
        make(&a);
        s.made("a", &a);
        let before = stamp(&a.join("_data")).unwrap();
        if let Err(e) = xattr::set(a.join("_data"), "user.berth-test", b"1") {
            // A filesystem without user attributes cannot carry one over either.
            assert_eq!(e.raw_os_error(), Some(nix::libc::EOPNOTSUPP), "{e}");
            return;
        }
        // Set within the same clock tick as the mkdir, the change time alone may not tell:
        // the attribute does.
        let after = stamp(&a.join("_data")).unwrap();
        let same_tick = |st: Stamp| Stamp {
            ctime: 0,
            ctime_nsec: 0,
            ..st
        };
        assert_ne!(same_tick(before), same_tick(after));
        assert!(!s.keep("a", &a, true), "an attribute was set");
        assert!(a.join("_data").exists());
    }

    #[test]
    fn a_spare_never_replaces_a_directory_and_a_restart_drops_them() {
        let root = tempfile::tempdir().unwrap();
        let s = Spares::open(root.path());
        let a = root.path().join("a");
        make(&a);
        s.made("a", &a);
        assert!(s.keep("a", &a, true));
        let b = root.path().join("b");
        make(&b);
        std::fs::write(b.join("_data/kept"), "x").unwrap();
        assert!(!s.take(&b));
        assert!(b.join("_data/kept").exists());
        make(&a);
        s.made("a", &a);
        assert!(s.keep("a", &a, true));
        drop(s);
        Spares::open(root.path());
        assert!(!root.path().join(".spare").exists());
    }
}
