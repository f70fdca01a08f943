//! Directory trees as tar streams and tar streams into directories, as dockerd's go-archive
//! does it for `docker cp`, `docker export` and a committed container layer.

mod extract;
mod write;

pub use extract::{ExtractError, ExtractOptions, decompressed, extract};
pub use write::{OPAQUE_XATTR, TreeTar, Whiteouts, capability, is_opaque, is_whiteout};

#[cfg(test)]
mod tests;
