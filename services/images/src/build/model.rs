//! The build context as read from its tar, kept in memory: each regular file's mode, size and
//! content digest (and the bytes of small ones: the Dockerfile, `.dockerignore`), each
//! directory's mode. A fully cached rebuild needs nothing else: the Dockerfile is read, and the
//! checksum that keys a COPY/ADD from the context is computed, from this model, so that the
//! context is written to disk only when a step misses and copies from it ([`super::context`]).
//!
//! Only plain contexts are modelled: regular files and directories. A symlink, hard link,
//! device, or a path that is a file in one entry and a directory in another makes [`scan`]
//! answer `None`, and the context is unpacked and keyed from disk as before. The checksums are
//! the model's own (never compared with a disk-computed one: a context is modelled or not, the
//! same way every time), and a COPY the model cannot key for sure ([`Model::copy_checksum`]
//! answers `None`) is keyed from disk.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::{self, Read},
    path::{Component, Path},
};

use super::{
    checksum::{Checksum, Hasher},
    ignore::Ignore,
};

/// Files up to this size keep their bytes in the model (the Dockerfile, `.dockerignore`).
const SMALL: u64 = 64 << 10;

/// One entry of the context.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) dir: bool,
    /// Permission bits (`0o7777`) from the tar header (0o755 for a directory only implied).
    pub(crate) mode: u32,
    pub(crate) size: u64,
    /// A file's content checksum.
    pub(crate) digest: Option<Checksum>,
    /// A small file's bytes.
    pub(crate) data: Option<Vec<u8>>,
}

/// The context's entries by path (`/`-separated, relative, no `.` or `..`).
#[derive(Debug, Default)]
pub(crate) struct Model {
    entries: BTreeMap<String, Entry>,
}

/// An entry's path as unpacking places it: `None` when the entry is skipped (empty, or
/// leaving the directory), as `unpack_in` skips it.
fn entry_path(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?.to_owned()),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Why a scan gave up on the model (the context is then unpacked to disk).
#[derive(Debug)]
pub(crate) enum NoModel {
    /// An entry the model does not represent (a symlink, hard link, device, a type conflict).
    Unsupported,
    /// The stream could not be read (the disk path reports it).
    Read(io::Error),
}

/// Reads the tar stream `tar` to its end into a model, hashing each file's content.
pub(crate) fn scan(tar: impl Read) -> Result<Model, NoModel> {
    let mut model = Model::default();
    let mut archive = tar::Archive::new(tar);
    let mut buf = vec![0u8; 256 << 10];
    for entry in archive.entries().map_err(NoModel::Read)? {
        let mut entry = entry.map_err(NoModel::Read)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        if !(kind.is_dir() || kind.is_file() || kind.is_contiguous()) {
            return Err(NoModel::Unsupported);
        }
        let path = entry.path().map_err(NoModel::Read)?;
        let Some(path) = entry_path(&path) else {
            // Skipped by unpacking: read past it.
            continue;
        };
        let mode = entry.header().mode().map_err(NoModel::Read)? & 0o7777;
        let e = if kind.is_dir() {
            Entry {
                dir: true,
                mode,
                size: 0,
                digest: None,
                data: None,
            }
        } else {
            let size = entry.size();
            let mut d = Hasher::new();
            let mut data = (size <= SMALL).then(Vec::new);
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(NoModel::Read(e)),
                };
                d.update(&buf[..n]);
                if let Some(v) = &mut data {
                    v.extend_from_slice(&buf[..n]);
                }
            }
            if d.len() != size {
                return Err(NoModel::Read(io::Error::from(io::ErrorKind::UnexpectedEof)));
            }
            Entry {
                dir: false,
                mode,
                size,
                digest: Some(d.finish()),
                data,
            }
        };
        model.insert(path, e)?;
    }
    Ok(model)
}

impl Model {
    /// Records `e` at `path`, with the directories it implies; a file where a directory is (or
    /// the other way round) is not modelled.
    fn insert(&mut self, path: String, e: Entry) -> Result<(), NoModel> {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            match self.entries.get(parent) {
                Some(p) if !p.dir => return Err(NoModel::Unsupported),
                Some(_) => {}
                None => {
                    self.entries.insert(
                        parent.to_owned(),
                        Entry {
                            dir: true,
                            mode: 0o755,
                            size: 0,
                            digest: None,
                            data: None,
                        },
                    );
                }
            }
            at += i + 1;
        }
        match self.entries.get(&path) {
            Some(old) if old.dir != e.dir => Err(NoModel::Unsupported),
            _ => {
                self.entries.insert(path, e);
                Ok(())
            }
        }
    }

    /// The entry at `rel` (`.` and `..` resolved, `..` stopping at the root).
    pub(crate) fn get(&self, rel: &str) -> Option<&Entry> {
        self.entries.get(&normalize(rel))
    }

    /// Removes what `.dockerignore` excludes, as the disk's prune does.
    pub(crate) fn prune(&mut self, ignore: &Ignore) {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for k in self.entries.keys() {
            let parent = k.rsplit_once('/').map_or("", |(p, _)| p);
            children.entry(parent).or_default().push(k);
        }
        let mut gone = BTreeSet::new();
        prune_into(&self.entries, &children, "", ignore, &mut gone);
        for k in gone {
            self.entries.remove(&k);
        }
    }

    /// Everything under the directory `rel` (a normalized path; empty: the root), by path
    /// relative to it, in the order of the disk's walk.
    fn walk<'a>(&'a self, rel: &str) -> impl Iterator<Item = (&'a str, &'a Entry)> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let len = prefix.len();
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(move |(k, e)| (&k[len..], e))
    }

    /// The checksum of a COPY/ADD of `sources` (context paths or globs) to `dest`, as
    /// [`super::copy::CopyPlan`] shapes it (`file:`, `dir:`, `multi:`); `None` when the model
    /// cannot say for sure (a URL, a source not found, a destination the plan refuses): the
    /// step is then keyed from disk.
    pub(crate) fn copy_checksum(&self, sources: &[String], dest: &str) -> Option<String> {
        let mut resolved: Vec<String> = Vec::new();
        for s in sources {
            if s.starts_with("http://") || s.starts_with("https://") {
                return None;
            }
            if super::copy::is_glob(s) {
                let pattern = s.trim_start_matches('/').trim_start_matches("./");
                resolved.extend(
                    self.walk("")
                        .filter(|(p, _)| super::copy::glob_match(pattern, p))
                        .map(|(p, _)| p.to_owned()),
                );
                continue;
            }
            let p = normalize(s);
            if !p.is_empty() && !self.entries.contains_key(&p) {
                return None;
            }
            resolved.push(p);
        }
        if resolved.is_empty() || (resolved.len() > 1 && !dest.ends_with('/')) {
            return None;
        }
        let mut hashes: Vec<String> = resolved
            .iter()
            .map(|p| {
                let mut d = Hasher::new();
                match self.entries.get(p) {
                    Some(e) if !e.dir => {
                        hash_entry(&mut d, "", e);
                        format!("file:{}", d.finish().hex())
                    }
                    _ => {
                        for (rel, e) in self.walk(p) {
                            hash_entry(&mut d, rel, e);
                        }
                        format!("dir:{}", d.finish().hex())
                    }
                }
            })
            .collect();
        Some(if hashes.len() == 1 {
            hashes.remove(0)
        } else {
            let joined: Vec<&str> = hashes.iter().map(String::as_str).collect();
            format!("multi:{}", Checksum::of(joined.join(",")).hex())
        })
    }
}

/// An entry's name, type and permissions, size and content, as the cache key sees them.
fn hash_entry(d: &mut Hasher, name: &str, e: &Entry) {
    let kind = if e.dir { 0o040_000 } else { 0o100_000 };
    d.update(format!("{name}\0{:o}\0{}\0", kind | e.mode, e.size).as_bytes());
    if let Some(digest) = &e.digest {
        d.update(digest.hex().as_bytes());
    }
}

fn prune_into(
    entries: &BTreeMap<String, Entry>,
    children: &HashMap<&str, Vec<&str>>,
    dir: &str,
    ignore: &Ignore,
    gone: &mut BTreeSet<String>,
) {
    for &path in children.get(dir).map(Vec::as_slice).unwrap_or_default() {
        let excluded = ignore.excludes(path);
        if entries.get(path).is_some_and(|e| e.dir) {
            if excluded && !ignore.has_exceptions() {
                gone.insert(path.to_owned());
                gone.extend(
                    entries
                        .range(format!("{path}/")..)
                        .take_while(|(k, _)| k.starts_with(&format!("{path}/")))
                        .map(|(k, _)| k.clone()),
                );
            } else {
                prune_into(entries, children, path, ignore, gone);
                // Kept only if an exception brought something back under it.
                if excluded
                    && children
                        .get(path)
                        .is_none_or(|kids| kids.iter().all(|k| gone.contains(*k)))
                {
                    gone.insert(path.to_owned());
                }
            }
        } else if excluded {
            gone.insert(path.to_owned());
        }
    }
}

/// `rel` with `.` and `..` resolved (`..` stops at the root), without a leading or trailing `/`.
pub(crate) fn normalize(rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    parts.join("/")
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
