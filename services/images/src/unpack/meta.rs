//! What an entry says about its inode: owner, mode, times, xattrs, from the header and its PAX
//! records (`uid`, `gid`, `mtime`, `atime`, `SCHILY.xattr.*`), and how they are applied.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{AtFlags, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::error::UnpackError;
use super::root::fd_relative_path;

const XATTR_PREFIX: &str = "SCHILY.xattr.";
/// Overlay metadata (opaque, redirect, metacopy...) only whiteouts may make.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// Owner, permission bits, times and xattrs of one entry.
pub(super) struct Meta {
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub(super) mode: Mode,
    pub(super) times: Timestamps,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    pub(super) fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Meta, UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let bad = |what: &str| UnpackError::unsupported(&raw, format!("bad {what} field"));
        let header = entry.header();
        let old = header.as_old();
        // Go's archive/tar (which wrote most layers) reads an all-NUL or blank numeric field as 0;
        // the tar crate calls it an error.
        let numeric = |field: &[u8], value: std::io::Result<u64>, what: &str| {
            value.or_else(|_| {
                if field.iter().all(|b| *b == 0 || *b == b' ') {
                    Ok(0)
                } else {
                    Err(bad(what))
                }
            })
        };
        let mut uid = numeric(&old.uid, header.uid(), "uid")?;
        let mut gid = numeric(&old.gid, header.gid(), "gid")?;
        let mode = numeric(&old.mode, header.mode().map(u64::from), "mode")? as u32 & 0o7777;
        let mut mtime = Timespec {
            tv_sec: clamp_secs(numeric(&old.mtime, header.mtime(), "mtime")?),
            tv_nsec: 0,
        };
        let gnu_atime = header.as_gnu().and_then(|g| g.atime().ok()).unwrap_or(0);
        let mut atime = (gnu_atime != 0).then(|| Timespec {
            tv_sec: clamp_secs(gnu_atime),
            tv_nsec: 0,
        });
        let mut xattrs = Vec::new();
        if let Some(records) = entry.pax_extensions().map_err(UnpackError::Read)? {
            for record in records {
                let record = record.map_err(UnpackError::Read)?;
                let Ok(key) = record.key() else { continue };
                let value = record.value_bytes();
                let num = || std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                match key {
                    "uid" => uid = num().ok_or_else(|| bad("PAX uid"))?,
                    "gid" => gid = num().ok_or_else(|| bad("PAX gid"))?,
                    "mtime" => mtime = pax_time(value).ok_or_else(|| bad("PAX mtime"))?,
                    "atime" => atime = Some(pax_time(value).ok_or_else(|| bad("PAX atime"))?),
                    _ => {
                        let Some(name) = key.strip_prefix(XATTR_PREFIX) else {
                            continue;
                        };
                        if name.starts_with(OVERLAY_XATTR_PREFIX) {
                            tracing::warn!(
                                entry = %String::from_utf8_lossy(&raw),
                                xattr = name,
                                "overlay xattr in a layer, skipped"
                            );
                            continue;
                        }
                        xattrs.push((name.as_bytes().to_vec(), value.to_vec()));
                    }
                }
            }
        }
        // As containerd: the access time is the later of atime and mtime.
        let atime = atime.map_or(mtime, |a| later(a, mtime));
        Ok(Meta {
            uid: Uid::from_raw_unchecked(id(uid).ok_or_else(|| bad("uid"))?),
            gid: Gid::from_raw_unchecked(id(gid).ok_or_else(|| bad("gid"))?),
            mode: Mode::from_raw_mode(mode),
            times: Timestamps {
                last_access: atime,
                last_modification: mtime,
            },
            xattrs,
        })
    }

    /// Owner, mode, xattrs and times of a regular file just written, through its fd.
    pub(super) fn apply_to_file(&self, file: &File, raw: &[u8]) -> Result<(), UnpackError> {
        let err = |op| super::error::apply_err(raw, op);
        rustix::fs::fchown(file, Some(self.uid), Some(self.gid))
            .map_err(|e| err("chown")(e.into()))?;
        rustix::fs::fchmod(file, self.mode).map_err(|e| err("chmod")(e.into()))?;
        for (name, value) in &self.xattrs {
            let set = rustix::fs::fsetxattr(file, name.as_slice(), value, XattrFlags::empty());
            check_xattr(set, name, FileType::RegularFile, raw)?;
        }
        rustix::fs::futimens(file, &self.times).map_err(|e| err("set times")(e.into()))
    }

    /// Owner, mode (not for symlinks, which have none) and xattrs of `name` in `dir`, never
    /// following `name`. Times are left to the caller (directories get theirs at the end).
    pub(super) fn apply_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        kind: FileType,
        raw: &[u8],
    ) -> Result<(), UnpackError> {
        let err = |op| super::error::apply_err(raw, op);
        rustix::fs::chownat(
            dir,
            name,
            Some(self.uid),
            Some(self.gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("chown")(e.into()))?;
        if kind != FileType::Symlink {
            // fchmodat follows a symlink, but `name` was just made by us and is not one.
            rustix::fs::chmodat(dir, name, self.mode, AtFlags::empty())
                .map_err(|e| err("chmod")(e.into()))?;
        }
        if !self.xattrs.is_empty() {
            let path = fd_relative_path(dir.as_fd(), name);
            for (key, value) in &self.xattrs {
                let set = rustix::fs::lsetxattr(&path, key.as_slice(), value, XattrFlags::empty());
                check_xattr(set, key, kind, raw)?;
            }
        }
        Ok(())
    }

    /// Sets the times of `name` in `dir` without following it.
    pub(super) fn set_times_at(
        times: &Timestamps,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> io::Result<()> {
        Ok(rustix::fs::utimensat(
            dir,
            name,
            times,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }
}

/// Xattrs the kernel refuses are skipped with a warning, as containerd does, when the refusal is
/// about the filesystem or the security policy rather than the layer: `EOPNOTSUPP` for any name
/// (the filesystem has no such namespace), `EPERM`/`EACCES`/`EINVAL` for `security.*` (an LSM
/// refusing a label or capability), `EPERM` for `user.*` on what is neither a file nor a
/// directory (the kernel allows them nowhere else). Anything else fails the layer.
fn check_xattr(
    res: rustix::io::Result<()>,
    name: &[u8],
    kind: FileType,
    raw: &[u8],
) -> Result<(), UnpackError> {
    let Err(errno) = res else { return Ok(()) };
    let plain = matches!(kind, FileType::RegularFile | FileType::Directory);
    let skip = errno == Errno::OPNOTSUPP
        || (name.starts_with(b"security.")
            && matches!(errno, Errno::PERM | Errno::ACCESS | Errno::INVAL))
        || (name.starts_with(b"user.") && errno == Errno::PERM && !plain);
    if skip {
        tracing::warn!(
            entry = %String::from_utf8_lossy(raw),
            xattr = %String::from_utf8_lossy(name),
            error = %errno,
            "xattr refused by the kernel, skipped"
        );
        return Ok(());
    }
    Err(super::error::apply_err(raw, "set xattr")(errno.into()))
}

fn id(value: u64) -> Option<u32> {
    u32::try_from(value).ok().filter(|v| *v != u32::MAX)
}

fn clamp_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn later(a: Timespec, b: Timespec) -> Timespec {
    if (a.tv_sec, a.tv_nsec) >= (b.tv_sec, b.tv_nsec) {
        a
    } else {
        b
    }
}

/// A PAX time: decimal seconds with an optional fraction, e.g. `1700000000.123456789`.
fn pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
    let mut tv_nsec: i64 = digits.parse().ok()?;
    let mut tv_sec = tv_sec;
    // "-1.25" is 1.25 s before the epoch: -2 s + 0.75 s.
    if secs.starts_with('-') && tv_nsec != 0 {
        tv_sec -= 1;
        tv_nsec = 1_000_000_000 - tv_nsec;
    }
    Some(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_pax_time() {
        let t = |s: &str| pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
    }
}
