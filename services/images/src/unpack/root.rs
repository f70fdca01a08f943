//! The layer directory as a directory file descriptor, and the dirfd-relative primitives every
//! write goes through.
//!
//! Containment rests on two rules. Parent directories are opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to the root's fd: the kernel
//! resolves `..` and symlinks (absolute ones too) as if the root were `/`, so a parent can never
//! be outside it. The last component is then only ever touched through `*at` calls on that
//! parent's fd that do not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `unlinkat`,
//! `mknodat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Attempts of `openat2` when the kernel asks to retry (`EAGAIN` after a concurrent rename).
const OPENAT2_ATTEMPTS: usize = 16;
/// Mode of the parent directories the layer does not list.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// The layer directory.
pub(super) struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `dest` (trusted: symlinks in it are followed).
    pub(super) fn open(dest: &Path) -> io::Result<Root> {
        let fd = rustix::fs::open(dest, dir_flags(), Mode::empty())?;
        Ok(Root { fd })
    }

    /// Opens the directory `rel` resolved inside the root. With `create`, missing components
    /// are made (mode 0755, owned by the caller) as `mkdir -p` would.
    pub(super) fn dir(&self, rel: &Path, create: bool) -> io::Result<OwnedFd> {
        match self.resolve(rel) {
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let mut fd = self.resolve(Path::new("."))?;
        let mut sofar = PathBuf::new();
        for comp in rel.components() {
            let Component::Normal(comp) = comp else {
                continue;
            };
            sofar.push(comp);
            fd = match self.resolve(&sofar) {
                Ok(next) => next,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let made = match rustix::fs::mkdirat(&fd, comp, Mode::from(0o700)) {
                        Ok(()) => true,
                        Err(Errno::EXIST) => false,
                        Err(e) => return Err(e.into()),
                    };
                    let next = self.resolve(&sofar)?;
                    if made {
                        rustix::fs::fchmod(&next, Mode::from(IMPLICIT_DIR_MODE))?;
                    }
                    next
                }
                Err(e) => return Err(e),
            };
        }
        Ok(fd)
    }

    /// `openat2(root, rel, O_DIRECTORY, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`.
    fn resolve(&self, rel: &Path) -> io::Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut last = Errno::AGAIN;
        for _ in 0..OPENAT2_ATTEMPTS {
            match rustix::fs::openat2(&self.fd, rel, dir_flags(), Mode::empty(), how) {
                Ok(fd) => return Ok(fd),
                Err(Errno::AGAIN) | Err(Errno::INTR) => last = Errno::AGAIN,
                Err(Errno::NOSYS) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "openat2 is not available (Linux 5.6 or newer is needed)",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.into())
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `None` when nothing is there.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The type of a `stat` result.
pub(super) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Opens the directory `name` in `dir` without following a symlink.
pub(super) fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let flags = dir_flags() | OFlags::NOFOLLOW;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Removes `name` in `dir` and, if it is a directory, everything under it. Symlinks are removed,
/// never followed. Nothing there is not an error.
pub(super) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = open_subdir(dir, name)?;
    let mut children = Vec::new();
    let mut listing = rustix::fs::Dir::read_from(&sub)?;
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            children.push(OsStr::from_bytes(child).to_owned());
        }
    }
    drop(listing);
    for child in children {
        remove_all_at(sub.as_fd(), &child)?;
    }
    drop(sub);
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// A path naming `name` in the directory `dir` without an `*at` call: `/proc/self/fd/<dir>/name`.
/// The kernel follows the fd's magic link to `dir` itself (inside the root), then `name` is
/// resolved in it; use it only with calls that do not follow the last component (`lsetxattr`).
pub(super) fn fd_relative_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name)
}
