//! A tar stream (plain or gzip) extracted into a directory as moby's go-archive `Untar` does it
//! for `docker cp`: missing parent directories made (0755, root), an existing entry replaced
//! unless it is a directory and the entry one too (or refused with `no_overwrite_dir_non_dir`),
//! owners from the headers or one given owner, permission bits, `SCHILY.xattr.*` xattrs,
//! mtimes (directories' once everything is written). An entry leaving the destination (`..`,
//! a link target outside it, a parent reached through a symlink that leads out) fails the
//! whole extraction.
//!
//! The caller decides what "outside" means: the runtime extracts from a thread whose root is
//! the container's filesystem, so that the kernel resolves every symlink inside it.

use std::{
    fs,
    io::{self, BufRead, BufReader, Read},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Component, Path, PathBuf},
};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

/// How to extract.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory and the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner every entry as this uid and gid instead of the headers' (docker cp -a).
    pub chown: Option<(u32, u32)>,
}

/// Why an extraction failed.
#[derive(Debug)]
pub enum ExtractError {
    /// The archive is bad or asks for something refused (the client's fault).
    Invalid(String),
    Io(io::Error),
}

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExtractError::Invalid(m) => f.write_str(m),
            ExtractError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ExtractError {}

impl From<io::Error> for ExtractError {
    fn from(e: io::Error) -> Self {
        ExtractError::Io(e)
    }
}

/// `input` as a tar stream: gunzipped when it starts with gzip's magic.
pub fn decompressed<'a>(input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(64 * 1024, input);
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// The entry's path relative to the destination; None for the destination itself.
fn relative(name: &Path) -> Result<Option<PathBuf>, ExtractError> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ExtractError::Invalid(format!(
                    "{:?} is outside of the extraction directory",
                    name.display().to_string()
                )));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Whether `target`, a link's target as written in the entry at `rel`, stays inside the
/// destination when read lexically (go-archive's breakout check).
fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    let mut depth: i64 = 0;
    let base: Vec<Component> = if target.is_absolute() {
        Vec::new()
    } else {
        rel.parent()
            .map(|p| p.components().collect())
            .unwrap_or_default()
    };
    for c in base.into_iter().chain(target.components()) {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Extracts `input` (plain or gzip) into the existing directory `dest`.
pub fn extract(input: impl Read, dest: &Path, opts: ExtractOptions) -> Result<(), ExtractError> {
    let dest = fs::canonicalize(dest)?;
    let reader = decompressed(input)?;
    let mut archive = tar::Archive::new(reader);
    let bad = |e: io::Error| ExtractError::Invalid(format!("invalid tar archive: {e}"));
    let mut dirs: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = relative(&name)? else {
            continue;
        };
        let path = dest.join(&rel);
        let parent = path.parent().unwrap_or(&dest).to_owned();
        make_parents(&dest, &parent)?;
        // The parent as the kernel resolves it must still be inside the destination.
        let real_parent = fs::canonicalize(&parent)?;
        if !real_parent.starts_with(&dest) {
            return Err(ExtractError::Invalid(format!(
                "{:?} is outside of {:?}",
                name.display().to_string(),
                dest.display().to_string()
            )));
        }
        let path = real_parent.join(rel.file_name().unwrap_or_default());
        let h = entry.header().clone();
        let kind = h.entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let is_dir = kind == tar::EntryType::Directory;
        if let Ok(existing) = fs::symlink_metadata(&path) {
            if opts.no_overwrite_dir_non_dir {
                if existing.is_dir() && !is_dir {
                    return Err(ExtractError::Invalid(format!(
                        "cannot overwrite directory {:?} with non-directory {:?}",
                        path.display().to_string(),
                        dest.display().to_string()
                    )));
                }
                if !existing.is_dir() && is_dir {
                    return Err(ExtractError::Invalid(format!(
                        "cannot overwrite non-directory {:?} with directory {:?}",
                        path.display().to_string(),
                        dest.display().to_string()
                    )));
                }
            }
            if !(existing.is_dir() && is_dir) {
                if existing.is_dir() {
                    fs::remove_dir_all(&path).map_err(at("unlinkat", &path))?;
                } else {
                    fs::remove_file(&path).map_err(at("unlinkat", &path))?;
                }
            }
        }
        // As Go's tar reader, an empty numeric field reads as 0.
        let mode = h.mode().unwrap_or(0) & 0o7777;
        match kind {
            tar::EntryType::Directory => {
                if !path.is_dir() {
                    fs::DirBuilder::new()
                        .mode(mode)
                        .create(&path)
                        .map_err(at("mkdir", &path))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&path)
                    .map_err(at("open", &path))?;
                if let Err(e) = io::copy(&mut entry, &mut f) {
                    // A file cut short is not kept: it would only hold the space it took.
                    drop(f);
                    let _ = fs::remove_file(&path);
                    return Err(match e.kind() {
                        io::ErrorKind::StorageFull => ExtractError::Io(e),
                        _ => bad(e),
                    });
                }
            }
            tar::EntryType::Symlink => {
                let target = h
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| ExtractError::Invalid("a symlink without a target".into()))?
                    .into_owned();
                if !link_stays_inside(&rel, &target) {
                    return Err(ExtractError::Invalid(format!(
                        "invalid symlink {:?} -> {:?}",
                        path.display().to_string(),
                        target.display().to_string()
                    )));
                }
                std::os::unix::fs::symlink(&target, &path).map_err(go_error(format!(
                    "symlink {} {}",
                    target.display(),
                    path.display()
                )))?;
            }
            tar::EntryType::Link => {
                let target = h
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| ExtractError::Invalid("a hard link without a target".into()))?;
                let Some(target_rel) = relative(&target)? else {
                    return Err(ExtractError::Invalid(
                        "a hard link to the extraction directory".into(),
                    ));
                };
                let real = fs::canonicalize(dest.join(target_rel))?;
                if !real.starts_with(&dest) {
                    return Err(ExtractError::Invalid(format!(
                        "invalid hardlink {:?} -> {:?}",
                        path.display().to_string(),
                        target.display().to_string()
                    )));
                }
                fs::hard_link(&real, &path).map_err(go_error(format!(
                    "link {} {}",
                    real.display(),
                    path.display()
                )))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = h.device_major().map_err(bad)?.unwrap_or(0);
                let minor = h.device_minor().map_err(bad)?.unwrap_or(0);
                rustix::fs::mknodat(
                    CWD,
                    &path,
                    ft,
                    Mode::from_raw_mode(mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(io::Error::from)?;
            }
            other => {
                return Err(ExtractError::Invalid(format!(
                    "unhandled tar header type {:?}",
                    other.as_byte() as char
                )));
            }
        }
        let (uid, gid) = match opts.chown {
            Some(ids) => ids,
            None => (
                u32::try_from(h.uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(h.gid().unwrap_or(0)).unwrap_or(0),
            ),
        };
        rustix::fs::chownat(
            CWD,
            &path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| at("lchown", &path)(e.into()))?;
        if kind != tar::EntryType::Symlink && kind != tar::EntryType::Link {
            rustix::fs::chmodat(CWD, &path, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(|e| at("chmod", &path)(e.into()))?;
        }
        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                if let Some(key) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    // As go-archive: an xattr the filesystem refuses is not fatal.
                    let _ =
                        rustix::fs::lsetxattr(&path, key, ext.value_bytes(), XattrFlags::empty());
                }
            }
        }
        let mtime = i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0);
        if kind == tar::EntryType::Directory {
            dirs.push((path, mtime));
        } else if kind != tar::EntryType::Link {
            set_times(&path, mtime)?;
        }
    }
    for (dir, mtime) in dirs.iter().rev() {
        set_times(dir, *mtime)?;
    }
    Ok(())
}

/// A failed operation on `path` as Go's `*PathError` reads (what dockerd answers):
/// `open /data/f: read-only file system`; the kind is kept.
fn at(op: &'static str, path: &Path) -> impl Fn(io::Error) -> io::Error {
    go_error(format!("{op} {}", path.display()))
}

/// `e` after `what` as Go writes an errno: lower case, no "(os error N)".
fn go_error(what: String) -> impl Fn(io::Error) -> io::Error {
    move |e| {
        let text = e.to_string();
        let text = text.split(" (os error").next().unwrap_or(&text);
        let mut chars = text.chars();
        let text: String = chars
            .next()
            .map(|f| f.to_lowercase().chain(chars).collect())
            .unwrap_or_default();
        io::Error::new(e.kind(), format!("{what}: {text}"))
    }
}

fn set_times(path: &Path, mtime: i64) -> io::Result<()> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

/// Makes the missing directories from `dest` down to `dir` (0755, owned by root).
fn make_parents(dest: &Path, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let rel = dir.strip_prefix(dest).unwrap_or(dir);
    let mut cur = dest.to_owned();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            // A symlink to a directory is followed; where it leads is checked by the caller.
            Ok(_) if cur.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", cur.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&cur)
                    .map_err(at("mkdir", &cur))?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
