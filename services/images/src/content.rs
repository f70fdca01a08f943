//! The content store: blobs addressed by digest under `blobs/sha256/<hex>`. A blob enters only
//! whole and verified: it is written to `ingest/`, checked against its digest and size,
//! fsynced and renamed into place. Readers never see a partial blob.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use berth_service::{Bounded, FreeSpace};
use berth_types::{Digest, Sha256Digester};

use crate::ImagesError;

#[derive(Debug, Clone)]
pub(crate) struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
    /// Blobs stop before they take the filesystem's reserve.
    space: FreeSpace,
}

impl ContentStore {
    pub(crate) fn open(root: &Path) -> Result<ContentStore, ImagesError> {
        let store = ContentStore {
            blobs: root.join("blobs").join("sha256"),
            ingest: root.join("ingest"),
            space: FreeSpace::new(root),
        };
        for d in [&store.blobs, &store.ingest] {
            std::fs::create_dir_all(d).map_err(|e| ImagesError::io(d, e))?;
        }
        // Anything left in ingest/ is from an interrupted write: it never entered the store.
        if let Ok(entries) = std::fs::read_dir(&store.ingest) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(store)
    }

    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub(crate) fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<std::fs::File, ImagesError> {
        let p = self.path(digest);
        std::fs::File::open(&p).map_err(|e| ImagesError::io(&p, e))
    }

    /// Reads a small blob (manifest, config) whole.
    pub(crate) fn read(&self, digest: &Digest) -> Result<Vec<u8>, ImagesError> {
        let mut buf = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(|e| ImagesError::io(&self.path(digest), e))?;
        Ok(buf)
    }

    /// Stores `bytes`, which must hash to `digest` (when given); returns the digest.
    pub(crate) fn put(&self, bytes: &[u8], digest: Option<&Digest>) -> Result<Digest, ImagesError> {
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(|e| ImagesError::io(&w.path, e))?;
        w.commit(digest, Some(bytes.len() as u64))
    }

    /// A writer into `ingest/`; nothing is visible until `commit`.
    pub(crate) fn writer(&self) -> Result<IngestWriter, ImagesError> {
        let path = self.ingest.join(uuid::Uuid::new_v4().to_string());
        let file = std::fs::File::create(&path).map_err(|e| ImagesError::io(&path, e))?;
        Ok(IngestWriter {
            file: Some(self.space.bound(file)),
            digester: Sha256Digester::new(),
            path,
            blobs: self.blobs.clone(),
        })
    }

    pub(crate) fn delete(&self, digest: &Digest) -> Result<(), ImagesError> {
        let p = self.path(digest);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImagesError::io(&p, e)),
        }
    }

    /// Every stored blob's digest.
    #[cfg(test)]
    pub(crate) fn list(&self) -> Vec<Digest> {
        std::fs::read_dir(&self.blobs)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        format!("sha256:{}", e.file_name().to_string_lossy())
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A blob being written. Dropped without `commit`, it is removed.
pub(crate) struct IngestWriter {
    file: Option<Bounded<std::fs::File>>,
    digester: Sha256Digester,
    path: PathBuf,
    blobs: PathBuf,
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("ingest writer already committed"))?
            .write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl IngestWriter {
    pub(crate) fn written(&self) -> u64 {
        self.digester.len()
    }

    /// Verifies digest and size, fsyncs and moves the blob into the store.
    pub(crate) fn commit(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Digest, ImagesError> {
        let digester = std::mem::replace(&mut self.digester, Sha256Digester::new());
        let size = digester.len();
        let actual = digester.finish();
        // On any error below, dropping `self` with the file still held removes the ingest file.
        if let Some(want) = expected_size
            && want != size
        {
            return Err(ImagesError::Verify(format!(
                "size mismatch for {}: expected {want} bytes, got {size}",
                expected.map_or_else(|| actual.to_string(), ToString::to_string)
            )));
        }
        if let Some(want) = expected
            && *want != actual
        {
            return Err(ImagesError::Verify(format!(
                "digest mismatch: expected {want}, got {actual}"
            )));
        }
        let file = self.file.as_ref().expect("not yet committed");
        file.get_ref()
            .sync_all()
            .map_err(|e| ImagesError::io(&self.path, e))?;
        let dest = self.blobs.join(actual.hex());
        std::fs::rename(&self.path, &dest).map_err(|e| ImagesError::io(&dest, e))?;
        // Renamed into the store: nothing left for Drop to remove.
        self.file = None;
        if let Ok(dir) = std::fs::File::open(&self.blobs) {
            let _ = dir.sync_all();
        }
        Ok(actual)
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        // Not committed, or a commit that failed verification: the file goes. After a
        // successful commit it was renamed away and there is nothing to remove.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.put(b"hello", None).unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert!(cs.exists(&d));

        let wrong = Digest::sha256_of(b"other");
        let err = cs.put(b"hello!", Some(&wrong)).unwrap_err().to_string();
        assert!(err.contains("digest mismatch"), "{err}");
        assert!(!cs.exists(&wrong));
        let err = cs
            .writer()
            .unwrap()
            .commit(None, Some(3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("size mismatch"), "{err}");
        // Failed writes leave nothing in ingest/.
        assert_eq!(
            std::fs::read_dir(dir.path().join("ingest"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(cs.list(), vec![d.clone()]);
        cs.delete(&d).unwrap();
        assert!(!cs.exists(&d));
    }
}
