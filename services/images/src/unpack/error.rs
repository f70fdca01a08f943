//! Errors of the layer unpacker.

use std::io;
use std::path::PathBuf;

/// Why a layer could not be applied. On any error the destination may hold a partial tree: the
/// caller removes it. Nothing outside the destination has been touched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnpackError {
    /// The destination directory could not be opened.
    #[error("opening the layer directory {path}")]
    Dest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The blob could not be read, decompressed or parsed as a tar stream.
    #[error("reading the layer stream")]
    Read(#[source] io::Error),
    /// An entry tries to leave the destination (`..`, a NUL byte, a whiteout of `..`). The whole
    /// layer is rejected.
    #[error("unsafe entry {path:?} in layer: {reason}")]
    Unsafe { path: String, reason: &'static str },
    /// An entry the unpacker does not handle (an unknown tar type, an id or a time out of range).
    #[error("unsupported entry {path:?} in layer: {reason}")]
    Unsupported { path: String, reason: String },
    /// A filesystem operation failed while applying an entry.
    #[error("applying {path:?}: {op}")]
    Apply {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// The out-of-space message, when the layer stopped because the disk is down to its reserve.
    pub(crate) fn storage_full(&self) -> Option<String> {
        match self {
            UnpackError::Read(e) | UnpackError::Apply { source: e, .. } => {
                berth_service::storage_full(e)
            }
            _ => None,
        }
    }

    pub(super) fn unsafe_entry(raw: &[u8], reason: &'static str) -> Self {
        UnpackError::Unsafe {
            path: String::from_utf8_lossy(raw).into_owned(),
            reason,
        }
    }

    pub(super) fn unsupported(raw: &[u8], reason: impl Into<String>) -> Self {
        UnpackError::Unsupported {
            path: String::from_utf8_lossy(raw).into_owned(),
            reason: reason.into(),
        }
    }
}

/// Wraps an I/O error of a filesystem step with the entry's path and the step's name.
pub(super) fn apply_err(raw: &[u8], op: &'static str) -> impl FnOnce(io::Error) -> UnpackError {
    move |source| UnpackError::Apply {
        path: String::from_utf8_lossy(raw).into_owned(),
        op,
        source,
    }
}
