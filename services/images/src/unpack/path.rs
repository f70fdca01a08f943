//! Tar member names made into paths relative to the layer directory.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A member name split into its parent directory (relative to the layer root, empty for the
/// root itself) and its last component. Neither holds an empty, `.` or `..` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RelPath {
    pub(super) parent: PathBuf,
    pub(super) name: OsString,
}

impl RelPath {
    /// The whole path, relative to the layer root.
    pub(super) fn full(&self) -> PathBuf {
        self.parent.join(&self.name)
    }
}

/// Normalizes a member name (or a hard link's target): a leading `/` and `.` components are
/// dropped, so absolute names stay inside the layer; a `..` component or a NUL byte is an error
/// (the reason is returned). `Ok(None)` means the name is the layer root itself (`/`, `./`).
pub(super) fn normalize(raw: &[u8]) -> Result<Option<RelPath>, &'static str> {
    if raw.contains(&0) {
        return Err("the name contains a NUL byte");
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("the name has a `..` component"),
            _ => parts.push(part),
        }
    }
    let Some(name) = parts.pop() else {
        return Ok(None);
    };
    let parent = parts
        .iter()
        .map(|p| Path::new(OsStr::from_bytes(p)))
        .collect();
    Ok(Some(RelPath {
        parent,
        name: OsStr::from_bytes(name).to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Option<(String, String)> {
        normalize(raw.as_bytes()).unwrap().map(|p| {
            (
                p.parent.to_str().unwrap().to_owned(),
                p.name.to_str().unwrap().to_owned(),
            )
        })
    }

    #[test]
    fn unpack_path_normalization() {
        assert_eq!(ok("a/b/c"), Some(("a/b".into(), "c".into())));
        assert_eq!(ok("/etc/passwd"), Some(("etc".into(), "passwd".into())));
        assert_eq!(ok("./a//./b/"), Some(("a".into(), "b".into())));
        assert_eq!(ok("file"), Some((String::new(), "file".into())));
        assert_eq!(ok("./"), None);
        assert_eq!(ok("/"), None);
        assert_eq!(ok("."), None);
        assert_eq!(ok("..."), Some((String::new(), "...".into())));
        for bad in ["..", "../x", "a/../b", "a/..", "/../etc", "a/b/../../.."] {
            assert!(normalize(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(normalize(b"a\0b").is_err());
    }
}
