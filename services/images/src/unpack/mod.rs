//! The overlay2 snapshotter's "apply layer" step: a layer blob unpacked into the layer's `diff`
//! directory, as containerd's `archive.Apply` with overlay whiteout conversion does it.
//!
//! - Compression is detected from the magic bytes (gzip, zstd, else plain tar) and the blob is
//!   streamed, never held in memory. The diff_id is the sha256 of the decompressed stream, read
//!   to its end (end blocks and padding included).
//! - Regular files, directories, symlinks, hard links, character and block devices and fifos are
//!   made with the entry's owner, mode (setuid, setgid, sticky included), times (directories'
//!   once everything in them is written) and `SCHILY.xattr.*` PAX xattrs. Xattrs the kernel
//!   refuses for policy reasons are skipped with a warning (see `meta::check_xattr`);
//!   `trusted.overlay.*` xattrs in the layer are skipped: only whiteouts may make overlay
//!   metadata.
//! - Whiteouts become overlay whiteouts (see `whiteout`).
//! - Nothing outside the destination is ever created, changed or linked to: names with a `..`
//!   component reject the whole layer (`UnpackError::Unsafe`); absolute names are taken as
//!   relative to the destination; parent directories are resolved by the kernel with the
//!   destination as `/` (`openat2(RESOLVE_IN_ROOT)`), so symlinks in the layer, absolute or
//!   relative, lead to places inside it; the last component is never followed (see `root`).
//!   Symlinks themselves may point anywhere, as images need.
//!
//! The process must be root (owners, device nodes, `trusted.*` xattrs) on Linux 5.6 or newer
//! (`openat2`). It blocks: call it from `tokio::task::spawn_blocking`.

mod apply;
mod error;
mod meta;
mod path;
mod root;
mod stream;
mod whiteout;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_malicious;
#[cfg(test)]
mod testutil;

use std::io::Read;
use std::path::Path;

pub(crate) use error::UnpackError;

/// What applying a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnpackStats {
    /// `sha256:<hex>` of the uncompressed tar stream: the layer's diff_id.
    pub(crate) diff_id: String,
    /// Bytes written to regular files (their apparent size; hard links not counted again).
    pub(crate) size: u64,
    /// Tar members read, PAX and GNU long-name records merged into their member, global PAX
    /// headers not counted; whiteouts and the root entry (`./`) are counted.
    pub(crate) entries: u64,
}

/// Unpacks the layer blob `reader` (gzip, zstd or plain tar) into `dest`, an existing empty
/// directory (the layer's `diff` directory), converting whiteouts for overlayfs.
///
/// On error `dest` may hold part of the layer: the caller removes it. Nothing outside `dest` is
/// touched in any case; a traversal attempt fails the whole layer with
/// [`UnpackError::Unsafe`].
pub(crate) fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let root = root::Root::open(dest).map_err(|source| UnpackError::Dest {
        path: dest.to_owned(),
        source,
    })?;
    let tar_stream = stream::decompressed(reader).map_err(UnpackError::Read)?;
    let mut archive = tar::Archive::new(stream::Hashing::new(tar_stream));
    let mut applier = apply::Applier::new(root, berth_service::FreeSpace::new(dest));
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        applier.apply(&mut entry)?;
    }
    let (size, entries) = (applier.size, applier.entries);
    applier.finish()?;
    let diff_id = archive.into_inner().finish().map_err(UnpackError::Read)?;
    Ok(UnpackStats {
        diff_id,
        size,
        entries,
    })
}
