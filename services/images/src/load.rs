//! `docker load`: an archive as `docker save` writes it, in any of its forms: Docker's legacy
//! format (`manifest.json` naming a config and `<id>/layer.tar` layers, as dockerd 20.10
//! writes it), an OCI image layout (`index.json`, `blobs/sha256/...`), or both (moby 25 and
//! later, and Berth), or the layout before Docker 1.10 (`repositories`, `<id>/json`; see
//! `load_v1`). The archive is read once as it streams in (see `load_archive`); then every
//! image is checked (config, layer count, references) before any layer is unpacked, layers are
//! unpacked in chain order against the config's diff_ids, and only then are the images
//! recorded and tagged. A failure anywhere leaves nothing behind.

use std::{collections::HashMap, io::Read};

use berth_types::{Digest, ImageRef};
use serde::Deserialize;

use crate::{
    ImagesError,
    added::Added,
    compression,
    load_archive::{File, Staged, invalid},
    manifest::{self, Descriptor, Parsed},
    platform::Platform,
    save::{IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION},
    service::ImageService,
    store::ImageRecord,
    stored::StoredManifest,
};

/// A config larger than this is not a config.
const MAX_CONFIG: u64 = 16 << 20;
/// How deep indexes may nest in an OCI layout.
const MAX_DEPTH: usize = 4;

/// One entry of Docker's `manifest.json`.
#[derive(Debug, Deserialize)]
struct LegacyItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// An OCI layout's `index.json`.
#[derive(Debug, Deserialize)]
struct IndexJson {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    digest: Digest,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// An image of the archive, checked and ready to unpack.
#[derive(Debug)]
struct Candidate {
    id: Digest,
    config: serde_json::Value,
    /// Layer blobs, bottom first (in the content store).
    layers: Vec<Digest>,
    diff_ids: Vec<Digest>,
    /// The manifest the archive holds for it, if any.
    manifest: Option<StoredManifest>,
    tags: Vec<ImageRef>,
}

fn parse_tag(t: &str) -> Result<ImageRef, ImagesError> {
    let r: ImageRef = t
        .parse()
        .map_err(|e| invalid(format!("invalid reference {t:?}: {e}")))?;
    if r.digest().is_some() {
        return Err(invalid(format!("{t} is not a tag")));
    }
    Ok(r.with_default_tag())
}

/// The references an OCI index entry names: containerd's full image name, or a ref name that
/// is a whole reference (a bare tag names nothing without a repository).
fn oci_tags(annotations: &HashMap<String, String>) -> Result<Vec<ImageRef>, ImagesError> {
    if let Some(name) = annotations.get(IMAGE_NAME_ANNOTATION) {
        return Ok(vec![parse_tag(name)?]);
    }
    match annotations.get(REF_NAME_ANNOTATION) {
        Some(r) if r.contains(':') || r.contains('/') => Ok(vec![parse_tag(r)?]),
        _ => Ok(Vec::new()),
    }
}

impl ImageService {
    /// Loads the archive `input`; returns the lines for the client (`Loaded image: ...\n`).
    /// Blocking: call from `spawn_blocking`. Publishes `load` per image once recorded.
    pub(crate) fn load(&self, input: impl Read) -> Result<Vec<String>, ImagesError> {
        let mut added = Added::default();
        let result = self.load_into(input, &mut added);
        // Whatever the recorded images do not use goes: everything, after a failure.
        self.release(added);
        result
    }

    fn load_into(&self, input: impl Read, added: &mut Added) -> Result<Vec<String>, ImagesError> {
        let staged = self.stage(input, added)?;
        let candidates = self.candidates(&staged, added)?;
        if candidates.is_empty() {
            return Err(invalid("it holds no image"));
        }
        let mut unpacked = Vec::new();
        for c in &candidates {
            unpacked.push(self.unpack_chain(&c.diff_ids, &c.layers, true, added)?);
        }
        let mut manifests = Vec::new();
        for c in &candidates {
            manifests.push(match &c.manifest {
                Some(m) => m.digest.clone(),
                None => self.new_manifest(c, added)?,
            });
        }
        let mut lines = Vec::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for ((c, (chain, size)), manifest) in candidates.into_iter().zip(unpacked).zip(manifests) {
            let existing = self.store.image(&c.id)?;
            let mut blobs = vec![manifest.clone(), c.id.clone()];
            blobs.extend(c.layers.iter().cloned());
            let mut rec = ImageRecord {
                id: c.id.clone(),
                repo_tags: Vec::new(),
                repo_digests: Vec::new(),
                manifest: existing.and_then(|e| e.manifest).or(Some(manifest)),
                chain,
                diff_ids: c.diff_ids.clone(),
                size,
                created: c.config["created"].as_str().map(str::to_owned),
                added_at: now,
                blobs,
                last_tag_time: (!c.tags.is_empty()).then_some(now),
                parent: None,
                build_key: None,
            };
            if c.tags.is_empty() {
                self.commit_image(rec, None, None)?;
                lines.push(format!("Loaded image ID: {}\n", c.id));
                self.event("load", &c.id.to_string(), &c.id.to_string());
                continue;
            }
            for t in &c.tags {
                if let Some(old) = self.store.resolve(&t.to_string())?
                    && old != c.id
                {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string\n",
                        t.familiar_string()
                    ));
                }
                rec = self.commit_image(rec, Some(t), None)?;
                lines.push(format!("Loaded image: {}\n", t.familiar_string()));
            }
            self.event("load", &c.id.to_string(), &c.tags[0].familiar_string());
        }
        Ok(lines)
    }

    /// The images of the archive: from `manifest.json` when it has one (with the OCI manifest
    /// of the same image, if the archive holds it), else from the OCI `index.json`. Configs are
    /// stored; nothing is unpacked yet.
    fn candidates(
        &self,
        staged: &Staged,
        added: &mut Added,
    ) -> Result<Vec<Candidate>, ImagesError> {
        let mut out = Vec::new();
        if let Some(raw) = staged.metadata("manifest.json") {
            let items: Vec<LegacyItem> =
                serde_json::from_slice(raw).map_err(|e| invalid(format!("manifest.json: {e}")))?;
            for item in items {
                let config = self.file_bytes(staged, &item.config)?;
                let layers = item
                    .layers
                    .iter()
                    .map(|p| match staged.get(p)? {
                        File::Blob(d) => Ok(d),
                        File::Bytes(_) => Err(invalid(format!("{p} is not a layer"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let tags = item
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| parse_tag(t))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut c = self.candidate(&config, layers, tags, added)?;
                c.manifest = self.archived_manifest(staged, &c);
                out.push(c);
            }
        } else if let Some(raw) = staged.metadata("index.json") {
            let index: IndexJson =
                serde_json::from_slice(raw).map_err(|e| invalid(format!("index.json: {e}")))?;
            for entry in index.manifests {
                let m = self.oci_manifest(&entry.digest, 0)?;
                let config = self.blob_bytes(&m.1)?;
                let layers: Vec<Digest> = m.0.layers.iter().map(|l| l.digest.clone()).collect();
                for l in &m.0.layers {
                    self.check_blob(l)?;
                }
                let mut c =
                    self.candidate(&config, layers, oci_tags(&entry.annotations)?, added)?;
                c.manifest = Some(m.0);
                out.push(c);
            }
        } else if let Some(raw) = staged.metadata("repositories") {
            // The layout before Docker 1.10.
            for image in crate::load_v1::images(staged, raw, parse_tag)? {
                out.push(self.candidate(&image.config, image.layers, image.tags, added)?);
            }
        } else {
            return Err(invalid(
                "it has neither manifest.json nor index.json: not a docker save archive",
            ));
        }
        Ok(out)
    }

    /// Checks a config against its layers and stores it.
    fn candidate(
        &self,
        config: &[u8],
        layers: Vec<Digest>,
        tags: Vec<ImageRef>,
        added: &mut Added,
    ) -> Result<Candidate, ImagesError> {
        let id = Digest::sha256_of(config);
        let v: serde_json::Value = serde_json::from_slice(config)
            .map_err(|e| invalid(format!("the config of {id} is not JSON: {e}")))?;
        let diff_ids = v["rootfs"]["diff_ids"]
            .as_array()
            .ok_or_else(|| invalid(format!("the config of {id} has no rootfs.diff_ids")))?
            .iter()
            .map(|d| {
                d.as_str()
                    .and_then(|s| s.parse::<Digest>().ok())
                    .ok_or_else(|| invalid(format!("the config of {id} has a bad diff_id {d}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "image {id} has {} layers but its config lists {} diff_ids",
                layers.len(),
                diff_ids.len()
            )));
        }
        self.put_tracked(added, config, Some(&id))?;
        Ok(Candidate {
            id,
            config: v,
            layers,
            diff_ids,
            manifest: None,
            tags,
        })
    }

    /// A metadata file or a (small) blob of the archive, whole.
    fn file_bytes(&self, staged: &Staged, path: &str) -> Result<Vec<u8>, ImagesError> {
        match staged.get(path)? {
            File::Bytes(b) => Ok(b.to_vec()),
            File::Blob(d) => self.blob_bytes(&d),
        }
    }

    fn blob_bytes(&self, d: &Digest) -> Result<Vec<u8>, ImagesError> {
        let path = self.content.path(d);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() <= MAX_CONFIG => self.content.read(d),
            Ok(_) => Err(invalid(format!(
                "{d} is too large for a config or manifest"
            ))),
            Err(_) => Err(invalid(format!("blob {d} is not in the archive"))),
        }
    }

    fn check_blob(&self, l: &Descriptor) -> Result<(), ImagesError> {
        match std::fs::metadata(self.content.path(&l.digest)) {
            Ok(m) if m.len() == l.size => Ok(()),
            Ok(m) => Err(invalid(format!(
                "layer {} has {} bytes, its manifest says {}",
                l.digest,
                m.len(),
                l.size
            ))),
            Err(_) => Err(invalid(format!("layer {} is not in the archive", l.digest))),
        }
    }

    /// The image manifest `digest` names in an OCI layout, choosing the host's platform from an
    /// index; with its config digest.
    fn oci_manifest(
        &self,
        digest: &Digest,
        depth: usize,
    ) -> Result<(StoredManifest, Digest), ImagesError> {
        if depth > MAX_DEPTH {
            return Err(invalid("indexes nested too deep"));
        }
        let bytes = self.blob_bytes(digest)?;
        match manifest::parse(&bytes).map_err(|e| invalid(format!("{digest}: {e}")))? {
            Parsed::Image { config, .. } => {
                let m = StoredManifest::parse(bytes, &config.digest)
                    .ok_or_else(|| invalid(format!("{digest} is not an image manifest")))?;
                Ok((m, config.digest))
            }
            Parsed::Index(entries) => {
                let host = Platform::host();
                let chosen = entries
                    .iter()
                    .filter(|e| {
                        e.platform.as_ref().is_none_or(|p| {
                            host.matches(&p.os, &p.architecture, p.variant.as_deref())
                        })
                    })
                    .find(|e| self.content.exists(&e.digest))
                    .ok_or_else(|| {
                        invalid(format!(
                            "index {digest} has no manifest for {host} in the archive"
                        ))
                    })?;
                self.oci_manifest(&chosen.digest, depth + 1)
            }
        }
    }

    /// The manifest of the archive's OCI layout that describes `c`, if there is one.
    fn archived_manifest(&self, staged: &Staged, c: &Candidate) -> Option<StoredManifest> {
        staged.layout_blobs().find_map(|d| {
            let len = std::fs::metadata(self.content.path(d)).ok()?.len();
            if len > MAX_CONFIG {
                return None;
            }
            let m = StoredManifest::parse(self.content.read(d).ok()?, &c.id)?;
            let digests: Vec<&Digest> = m.layers.iter().map(|l| &l.digest).collect();
            (digests == c.layers.iter().collect::<Vec<_>>()).then_some(m)
        })
    }

    /// An OCI manifest for an image loaded without one; layer media types from the blobs.
    fn new_manifest(&self, c: &Candidate, added: &mut Added) -> Result<Digest, ImagesError> {
        let mut layers = Vec::new();
        for d in &c.layers {
            layers.push(Descriptor {
                media_type: compression::of_file(&self.content.path(d))?
                    .layer_media_type(false)
                    .to_owned(),
                digest: d.clone(),
                size: self.blob_size(d)?,
                platform: None,
            });
        }
        let config_size = self.blob_size(&c.id)?;
        let m = StoredManifest::build(false, &c.id, config_size, &layers);
        self.put_tracked(added, &m.bytes, Some(&m.digest))
    }
}
