//! OCI whiteouts converted to overlayfs ones, as containerd's `OverlayConvertWhiteout`:
//! `dir/.wh.name` becomes a character device 0:0 at `dir/name` (owned as the entry says), and
//! `dir/.wh..wh..opq` sets `trusted.overlay.opaque=y` on `dir`. Other `.wh..wh.*` entries (such
//! as aufs' `.wh..wh.plnk`) are ignored. A whiteout entry is never written as a file.

use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{FileType, Mode, XattrFlags};

use super::error::{UnpackError, apply_err};
use super::meta::Meta;
use super::path::RelPath;
use super::root::{Root, remove_all_at};

const PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Applies `rel` if it is a whiteout and returns whether it was one.
pub(super) fn apply(
    root: &Root,
    rel: &RelPath,
    meta: &Meta,
    raw: &[u8],
) -> Result<bool, UnpackError> {
    let base = rel.name.as_bytes();
    let err = |op| apply_err(raw, op);
    if base == OPAQUE {
        let dir = root
            .dir(&rel.parent, true)
            .map_err(err("open opaque directory"))?;
        rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())
            .map_err(|e| err("set opaque xattr")(e.into()))?;
        return Ok(true);
    }
    if base.starts_with(META_PREFIX) {
        return Ok(true);
    }
    let Some(hidden) = base.strip_prefix(PREFIX) else {
        return Ok(false);
    };
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err(UnpackError::unsafe_entry(
            raw,
            "a whiteout of no name, `.` or `..`",
        ));
    }
    let hidden = std::ffi::OsStr::from_bytes(hidden);
    let dir = root
        .dir(&rel.parent, true)
        .map_err(err("open whiteout parent"))?;
    remove_all_at(dir.as_fd(), hidden).map_err(err("remove the whited-out entry"))?;
    rustix::fs::mknodat(&dir, hidden, FileType::CharacterDevice, Mode::empty(), 0)
        .map_err(|e| err("mknod whiteout")(e.into()))?;
    rustix::fs::chownat(
        &dir,
        hidden,
        Some(meta.uid),
        Some(meta.gid),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err("chown whiteout")(e.into()))?;
    Ok(true)
}
