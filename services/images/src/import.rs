//! `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.
//! The tarball is stored as it came, as the layer blob (verified against the digest computed
//! while it streams in), while the tar inside is read once to check it and to compute the
//! layer's diff_id. The config gets the host's (or the asked) platform, the `--change`
//! instructions, a history entry and the message; an OCI manifest is written for it, so it can
//! be saved and pushed like a pulled image.

use std::io::{self, Read, Write};

use berth_types::{ImageRef, Sha256Digester};
use serde_json::{Value, json};

use crate::{
    ImagesError, added::Added, changes, compression, content::IngestWriter, manifest::Descriptor,
    platform::Platform, service::ImageService, store::ImageRecord, stored::StoredManifest,
};

/// What `POST /images/create?fromSrc=` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImportSpec {
    pub(crate) repo: String,
    pub(crate) tag: String,
    pub(crate) changes: Vec<String>,
    pub(crate) message: String,
    pub(crate) platform: String,
    /// `-` for the request body, or the URL it was fetched from.
    pub(crate) source: String,
}

/// An import's options, checked before the tarball is read.
#[derive(Debug)]
pub(crate) struct ImportPlan {
    tag: Option<ImageRef>,
    config: serde_json::Map<String, Value>,
    platform: Platform,
    comment: String,
}

impl ImportSpec {
    /// Checks the reference, the platform and the changes, as moby does before it reads.
    pub(crate) fn plan(&self) -> Result<ImportPlan, ImagesError> {
        let tag = if self.repo.is_empty() {
            None
        } else {
            let r: ImageRef = self
                .repo
                .parse()
                .map_err(|e: berth_types::ReferenceError| {
                    ImagesError::InvalidArgument(e.to_string())
                })?;
            if r.digest().is_some() {
                return Err(ImagesError::InvalidArgument(
                    "cannot import digest reference".to_owned(),
                ));
            }
            let r = if self.tag.is_empty() {
                r
            } else {
                r.with_tag(&self.tag)
                    .map_err(|e| ImagesError::InvalidArgument(e.to_string()))?
            };
            Some(r.with_default_tag())
        };
        let platform = Platform::parse(&self.platform)?;
        if platform.os != "linux" {
            return Err(ImagesError::InvalidArgument(format!(
                "operating system is not supported: {}",
                platform.os
            )));
        }
        let mut config = changes::empty_config();
        changes::apply(&mut config, &self.changes)?;
        let comment = if self.message.is_empty() {
            format!("Imported from {}", self.source)
        } else {
            self.message.clone()
        };
        Ok(ImportPlan {
            tag,
            config,
            platform,
            comment,
        })
    }
}

fn bad_tar(e: io::Error) -> ImagesError {
    ImagesError::invalid_upload("tar archive", e)
}

/// Passes the bytes read through to the ingest writer, hashing them.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut IngestWriter,
    digester: Sha256Digester,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes what is read through it (the uncompressed tar: the diff_id).
struct Hashing<R> {
    inner: R,
    digester: Sha256Digester,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

impl ImageService {
    /// Imports the tarball `input` as `plan` says; returns the image. Blocking. Publishes
    /// `tag` (when tagged) and `import` once the image is recorded.
    pub(crate) fn import(
        &self,
        plan: ImportPlan,
        input: impl Read,
    ) -> Result<ImageRecord, ImagesError> {
        let mut added = Added::default();
        let result = self.import_into(plan, input, &mut added);
        self.release(added);
        result
    }

    fn import_into(
        &self,
        plan: ImportPlan,
        input: impl Read,
        added: &mut Added,
    ) -> Result<ImageRecord, ImagesError> {
        let mut w = self.content.writer()?;
        let mut tee = Tee {
            inner: input,
            out: &mut w,
            digester: Sha256Digester::new(),
        };
        let (compression, diff_id) = {
            let d = compression::decompressed(&mut tee)?;
            if d.empty {
                return Err(ImagesError::InvalidArgument(
                    "the tarball to import is empty".to_owned(),
                ));
            }
            let mut hashing = Hashing {
                inner: d.reader,
                digester: Sha256Digester::new(),
            };
            {
                let mut archive = tar::Archive::new(&mut hashing);
                for entry in archive.entries().map_err(bad_tar)? {
                    entry.map_err(bad_tar)?.path().map_err(bad_tar)?;
                }
            }
            // The end blocks and any padding belong to the diff_id too.
            io::copy(&mut hashing, &mut io::sink()).map_err(bad_tar)?;
            (d.compression, hashing.digester.finish())
        };
        io::copy(&mut tee, &mut io::sink()).map_err(bad_tar)?;
        let blob = tee.digester.finish();
        let size = w.written();
        if !self.content.exists(&blob) {
            w.commit(Some(&blob), Some(size))?;
            added.blobs.push(blob.clone());
        }
        let (chain, unpacked) =
            // The diff_id was computed from this very blob: no need to check it again.
            self.unpack_chain(std::slice::from_ref(&diff_id), std::slice::from_ref(&blob), false, added)?;

        let now = time::OffsetDateTime::now_utc();
        let created = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut config = json!({
            "architecture": plan.platform.arch,
            "os": plan.platform.os,
            "created": created,
            "comment": plan.comment,
            "config": plan.config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": created, "comment": plan.comment}],
        });
        if let Some(v) = &plan.platform.variant {
            config["variant"] = json!(v);
        }
        let config = serde_json::to_vec(&config).expect("a JSON value serializes");
        let id = self.put_tracked(added, &config, None)?;
        let layer = Descriptor {
            media_type: compression.layer_media_type(false).to_owned(),
            digest: blob.clone(),
            size,
            platform: None,
        };
        let manifest = StoredManifest::build(false, &id, config.len() as u64, &[layer]);
        self.put_tracked(added, &manifest.bytes, Some(&manifest.digest))?;
        let rec = ImageRecord {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: Some(manifest.digest.clone()),
            chain,
            diff_ids: vec![diff_id],
            size: unpacked,
            created: Some(created),
            added_at: now.unix_timestamp(),
            blobs: vec![manifest.digest, id.clone(), blob],
            last_tag_time: plan.tag.as_ref().map(|_| now.unix_timestamp()),
            parent: None,
            build_key: None,
        };
        let rec = self.commit_image(rec, plan.tag.as_ref(), None)?;
        if let Some(t) = &plan.tag {
            self.event("tag", &id.to_string(), &t.familiar_string());
        }
        self.event("import", &id.to_string(), &id.to_string());
        Ok(rec)
    }
}
