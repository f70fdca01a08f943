//! Applying one tar entry to the layer directory.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps};
use tar::EntryType;

use super::error::{UnpackError, apply_err};
use super::meta::Meta;
use super::path::{RelPath, normalize};
use super::root::{Root, file_type, lstat_at, open_subdir, remove_all_at};
use super::whiteout;

/// Applies entries in order and remembers the directory times to set at the end.
pub(super) struct Applier {
    root: Root,
    /// File writes stop before they take the filesystem's reserve.
    space: berth_service::FreeSpace,
    dir_times: Vec<(RelPath, Timestamps)>,
    /// Bytes written to regular files.
    pub(super) size: u64,
    /// Entries read (tar members, after PAX and GNU long-name records are merged into them;
    /// global PAX headers are not counted).
    pub(super) entries: u64,
}

impl Applier {
    pub(super) fn new(root: Root, space: berth_service::FreeSpace) -> Self {
        Applier {
            root,
            space,
            dir_times: Vec::new(),
            size: 0,
            entries: 0,
        }
    }

    /// Applies one entry. A later entry wins over an earlier one of the same name: what was there
    /// is removed first (never followed), except a directory over a directory, which is kept and
    /// gets the new entry's metadata.
    pub(super) fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), UnpackError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        self.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let Some(rel) =
            normalize(&raw).map_err(|reason| UnpackError::unsafe_entry(&raw, reason))?
        else {
            // The layer root itself (`./`): the caller owns that directory.
            return Ok(());
        };
        let meta = Meta::read(entry)?;
        if whiteout::apply(&self.root, &rel, &meta, &raw)? {
            return Ok(());
        }
        let err = |op| apply_err(&raw, op);
        let parent = self
            .root
            .dir(&rel.parent, true)
            .map_err(err("open parent"))?;
        let dir = parent.as_fd();
        let name = rel.name.as_os_str();
        let existing = lstat_at(dir, name).map_err(err("stat"))?;
        let keep_dir = kind == EntryType::Directory
            && existing.is_some_and(|st| file_type(&st) == FileType::Directory);
        if existing.is_some() && !keep_dir {
            remove_all_at(dir, name).map_err(err("remove the previous entry"))?;
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let file = create_file(dir, name).map_err(err("create file"))?;
                let mut out = io::BufWriter::with_capacity(64 * 1024, self.space.bound(&file));
                self.size += io::copy(entry, &mut out).map_err(err("write file"))?;
                out.into_inner()
                    .map_err(|e| err("write file")(e.into_error()))?;
                meta.apply_to_file(&file, &raw)?;
            }
            EntryType::Directory => {
                if !keep_dir {
                    rustix::fs::mkdirat(dir, name, Mode::from(0o700))
                        .map_err(|e| err("create directory")(e.into()))?;
                }
                // Opening it proves it is a directory and not a symlink before chmod follows it.
                open_subdir(dir, name).map_err(err("open directory"))?;
                meta.apply_at(dir, name, FileType::Directory, &raw)?;
                self.dir_times.push((rel.clone(), meta.times));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| UnpackError::unsupported(&raw, "symlink without a target"))?;
                if target.contains(&0) {
                    return Err(UnpackError::unsafe_entry(
                        &raw,
                        "the link target has a NUL byte",
                    ));
                }
                rustix::fs::symlinkat(target.as_ref(), dir, name)
                    .map_err(|e| err("create symlink")(e.into()))?;
                self.finish_special(dir, name, FileType::Symlink, &meta, &raw)?;
            }
            EntryType::Link => self.hard_link(entry, dir, name, &raw)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (ft, dev) = device(entry, kind, &raw)?;
                rustix::fs::mknodat(dir, name, ft, Mode::from(0o600), dev)
                    .map_err(|e| err("mknod")(e.into()))?;
                self.finish_special(dir, name, ft, &meta, &raw)?;
            }
            other => {
                let what = format!("tar entry type {:?}", other.as_byte() as char);
                return Err(UnpackError::unsupported(&raw, what));
            }
        }
        Ok(())
    }

    fn finish_special(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        kind: FileType,
        meta: &Meta,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        meta.apply_at(dir, name, kind, raw)?;
        Meta::set_times_at(&meta.times, dir, name).map_err(apply_err(raw, "set times"))
    }

    /// A hard link to an earlier entry: its target is resolved inside the root like any path,
    /// and linked without following a symlink at its end. The inode keeps the metadata its own
    /// entry gave it (the link's header is not applied to it).
    fn hard_link<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| UnpackError::unsupported(raw, "hard link without a target"))?;
        let target = normalize(&target)
            .map_err(|reason| UnpackError::unsafe_entry(raw, reason))?
            .ok_or_else(|| UnpackError::unsafe_entry(raw, "hard link to the layer root"))?;
        let target_dir = self
            .root
            .dir(&target.parent, false)
            .map_err(apply_err(raw, "open hard link target"))?;
        rustix::fs::linkat(&target_dir, &target.name, dir, name, AtFlags::empty())
            .map_err(|e| apply_err(raw, "hard link")(e.into()))
    }

    /// Sets the directories' times, now that nothing more is written into them.
    pub(super) fn finish(self) -> Result<(), UnpackError> {
        for (rel, times) in &self.dir_times {
            let raw = rel.full().into_os_string().into_vec();
            let err = apply_err(&raw, "set directory times");
            let parent = match self.root.dir(&rel.parent, false) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(err(e)),
            };
            // A later entry may have replaced the directory; its times are its own.
            match lstat_at(parent.as_fd(), &rel.name) {
                Ok(Some(st)) if file_type(&st) == FileType::Directory => {}
                Ok(_) => continue,
                Err(e) => return Err(apply_err(&raw, "stat")(e)),
            }
            Meta::set_times_at(times, parent.as_fd(), &rel.name).map_err(err)?;
        }
        Ok(())
    }
}

/// Creates a new regular file, never through a symlink.
fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::openat(
        dir,
        name,
        flags,
        Mode::from(0o600),
    )?))
}

fn device<R: Read>(
    entry: &tar::Entry<'_, R>,
    kind: EntryType,
    raw: &[u8],
) -> Result<(FileType, rustix::fs::Dev), UnpackError> {
    let header = entry.header();
    let bad = || UnpackError::unsupported(raw, "bad device number");
    let major = header.device_major().map_err(|_| bad())?.unwrap_or(0);
    let minor = header.device_minor().map_err(|_| bad())?.unwrap_or(0);
    let ft = match kind {
        EntryType::Char => FileType::CharacterDevice,
        EntryType::Block => FileType::BlockDevice,
        _ => FileType::Fifo,
    };
    let dev = if ft == FileType::Fifo {
        0
    } else {
        rustix::fs::makedev(major, minor)
    };
    Ok((ft, dev))
}
