//! docker commit (and, later, each step of docker build): a snapshot's writable layer becomes
//! a layer on the snapshot's image, as moby's `CommitImage`/`NewChildImage` make it. The upper
//! directory is written as a tar with its overlay whiteouts turned into OCI ones, stored
//! gzipped as the layer blob while its diff_id is computed, then unpacked as a layer like a
//! pulled one. The config is the parent's platform and history, the given container config
//! with the `--change` instructions applied (and moby's merge over the defaults when a config
//! came with the request), a history entry and the new diff_id; an unchanged layer adds only an
//! empty-layer history entry. The manifest lists the parent's layer blobs and the new one, so
//! the image can be saved and pushed.

use std::io::{self, Write};

use berth_proto::images::v1 as pb;
use berth_treetar::{TreeTar, Whiteouts};
use berth_types::{Digest, ImageRef, Sha256Digester};
use serde_json::{Map, Value, json};

use crate::{
    ImagesError, added::Added, changes, compression::Compression, diff, manifest::Descriptor,
    service::ImageService, store::ImageRecord, stored::StoredManifest,
};

/// What a commit asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitSpec {
    pub(crate) key: String,
    pub(crate) config: pb::ImageConfig,
    pub(crate) defaults: Option<pb::ImageConfig>,
    pub(crate) changes: Vec<String>,
    pub(crate) repo: String,
    pub(crate) tag: String,
    pub(crate) comment: String,
    pub(crate) author: String,
    pub(crate) created_by: String,
    pub(crate) container_id: String,
    pub(crate) container: pb::ContainerFields,
}

impl CommitSpec {
    pub(crate) fn from_proto(r: pb::CommitRequest) -> CommitSpec {
        CommitSpec {
            key: r.snapshot_key,
            config: r.config.unwrap_or_default(),
            defaults: r.defaults,
            changes: r.changes,
            repo: r.repo,
            tag: r.tag,
            comment: r.comment,
            author: r.author,
            created_by: r.created_by,
            container_id: r.container_id,
            container: r.container.unwrap_or_default(),
        }
    }
}

/// Hashes what goes through it (the uncompressed layer: its diff_id).
struct Hashing<W> {
    inner: W,
    digester: Sha256Digester,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn list(v: &[String]) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

fn opt_list(v: Option<&pb::StringList>) -> Value {
    v.map_or(Value::Null, |l| json!(l.values))
}

fn set_of(v: &[String]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
}

/// A container config in Docker's JSON (moby's `container.Config`), as a committed image's
/// `config` carries it.
pub(crate) fn config_json(c: &pb::ImageConfig, f: &pb::ContainerFields) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Hostname".into(), json!(f.hostname));
    m.insert("Domainname".into(), json!(f.domainname));
    m.insert("User".into(), json!(c.user));
    m.insert("AttachStdin".into(), json!(f.attach_stdin));
    m.insert("AttachStdout".into(), json!(f.attach_stdout));
    m.insert("AttachStderr".into(), json!(f.attach_stderr));
    if !c.exposed_ports.is_empty() {
        m.insert("ExposedPorts".into(), set_of(&c.exposed_ports));
    }
    m.insert("Tty".into(), json!(f.tty));
    m.insert("OpenStdin".into(), json!(f.open_stdin));
    m.insert("StdinOnce".into(), json!(f.stdin_once));
    m.insert("Env".into(), list(&c.env));
    m.insert("Cmd".into(), opt_list(c.cmd.as_ref()));
    if let Some(h) = &c.healthcheck {
        let mut hc = Map::new();
        hc.insert("Test".into(), list(&h.test));
        for (k, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
            ("Retries", h.retries),
        ] {
            if v != 0 {
                hc.insert(k.into(), json!(v));
            }
        }
        m.insert("Healthcheck".into(), Value::Object(hc));
    }
    if c.args_escaped {
        m.insert("ArgsEscaped".into(), json!(true));
    }
    m.insert("Image".into(), json!(f.image));
    m.insert("Volumes".into(), set_of(&c.volumes));
    m.insert("WorkingDir".into(), json!(c.working_dir));
    m.insert("Entrypoint".into(), opt_list(c.entrypoint.as_ref()));
    m.insert("OnBuild".into(), list(&c.on_build));
    m.insert(
        "Labels".into(),
        if c.labels.is_empty() {
            Value::Null
        } else {
            json!(c.labels)
        },
    );
    if !c.stop_signal.is_empty() {
        m.insert("StopSignal".into(), json!(c.stop_signal));
    }
    if let Some(s) = &c.shell {
        m.insert("Shell".into(), json!(s.values));
    }
    m
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// moby's `merge`: what `user` leaves empty is taken from `image`; ports, env (by key), labels
/// and volumes are added to; the image's Cmd only with no Entrypoint given; the health check
/// field by field.
pub(crate) fn merge(user: &mut Map<String, Value>, image: &Map<String, Value>) {
    let take = |user: &mut Map<String, Value>, k: &str| {
        if is_empty(user.get(k))
            && let Some(v) = image.get(k)
        {
            user.insert(k.to_owned(), v.clone());
        }
    };
    for k in ["User", "WorkingDir", "StopSignal"] {
        take(user, k);
    }
    for k in ["ExposedPorts", "Volumes", "Labels"] {
        if is_empty(user.get(k)) {
            take(user, k);
        } else if let (Some(Value::Object(u)), Some(Value::Object(i))) =
            (user.get_mut(k), image.get(k))
        {
            for (ik, iv) in i {
                u.entry(ik.clone()).or_insert_with(|| iv.clone());
            }
        }
    }
    if is_empty(user.get("Env")) {
        take(user, "Env");
    } else if let (Some(Value::Array(u)), Some(Value::Array(i))) =
        (user.get_mut("Env"), image.get("Env"))
    {
        let key = |e: &Value| {
            e.as_str()
                .map(|s| s.split_once('=').map_or(s, |(k, _)| k).to_owned())
        };
        for ie in i {
            if !u.iter().any(|ue| key(ue) == key(ie)) {
                u.push(ie.clone());
            }
        }
    }
    if is_empty(user.get("Entrypoint")) {
        take(user, "Cmd");
        if user.get("Entrypoint").is_none_or(Value::is_null) {
            take(user, "Entrypoint");
        }
    }
    if let Some(Value::Object(ih)) = image.get("Healthcheck") {
        match user.get_mut("Healthcheck") {
            Some(Value::Object(uh)) => {
                for (k, v) in ih {
                    if is_empty(uh.get(k)) || uh.get(k) == Some(&json!(0)) {
                        uh.insert(k.clone(), v.clone());
                    }
                }
            }
            _ => {
                user.insert("Healthcheck".into(), Value::Object(ih.clone()));
            }
        }
    }
}

/// REPO[:TAG] as docker commit takes it; None when no repository is given.
fn tag_of(repo: &str, tag: &str) -> Result<Option<ImageRef>, ImagesError> {
    if repo.is_empty() {
        return Ok(None);
    }
    let bad = |e: berth_types::ReferenceError| ImagesError::InvalidArgument(e.to_string());
    let r: ImageRef = repo.parse().map_err(bad)?;
    if r.digest().is_some() {
        return Err(ImagesError::InvalidArgument(
            "refusing to create a tag with a digest reference".to_owned(),
        ));
    }
    let r = if tag.is_empty() {
        r
    } else {
        r.with_tag(tag).map_err(bad)?
    };
    Ok(Some(r.with_default_tag()))
}

impl ImageService {
    /// docker diff of the snapshot `key`.
    pub(crate) fn snapshot_changes(&self, key: &str) -> Result<Vec<diff::Change>, ImagesError> {
        let rec = self.snapshot(key)?;
        let lowers = diff::Lowers {
            dirs: rec
                .chain
                .iter()
                .rev()
                .map(|c| self.layers.diff_dir(c))
                .collect(),
        };
        Ok(diff::changes(&self.snapshot_upper(key), &lowers))
    }

    /// The writable layer of snapshot `key` as a tar (overlay whiteouts turned into OCI ones)
    /// written into `w`: `w` back, the tar's digest (its diff ID), and whether it is empty.
    fn upper_tar<W: Write>(&self, key: &str, w: W) -> Result<(W, Digest, bool), ImagesError> {
        let upper = self.snapshot_upper(key);
        let mut t = TreeTar::new(
            Hashing {
                inner: w,
                digester: Sha256Digester::new(),
            },
            Whiteouts::Oci,
        );
        t.append_tree(&upper, "")
            .map_err(|e| ImagesError::io(&upper, e))?;
        let empty = t.entries() == 0;
        let hashing = t.finish().map_err(|e| ImagesError::io(&upper, e))?;
        Ok((hashing.inner, hashing.digester.finish(), empty))
    }

    /// A build step's layer: the snapshot's writable layer as an uncompressed tar (overlay
    /// whiteouts turned into OCI ones) in the content store, its digest its diff ID; `None`
    /// when nothing changed. Blocking.
    pub(crate) fn snapshot_layer(
        &self,
        key: &str,
    ) -> Result<Option<crate::build::NewLayer>, ImagesError> {
        self.snapshot(key)?;
        let (mut w, diff_id, empty) = self.upper_tar(key, self.content.writer()?)?;
        if empty {
            return Ok(None);
        }
        w.flush()
            .map_err(|e| ImagesError::io(&self.snapshot_upper(key), e))?;
        let size = w.written();
        if self.content.exists(&diff_id) {
            drop(w);
        } else {
            w.commit(Some(&diff_id), Some(size))?;
        }
        Ok(Some(crate::build::NewLayer { diff_id, size }))
    }

    /// Commits as `spec` says; returns the new image. Blocking.
    pub(crate) fn commit(&self, spec: CommitSpec) -> Result<ImageRecord, ImagesError> {
        let mut added = Added::default();
        let r = self.commit_into(spec, &mut added);
        self.release(added);
        r
    }

    fn commit_into(&self, spec: CommitSpec, added: &mut Added) -> Result<ImageRecord, ImagesError> {
        let tag = tag_of(&spec.repo, &spec.tag)?;
        let container_config = config_json(&spec.config, &spec.container);
        let mut config = container_config.clone();
        changes::apply(&mut config, &spec.changes)?;
        if let Some(d) = &spec.defaults {
            merge(&mut config, &config_json(d, &spec.container));
        }
        let snap = self.snapshot(&spec.key)?;
        let parent = self.store.image(&snap.image)?.ok_or_else(|| {
            ImagesError::NotFound(format!(
                "the image {} of snapshot {} was removed",
                snap.image, spec.key
            ))
        })?;
        let parent_cfg: Value =
            serde_json::from_slice(&self.content.read(&parent.id)?).unwrap_or_else(|_| json!({}));
        let parent_layers = if parent.diff_ids.is_empty() {
            Vec::new()
        } else {
            self.complete_manifest(&parent)?.layers
        };

        // The layer: tar → diff_id → gzip → blob.
        let upper = self.snapshot_upper(&spec.key);
        let gz = flate2::write::GzEncoder::new(self.content.writer()?, flate2::Compression::fast());
        let (gz, diff_id, empty) = self.upper_tar(&spec.key, gz)?;
        let mut w = gz.finish().map_err(|e| ImagesError::io(&upper, e))?;
        w.flush().map_err(|e| ImagesError::io(&upper, e))?;

        let mut diff_ids = parent.diff_ids.clone();
        let mut layers = parent_layers;
        if !empty {
            let size = w.written();
            let blob = w.commit(None, None)?;
            added.blobs.push(blob.clone());
            diff_ids.push(diff_id);
            layers.push(Descriptor {
                media_type: Compression::Gzip.layer_media_type(false).to_owned(),
                digest: blob,
                size,
                platform: None,
            });
        }
        let blobs: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
        let (chain, unpacked) = self.unpack_chain(&diff_ids, &blobs, false, added)?;

        let now = time::OffsetDateTime::now_utc();
        let created = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut entry = Map::new();
        entry.insert("created".into(), json!(created));
        if !spec.author.is_empty() {
            entry.insert("author".into(), json!(spec.author));
        }
        if !spec.created_by.is_empty() {
            entry.insert("created_by".into(), json!(spec.created_by));
        }
        if !spec.comment.is_empty() {
            entry.insert("comment".into(), json!(spec.comment));
        }
        if empty {
            entry.insert("empty_layer".into(), json!(true));
        }
        let mut history = parent_cfg
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        history.push(Value::Object(entry));
        let mut img = Map::new();
        for k in ["architecture", "variant", "os", "os.version", "os.features"] {
            if let Some(v) = parent_cfg.get(k).filter(|v| !v.is_null()) {
                img.insert(k.into(), v.clone());
            }
        }
        img.entry("architecture")
            .or_insert_with(|| json!(crate::platform::Platform::host().arch));
        img.entry("os").or_insert_with(|| json!("linux"));
        if !spec.author.is_empty() {
            img.insert("author".into(), json!(spec.author));
        }
        img.insert("config".into(), Value::Object(config));
        if !spec.container_id.is_empty() {
            img.insert("container".into(), json!(spec.container_id));
            img.insert("container_config".into(), Value::Object(container_config));
        }
        img.insert("created".into(), json!(created));
        img.insert("history".into(), Value::Array(history));
        img.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()}),
        );
        let config_bytes = serde_json::to_vec(&Value::Object(img)).expect("JSON serializes");
        let id = self.put_tracked(added, &config_bytes, None)?;
        let manifest = StoredManifest::build(false, &id, config_bytes.len() as u64, &layers);
        self.put_tracked(added, &manifest.bytes, Some(&manifest.digest))?;
        let mut keep = vec![manifest.digest.clone(), id.clone()];
        keep.extend(blobs);
        let rec = ImageRecord {
            id: id.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: Some(manifest.digest.clone()),
            chain,
            diff_ids,
            size: unpacked,
            created: Some(created),
            added_at: now.unix_timestamp(),
            blobs: keep,
            last_tag_time: tag.as_ref().map(|_| now.unix_timestamp()),
            // As dockerd: a commit's parent is the container's image.
            parent: Some(parent.id.clone()),
            build_key: None,
        };
        let rec = self.commit_image(rec, tag.as_ref(), None)?;
        // moby's CommitImage: an image `create` event named by the ID, then the tag's.
        self.event("create", &id.to_string(), &id.to_string());
        if let Some(t) = &tag {
            self.event("tag", &id.to_string(), &t.familiar_string());
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_fills_what_the_user_config_leaves_empty() {
        let image = config_json(
            &pb::ImageConfig {
                user: "nobody".into(),
                env: vec!["A=1".into(), "B=2".into()],
                cmd: Some(pb::StringList {
                    values: vec!["sh".into()],
                }),
                working_dir: "/w".into(),
                labels: [("l".to_owned(), "v".to_owned())].into(),
                ..Default::default()
            },
            &pb::ContainerFields::default(),
        );
        let mut user = config_json(
            &pb::ImageConfig {
                env: vec!["B=3".into()],
                ..Default::default()
            },
            &pb::ContainerFields::default(),
        );
        merge(&mut user, &image);
        assert_eq!(user["User"], json!("nobody"));
        assert_eq!(user["Env"], json!(["B=3", "A=1"]));
        assert_eq!(user["Cmd"], json!(["sh"]));
        assert_eq!(user["WorkingDir"], json!("/w"));
        assert_eq!(user["Labels"], json!({"l": "v"}));
        // An entrypoint given keeps the image's Cmd out.
        let mut user = config_json(
            &pb::ImageConfig {
                entrypoint: Some(pb::StringList {
                    values: vec!["top".into()],
                }),
                ..Default::default()
            },
            &pb::ContainerFields::default(),
        );
        merge(&mut user, &image);
        assert_eq!(user["Cmd"], Value::Null);
        assert_eq!(user["Entrypoint"], json!(["top"]));
    }

    #[test]
    fn tags_are_checked() {
        assert!(tag_of("", "").unwrap().is_none());
        assert_eq!(
            tag_of("me/x", "").unwrap().unwrap().familiar_string(),
            "me/x:latest"
        );
        assert_eq!(
            tag_of("me/x", "v1").unwrap().unwrap().familiar_string(),
            "me/x:v1"
        );
        assert!(tag_of("Bad Name", "").is_err());
    }
}
