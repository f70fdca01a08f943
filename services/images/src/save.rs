//! `docker save`: images as one tar in the format of moby 25 and later, an OCI image layout
//! (`oci-layout`, `index.json` naming each tagged manifest with `io.containerd.image.name` and
//! `org.opencontainers.image.ref.name`, `blobs/sha256/...`) plus Docker's `manifest.json` and
//! `repositories`, which older engines (dockerd 20.10) load. Blobs go out as stored: layers
//! compressed as they were pulled, the manifest an image was pulled or loaded with. The tar is
//! written as it streams out; no blob is read whole.

use std::{
    collections::{BTreeMap, HashSet},
    io::Write,
};

use berth_types::{AnyReference, Digest, ImageRef};
use serde_json::{Value, json};

use crate::{
    ImagesError, manifest::OCI_INDEX, service::ImageService, store::ImageRecord,
    stored::StoredManifest,
};

/// containerd's annotation with an image's full name, on `index.json` entries.
pub(crate) const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The OCI annotation with a tag (or a reference), on `index.json` entries.
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// One image to save and the references it is saved under.
#[derive(Debug)]
struct SaveImage {
    rec: ImageRecord,
    /// Tagged references (`docker.io/library/busybox:latest`), none when saved by ID.
    refs: Vec<ImageRef>,
    manifest: StoredManifest,
    config: Value,
}

/// What a save will write, decided before the first byte goes out.
#[derive(Debug)]
pub(crate) struct SavePlan {
    images: Vec<SaveImage>,
}

fn not_found(name: &str) -> ImagesError {
    ImagesError::NotFound(format!("No such image: {name}"))
}

impl ImageService {
    /// Resolves `names` as moby does: an ID (or ID prefix) saves the image untagged, `repo:tag`
    /// saves it under that tag, a bare `repo` saves every tag of the repository. Fails, before
    /// anything is written, on an unknown name or an image whose blobs are missing.
    pub(crate) fn plan_save(&self, names: &[String]) -> Result<SavePlan, ImagesError> {
        if names.is_empty() {
            return Err(ImagesError::InvalidArgument(
                "no image names given to save".to_owned(),
            ));
        }
        let mut chosen: Vec<(ImageRecord, Vec<ImageRef>)> = Vec::new();
        let mut add = |rec: ImageRecord, r: Option<ImageRef>| {
            let at = match chosen.iter().position(|(c, _)| c.id == rec.id) {
                Some(i) => i,
                None => {
                    chosen.push((rec, Vec::new()));
                    chosen.len() - 1
                }
            };
            if let Some(r) = r
                && !chosen[at].1.contains(&r)
            {
                chosen[at].1.push(r);
            }
        };
        for name in names {
            let parsed = AnyReference::parse(name)
                .map_err(|e| ImagesError::InvalidArgument(format!("{e}: {name}")))?;
            match parsed {
                AnyReference::Id(_) => add(self.find(name)?, None),
                // `sha256:<prefix>`: an ID prefix.
                AnyReference::Named(r) if r.familiar_name() == "sha256" => {
                    add(self.find(name)?, None);
                }
                AnyReference::Named(r) if r.is_name_only() => {
                    let mut tagged = Vec::new();
                    for rec in self.store.images()? {
                        for t in &rec.repo_tags {
                            if let Ok(tr) = t.parse::<ImageRef>()
                                && tr.name() == r.name()
                            {
                                tagged.push((tr, rec.clone()));
                            }
                        }
                    }
                    tagged.sort_by(|a, b| a.0.cmp(&b.0));
                    if tagged.is_empty() {
                        add(self.find(name)?, None);
                    }
                    for (tr, rec) in tagged {
                        add(rec, Some(tr));
                    }
                }
                AnyReference::Named(r) => {
                    let id = self
                        .store
                        .resolve(&r.to_string())?
                        .ok_or_else(|| not_found(name))?;
                    let rec = self.store.image(&id)?.ok_or_else(|| not_found(name))?;
                    // A digest reference names content, not a tag: saved untagged.
                    let tag = r.digest().is_none().then_some(r);
                    add(rec, tag);
                }
            }
        }
        let mut images = Vec::new();
        for (rec, refs) in chosen {
            let manifest = self.complete_manifest(&rec)?;
            let config = serde_json::from_slice(&self.content.read(&rec.id)?)
                .map_err(|e| ImagesError::Verify(format!("invalid config of {}: {e}", rec.id)))?;
            images.push(SaveImage {
                rec,
                refs,
                manifest,
                config,
            });
        }
        Ok(SavePlan { images })
    }

    /// Writes the archive of `plan` to `out`. Blocking: call from `spawn_blocking`. Publishes
    /// `save` for each image once the whole archive is written.
    pub(crate) fn write_save(&self, plan: &SavePlan, out: impl Write) -> Result<(), ImagesError> {
        let io = |e: std::io::Error| ImagesError::io(std::path::Path::new("docker save"), e);
        let mut tar = tar::Builder::new(out);
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0, 0o755);
            tar.append_data(&mut h, dir, std::io::empty()).map_err(io)?;
        }
        let mut written: HashSet<Digest> = HashSet::new();
        let mut index = Vec::new();
        let mut legacy = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in &plan.images {
            let blobs =
                std::iter::once(&img.rec.id).chain(img.manifest.layers.iter().map(|l| &l.digest));
            for d in blobs {
                if written.insert(d.clone()) {
                    let path = self.content.path(d);
                    let f = std::fs::File::open(&path).map_err(|e| ImagesError::io(&path, e))?;
                    let len = f.metadata().map_err(|e| ImagesError::io(&path, e))?.len();
                    let mut h = header(tar::EntryType::Regular, len, 0o644);
                    tar.append_data(&mut h, blob_path(d), f).map_err(io)?;
                }
            }
            if written.insert(img.manifest.digest.clone()) {
                let bytes = &img.manifest.bytes;
                let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
                tar.append_data(&mut h, blob_path(&img.manifest.digest), &bytes[..])
                    .map_err(io)?;
            }
            let mut platform = json!({
                "architecture": img.config["architecture"].as_str().unwrap_or_default(),
                "os": img.config["os"].as_str().unwrap_or("linux"),
            });
            if let Some(v) = img.config["variant"].as_str().filter(|v| !v.is_empty()) {
                platform["variant"] = json!(v);
            }
            let descriptor = json!({
                "mediaType": img.manifest.media_type,
                "digest": img.manifest.digest.to_string(),
                "size": img.manifest.bytes.len(),
                "platform": platform,
            });
            if img.refs.is_empty() {
                index.push(descriptor.clone());
            }
            for r in &img.refs {
                let mut d = descriptor.clone();
                d["annotations"] = json!({
                    IMAGE_NAME_ANNOTATION: r.to_string(),
                    REF_NAME_ANNOTATION: r.tag().unwrap_or("latest"),
                });
                index.push(d);
                repositories.entry(r.familiar_name()).or_default().insert(
                    r.tag().unwrap_or("latest").to_owned(),
                    img.rec.id.hex().to_owned(),
                );
            }
            legacy.push(json!({
                "Config": blob_path(&img.rec.id),
                "RepoTags": if img.refs.is_empty() { Value::Null } else {
                    json!(img.refs.iter().map(ImageRef::familiar_string).collect::<Vec<_>>())
                },
                "Layers": img.manifest.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
            }));
        }
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index});
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("index.json", to_json(&index)),
            ("manifest.json", to_json(&Value::Array(legacy))),
            ("oci-layout", OCI_LAYOUT.as_bytes().to_vec()),
        ];
        if !repositories.is_empty() {
            files.push(("repositories", to_json(&json!(repositories))));
        }
        for (name, bytes) in files {
            let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
            tar.append_data(&mut h, name, &bytes[..]).map_err(io)?;
        }
        tar.into_inner()
            .and_then(|mut out| out.flush())
            .map_err(io)?;
        for img in &plan.images {
            let name = img
                .refs
                .first()
                .map_or_else(|| img.rec.id.to_string(), ImageRef::familiar_string);
            self.event("save", &img.rec.id.to_string(), &name);
        }
        Ok(())
    }
}

/// `blobs/sha256/<hex>`.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn to_json(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).expect("a JSON value serializes");
    out.push(b'\n');
    out
}

/// A ustar header: owned by root, mtime 0 (the epoch, as moby writes save archives).
fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}
