//! Reading a `docker save` archive in one sequential pass, as it streams in. Every regular file
//! except the small metadata goes straight into the content store: `blobs/sha256/<hex>` verified
//! against the digest its name says, anything else (a legacy `<id>/layer.tar`) under the digest
//! of what it holds. Links are remembered and followed when the metadata names a path.

use std::{
    collections::HashMap,
    io::{self, Read, Write},
    path::{Component, Path},
};

use berth_types::{Digest, Sha256Digester};

use crate::{ImagesError, added::Added, compression, service::ImageService};

/// Metadata files (`manifest.json`, `index.json`, a legacy `<id>.json` config) are read whole;
/// none is anywhere near this size.
const MAX_METADATA: u64 = 16 << 20;
/// How many links a path may go through.
const MAX_LINKS: usize = 16;

pub(crate) fn invalid(msg: impl std::fmt::Display) -> ImagesError {
    ImagesError::InvalidArgument(format!("invalid archive: {msg}"))
}

fn read_error(e: io::Error) -> ImagesError {
    ImagesError::invalid_upload("tar archive", e)
}

/// What the archive holds, by path (relative, without `./`).
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// Small metadata files at the top of the archive.
    files: HashMap<String, Vec<u8>>,
    /// Every other regular file, as a blob in the content store.
    blobs: HashMap<String, Digest>,
    /// Symbolic and hard links: path → target path.
    links: HashMap<String, String>,
}

/// A file of the archive.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum File<'a> {
    Bytes(&'a [u8]),
    Blob(Digest),
}

/// `a/./b/` → `a/b`; `..` may not climb above the archive's root.
fn normalize(path: &Path) -> Result<String, ImagesError> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(invalid(format!(
                        "{} points outside the archive",
                        path.display()
                    )));
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(parts.join("/"))
}

/// The digest a `blobs/<algorithm>/<hex>` path names; `None` for other paths.
fn blob_name(path: &str) -> Result<Option<Digest>, ImagesError> {
    let Some(rest) = path.strip_prefix("blobs/") else {
        return Ok(None);
    };
    let Some((alg, hex)) = rest.split_once('/') else {
        return Ok(None);
    };
    format!("{alg}:{hex}")
        .parse()
        .map(Some)
        .map_err(|e| invalid(format!("{path} is not named by a digest: {e}")))
}

/// Whether a file is metadata read whole rather than stored as a blob (a v1 config,
/// `<id>/json`, too: the layout before Docker 1.10 has no other).
fn is_metadata(path: &str) -> bool {
    match path.split_once('/') {
        None => path.ends_with(".json") || path == "repositories" || path == "oci-layout",
        Some((dir, file)) => dir != "blobs" && file == "json",
    }
}

/// Legacy per-layer files nothing reads (`<id>/VERSION`).
fn is_ignored(path: &str) -> bool {
    !path.starts_with("blobs/") && path.ends_with("/VERSION")
}

impl Staged {
    /// The file at `path`, following links.
    pub(crate) fn get(&self, path: &str) -> Result<File<'_>, ImagesError> {
        let mut p = normalize(Path::new(path))?;
        for _ in 0..MAX_LINKS {
            if let Some(b) = self.files.get(&p) {
                return Ok(File::Bytes(b));
            }
            if let Some(d) = self.blobs.get(&p) {
                return Ok(File::Blob(d.clone()));
            }
            match self.links.get(&p) {
                Some(target) => p = target.clone(),
                None => {
                    return Err(invalid(format!(
                        "{path} is named by the archive's metadata but is not in it"
                    )));
                }
            }
        }
        Err(invalid(format!("too many links from {path}")))
    }

    /// A metadata file at the top of the archive, if there is one.
    pub(crate) fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The blobs stored from `blobs/...` paths.
    pub(crate) fn layout_blobs(&self) -> impl Iterator<Item = &Digest> {
        self.blobs
            .iter()
            .filter(|(p, _)| p.starts_with("blobs/"))
            .map(|(_, d)| d)
    }
}

impl ImageService {
    /// Reads the archive (plain, gzip or zstd) to its end. Blobs it stores are recorded in
    /// `added`. Blocking.
    pub(crate) fn stage(&self, input: impl Read, added: &mut Added) -> Result<Staged, ImagesError> {
        let d = compression::decompressed(input)?;
        if d.empty {
            return Err(invalid("the archive is empty"));
        }
        let mut staged = Staged::default();
        let mut archive = tar::Archive::new(d.reader);
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            let path = normalize(&entry.path().map_err(read_error)?)?;
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .ok_or_else(|| invalid(format!("link {path} without a target")))?;
                // A symlink is relative to its directory, a hard link to the archive's root.
                let base = if kind.is_symlink() {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(target)
                } else {
                    target.into_owned()
                };
                staged.links.insert(path, normalize(&base)?);
            } else if kind.is_file() || kind == tar::EntryType::Continuous {
                self.stage_file(&path, &mut entry, &mut staged, added)?;
            }
        }
        // Read what follows the end of the archive (record padding), so that the whole upload
        // is taken and the client never writes into a closed connection.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_error)?;
        Ok(staged)
    }

    fn stage_file(
        &self,
        path: &str,
        entry: &mut impl Read,
        staged: &mut Staged,
        added: &mut Added,
    ) -> Result<(), ImagesError> {
        if let Some(expected) = blob_name(path)? {
            let mismatch = |e: &dyn std::fmt::Display| {
                invalid(format!("{path} does not hold the blob its name says: {e}"))
            };
            if self.content.exists(&expected) {
                // Stored already; the bytes go by anyway (a stream does not skip), so they are
                // checked all the same: a damaged archive is reported as such.
                let mut digester = Sha256Digester::new();
                io::copy(entry, &mut digester).map_err(read_error)?;
                let actual = digester.finish();
                if actual != expected {
                    return Err(mismatch(&format!(
                        "digest mismatch: expected {expected}, got {actual}"
                    )));
                }
            } else {
                let mut w = self.content.writer()?;
                io::copy(entry, &mut w).map_err(read_error)?;
                w.commit(Some(&expected), None).map_err(|e| mismatch(&e))?;
                added.blobs.push(expected.clone());
            }
            staged.blobs.insert(path.to_owned(), expected);
        } else if is_metadata(path) {
            let mut buf = Vec::new();
            entry
                .take(MAX_METADATA + 1)
                .read_to_end(&mut buf)
                .map_err(read_error)?;
            if buf.len() as u64 > MAX_METADATA {
                return Err(invalid(format!("{path} is too large for metadata")));
            }
            staged.files.insert(path.to_owned(), buf);
        } else if !is_ignored(path) {
            // Stored under the digest of what it holds (a legacy layer.tar: its diff_id).
            let mut w = self.content.writer()?;
            let mut digester = Sha256Digester::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(read_error(e)),
                };
                digester.update(&buf[..n]);
                w.write_all(&buf[..n])
                    .map_err(|e| ImagesError::io(Path::new("ingest"), e))?;
            }
            let digest = digester.finish();
            if !self.content.exists(&digest) {
                w.commit(Some(&digest), None)?;
                added.blobs.push(digest.clone());
            }
            staged.blobs.insert(path.to_owned(), digest);
        }
        Ok(())
    }
}
