//! Container snapshots in containerd's style: `prepare` makes a writable layer on top of an
//! image's layers and returns the overlay mount for it, without mounting anything (the
//! runtime mounts it inside the container's mount namespace). Layers under a snapshot are
//! never deleted.

use std::path::PathBuf;

use berth_types::Digest;
use serde::{Deserialize, Serialize};

use crate::{ImagesError, service::ImageService};

/// A snapshot as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SnapshotRecord {
    pub(crate) key: String,
    pub(crate) image: Digest,
    /// The image's chain, bottom first, as it was when prepared.
    pub(crate) chain: Vec<Digest>,
    pub(crate) created: i64,
}

/// One mount for mount(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) kind: String,
    pub(crate) source: String,
    pub(crate) options: Vec<String>,
}

/// containerd's identifier rule: `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters,
/// so a key is always a safe path component.
pub(crate) fn validate_key(key: &str) -> Result<(), ImagesError> {
    let ok = !key.is_empty()
        && key.len() <= 76
        && key
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(ImagesError::InvalidArgument(format!(
            "invalid snapshot key {key:?}: must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)* and be at most 76 characters"
        )))
    }
}

impl ImageService {
    /// Where the snapshots' directories are.
    fn snapshots_root(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    fn snapshot_dir(&self, key: &str) -> PathBuf {
        self.snapshots_root().join(key)
    }

    /// The snapshot's writable layer.
    pub(crate) fn snapshot_upper(&self, key: &str) -> PathBuf {
        self.snapshot_dir(key).join("upper")
    }

    fn mounts_of(&self, rec: &SnapshotRecord) -> Vec<Mount> {
        let dir = self.snapshot_dir(&rec.key);
        let mut lowers: Vec<String> = rec
            .chain
            .iter()
            .rev()
            .map(|c| self.layers.diff_dir(c).display().to_string())
            .collect();
        if lowers.is_empty() {
            // An image without layers (scratch): overlay needs a lower directory.
            lowers.push(dir.join("empty").display().to_string());
        }
        vec![Mount {
            kind: "overlay".to_owned(),
            source: "overlay".to_owned(),
            options: vec![
                format!("lowerdir={}", lowers.join(":")),
                format!("upperdir={}", dir.join("upper").display()),
                format!("workdir={}", dir.join("work").display()),
            ],
        }]
    }

    /// Creates the snapshot `key` on `image`; returns its mounts and the image ID.
    pub(crate) fn prepare(
        &self,
        key: &str,
        image: &str,
    ) -> Result<(Vec<Mount>, Digest), ImagesError> {
        validate_key(key)?;
        let img = self.find(image)?;
        for c in &img.chain {
            if !self.layers.diff_dir(c).is_dir() {
                return Err(ImagesError::NotFound(format!(
                    "layer {c} of image {} is missing; pull the image again",
                    img.id
                )));
            }
        }
        let rec = SnapshotRecord {
            key: key.to_owned(),
            image: img.id.clone(),
            chain: img.chain.clone(),
            created: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let dir = self.snapshot_dir(key);
        self.store.update(|tx| {
            if tx.snapshot(key)?.is_some() {
                return Err(ImagesError::AlreadyExists(format!(
                    "snapshot {key} already exists"
                )));
            }
            for sub in ["upper", "work", "empty"] {
                let d = dir.join(sub);
                std::fs::create_dir_all(&d).map_err(|e| ImagesError::io(&d, e))?;
            }
            tx.put_snapshot(&rec)
        })?;
        Ok((self.mounts_of(&rec), img.id))
    }

    pub(crate) fn snapshot(&self, key: &str) -> Result<SnapshotRecord, ImagesError> {
        validate_key(key)?;
        self.store
            .snapshot(key)?
            .ok_or_else(|| ImagesError::NotFound(format!("snapshot {key} does not exist")))
    }

    pub(crate) fn mounts(&self, key: &str) -> Result<(Vec<Mount>, Digest), ImagesError> {
        let rec = self.snapshot(key)?;
        Ok((self.mounts_of(&rec), rec.image))
    }

    /// Removes the snapshot's record, then its directory. Without a record, a directory left by
    /// a remove that a kill cut between the two is removed all the same (the caller's retry
    /// finishes the job); with neither, the snapshot does not exist.
    pub(crate) fn remove_snapshot(&self, key: &str) -> Result<(), ImagesError> {
        let recorded = match self.snapshot(key) {
            Ok(_) => true,
            Err(ImagesError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if recorded {
            self.store.update(|tx| tx.delete_snapshot(key))?;
        }
        let dir = self.snapshot_dir(key);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && recorded => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ImagesError::NotFound(
                format!("snapshot {key} does not exist"),
            )),
            Err(e) => Err(ImagesError::io(&dir, e)),
        }
    }

    /// Removes the directories of snapshots that have no record: a prepare or a remove that a
    /// crash or kill cut between its directory and its transaction. Run when the service
    /// starts, before it serves (no prepare is under way then). Returns how many went.
    pub(crate) fn sweep_snapshots(&self) -> Result<usize, ImagesError> {
        let root = self.snapshots_root();
        let entries = match std::fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ImagesError::io(&root, e)),
        };
        let known: std::collections::HashSet<String> =
            self.store.snapshots()?.into_iter().map(|s| s.key).collect();
        let mut swept = 0;
        for entry in entries {
            let entry = entry.map_err(|e| ImagesError::io(&root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&name) || validate_key(&name).is_err() {
                continue;
            }
            let dir = entry.path();
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => swept += 1,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "removing a snapshot left without a record")
                }
            }
        }
        Ok(swept)
    }

    /// Every snapshot.
    pub(crate) fn snapshot_list(&self) -> Result<Vec<SnapshotRecord>, ImagesError> {
        self.store.snapshots()
    }

    /// Bytes and inodes in the writable layer.
    pub(crate) fn usage(&self, key: &str) -> Result<(u64, u64), ImagesError> {
        self.snapshot(key)?;
        let upper = self.snapshot_dir(key).join("upper");
        let size = berth_service::disk_usage(&upper).map_err(|e| ImagesError::io(&upper, e))?;
        let inodes = walk_count(&upper);
        Ok((size, inodes))
    }

    /// Whether any snapshot sits on this layer.
    pub(crate) fn snapshot_uses(&self, chain_id: &Digest) -> Result<bool, ImagesError> {
        Ok(self
            .store
            .snapshots()?
            .iter()
            .any(|s| s.chain.contains(chain_id)))
    }

    /// The snapshots prepared from this image.
    pub(crate) fn snapshots_of(&self, image: &Digest) -> Result<Vec<String>, ImagesError> {
        Ok(self
            .store
            .snapshots()?
            .into_iter()
            .filter(|s| s.image == *image)
            .map(|s| s.key)
            .collect())
    }
}

fn walk_count(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            n += 1;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["abc", "a.b-c_d", &"a".repeat(76), "0123456789abcdef"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "..", "a/b", "-a", "a-", "a..b", &"a".repeat(77), "a b"] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }
}
