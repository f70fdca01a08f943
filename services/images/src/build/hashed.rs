//! The context's files hashed while they are unpacked: one pass over the stream, so that the
//! checksum of a COPY/ADD from the context (its cache key) reads no file back. A [`Tap`] under
//! the tar reader hashes the bytes of the entry being unpacked; [`Digests`] keeps each file's
//! digest by inode, with the size and modification time it had, and answers only while the
//! file still has them (a file written again by a later entry through another path is
//! re-recorded, or re-read).

use std::{
    cell::RefCell,
    collections::HashMap,
    io::{self, Read},
    os::unix::fs::MetadataExt,
    path::{Component, Path},
    rc::Rc,
};

use super::checksum::{Checksum, Hasher};

/// A context file's content digest, as it was when unpacked.
struct Known {
    len: u64,
    mtime: (i64, i64),
    digest: Checksum,
}

/// Content digests of the context's regular files, by (device, inode).
#[derive(Default)]
pub(crate) struct Digests {
    by_inode: HashMap<(u64, u64), Known>,
}

impl Digests {
    /// The digest of the file whose metadata is `m`, if it was hashed as unpacked and has not
    /// changed since.
    pub(crate) fn get(&self, m: &std::fs::Metadata) -> Option<&Checksum> {
        let k = self.by_inode.get(&(m.dev(), m.ino()))?;
        (m.is_file() && k.len == m.len() && k.mtime == (m.mtime(), m.mtime_nsec()))
            .then_some(&k.digest)
    }

    /// Records `digest` for the regular file at `host`, unpacked just now with `len` bytes;
    /// without a digest, forgets what was known of that file (it is read when hashed).
    fn record(&mut self, host: &Path, len: u64, digest: Option<Checksum>) {
        let Ok(m) = std::fs::symlink_metadata(host) else {
            return;
        };
        let key = (m.dev(), m.ino());
        match digest {
            Some(digest) if m.is_file() && m.len() == len => {
                let mtime = (m.mtime(), m.mtime_nsec());
                self.by_inode.insert(key, Known { len, mtime, digest });
            }
            _ => {
                self.by_inode.remove(&key);
            }
        }
    }
}

/// What the tap hashes: the stream's byte range of the entry being unpacked.
#[derive(Default)]
struct TapState {
    range: Option<(u64, u64)>,
    digester: Hasher,
}

/// A reader that counts the stream's bytes and hashes those of the current range.
pub(crate) struct Tap<R> {
    inner: R,
    pos: u64,
    state: Rc<RefCell<TapState>>,
}

/// The other end of a [`Tap`]: sets the range around each entry's unpacking.
pub(crate) struct TapHandle(Rc<RefCell<TapState>>);

pub(crate) fn tap<R: Read>(inner: R) -> (Tap<R>, TapHandle) {
    let state = Rc::new(RefCell::new(TapState::default()));
    (
        Tap {
            inner,
            pos: 0,
            state: state.clone(),
        },
        TapHandle(state),
    )
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (from, to) = (self.pos, self.pos + n as u64);
        self.pos = to;
        let mut st = self.state.borrow_mut();
        if let Some((start, end)) = st.range {
            let a = from.max(start);
            let b = to.min(end);
            if a < b {
                let (a, b) = ((a - from) as usize, (b - from) as usize);
                st.digester.update(&buf[a..b]);
            }
        }
        Ok(n)
    }
}

impl TapHandle {
    /// Unpacks `entry` into `dir`, hashing its data when it is a regular file and recording
    /// the digest in `digests`. Returns what `unpack_in` returns.
    pub(crate) fn unpack<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        dir: &Path,
        digests: &mut Digests,
    ) -> io::Result<bool> {
        let size = entry.size();
        let regular = entry.header().entry_type().is_file();
        if regular {
            let start = entry.raw_file_position();
            let mut st = self.0.borrow_mut();
            st.range = Some((start, start + size));
            st.digester = Hasher::new();
        }
        let unpacked = entry.unpack_in(dir);
        if !regular {
            return unpacked;
        }
        let hashed = {
            let mut st = self.0.borrow_mut();
            st.range = None;
            std::mem::take(&mut st.digester)
        };
        if matches!(unpacked, Ok(true))
            && let Some(rel) = entry.path().ok().and_then(|p| inside(&p))
        {
            let digest = (hashed.len() == size).then(|| hashed.finish());
            digests.record(&dir.join(rel), size, digest);
        }
        unpacked
    }
}

/// An entry's path inside the directory it is unpacked in (`None` if it would leave it).
fn inside(p: &Path) -> Option<std::path::PathBuf> {
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The digest of a file's content: known from the unpacking, or read.
pub(crate) fn file_digest(
    host: &Path,
    m: &std::fs::Metadata,
    known: Option<&Digests>,
) -> io::Result<Checksum> {
    if let Some(d) = known.and_then(|k| k.get(m)) {
        return Ok(*d);
    }
    let mut d = Hasher::new();
    io::copy(&mut std::fs::File::open(host)?, &mut d)?;
    Ok(d.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1);
            h.set_cksum();
            b.append_data(&mut h, name, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn files_are_hashed_as_unpacked_and_a_changed_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 100_000];
        let tar = tar_of(&[("./a", b"one"), ("d/b", &big), ("a", b"two")]);
        let (tap, handle) = tap(io::Cursor::new(tar));
        let mut archive = tar::Archive::new(tap);
        let mut digests = Digests::default();
        for e in archive.entries().unwrap() {
            handle
                .unpack(&mut e.unwrap(), dir.path(), &mut digests)
                .unwrap();
        }
        let known = |p: &str| {
            let host = dir.path().join(p);
            let m = std::fs::symlink_metadata(&host).unwrap();
            digests.get(&m).cloned()
        };
        // The later entry for `a` is the one recorded.
        assert_eq!(known("a"), Some(Checksum::of(b"two")));
        assert_eq!(known("d/b"), Some(Checksum::of(&big)));
        // Changed after the unpacking (same size, a new mtime): not answered, read again.
        let host = dir.path().join("a");
        std::fs::write(&host, b"six").unwrap();
        let m = std::fs::symlink_metadata(&host).unwrap();
        assert!(digests.get(&m).is_none());
        assert_eq!(
            file_digest(&host, &m, Some(&digests)).unwrap(),
            Checksum::of(b"six")
        );
    }
}
