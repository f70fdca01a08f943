//! A stage's state between steps (its image and config) and what each step leaves: a new
//! image whose config is the stage's, with a history entry and, for COPY/ADD/WORKDIR, one
//! more layer. The cache: a step is reused when an image exists with the same parent and the
//! same step key (the container config with the step's `#(nop)` command, as moby compares),
//! the key of a COPY/ADD holding the checksum of what it copies.

use berth_types::Digest;
use serde_json::{Map, Value, json};

use super::{args::BuildArgs, fs::Tree};
use crate::{
    ImagesError, added::Added, compression::OCI_LAYER, layers::chain_ids, manifest::Descriptor,
    platform::Platform, service::ImageService, store::ImageRecord, stored::StoredManifest,
};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage being built.
pub(crate) struct StageState {
    /// The current image; `None` for `FROM scratch` before its first step.
    pub(crate) image: Option<ImageRecord>,
    /// The current image's config blob.
    pub(crate) blob: Map<String, Value>,
    pub(crate) args: BuildArgs,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub(crate) cmd_set: bool,
    pub(crate) maintainer: Option<String>,
}

/// A layer written to the content store (uncompressed: its digest is its diff ID).
pub(crate) struct NewLayer {
    pub(crate) diff_id: Digest,
    pub(crate) size: u64,
}

impl StageState {
    /// A stage on `image` (`None`: scratch), with `config` its config blob.
    pub(crate) fn new(
        image: Option<ImageRecord>,
        mut blob: Map<String, Value>,
        args: BuildArgs,
    ) -> StageState {
        if !blob.get("config").is_some_and(Value::is_object) {
            blob.insert(
                "config".to_owned(),
                Value::Object(crate::changes::empty_config()),
            );
        }
        let mut st = StageState {
            image,
            blob,
            args,
            cmd_set: false,
            maintainer: None,
        };
        let env = st.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            let mut env = env;
            env.push(DEFAULT_PATH.to_owned());
            st.config_mut().insert("Env".to_owned(), json!(env));
        }
        st
    }

    /// The blob of `FROM scratch`.
    pub(crate) fn scratch_blob(platform: &Platform) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("architecture".to_owned(), json!(platform.arch));
        m.insert("os".to_owned(), json!(platform.os));
        if let Some(v) = &platform.variant {
            m.insert("variant".to_owned(), json!(v));
        }
        m.insert(
            "rootfs".to_owned(),
            json!({"type": "layers", "diff_ids": []}),
        );
        m
    }

    pub(crate) fn config(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.blob
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    pub(crate) fn config_mut(&mut self) -> &mut Map<String, Value> {
        let slot = self
            .blob
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        match slot {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    fn strings(&self, key: &str) -> Vec<String> {
        self.config()
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn env(&self) -> Vec<String> {
        self.strings("Env")
    }

    /// SHELL, or `/bin/sh -c`.
    pub(crate) fn shell(&self) -> Vec<String> {
        let s = self.strings("Shell");
        if s.is_empty() {
            vec!["/bin/sh".to_owned(), "-c".to_owned()]
        } else {
            s
        }
    }

    pub(crate) fn workdir(&self) -> String {
        self.config()
            .get("WorkingDir")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The environment variables are expanded with: Env, then the build arguments it does
    /// not override.
    pub(crate) fn expansion_env(&self) -> berth_dockerfile::lex::EnvList {
        let env = self.env();
        let mut all = env.clone();
        all.extend(self.args.filter_allowed(&env));
        berth_dockerfile::lex::EnvList(all)
    }

    /// The short ID the stream prints (empty for scratch with no step yet).
    pub(crate) fn short_id(&self) -> String {
        self.image
            .as_ref()
            .map(|i| i.id.short().to_owned())
            .unwrap_or_default()
    }
}

/// How a step's command reads in its container config and history: the shell, then
/// `#(nop) ` and the comment as one word (`split`: moby's `withCmdComment`, two words).
pub(crate) fn nop_cmd(shell: &[String], comment: &str, split: bool) -> Vec<String> {
    let mut cmd = shell.to_vec();
    if split {
        cmd.push("#(nop) ".to_owned());
        cmd.push(comment.to_owned());
    } else {
        cmd.push(format!("#(nop) {comment}"));
    }
    cmd
}

impl ImageService {
    /// The files of the stage's image, as a tree (empty for scratch).
    pub(crate) fn image_tree(&self, image: Option<&ImageRecord>) -> Tree {
        let dirs = image
            .map(|i| {
                i.chain
                    .iter()
                    .rev()
                    .map(|c| self.layers.diff_dir(c))
                    .collect()
            })
            .unwrap_or_default();
        Tree::new(dirs)
    }

    /// An image event as moby's `LogImageEvent` writes it: the labels of `blob` (the image's
    /// config, which may not be stored yet), then `name`.
    pub(crate) fn labeled_event(
        &self,
        action: &str,
        id: &Digest,
        name: &str,
        blob: &Map<String, Value>,
    ) -> Option<berth_types::Event> {
        let labels = blob
            .get("config")
            .and_then(|c| c.get("Labels"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        crate::service::image_event_with(action, &id.to_string(), name, labels)
    }

    /// The step key of the stage's config with `cmd` as its command.
    pub(crate) fn step_key(st: &StageState, cmd: &[String]) -> (Map<String, Value>, String) {
        let mut cc = st.config().clone();
        cc.insert("Cmd".to_owned(), json!(cmd));
        let key = serde_json::to_string(&cc).unwrap_or_default();
        (cc, key)
    }

    /// A cached image for the step, if one exists: the stage moves to it.
    pub(crate) fn probe_cache(&self, st: &mut StageState, key: &str) -> Result<bool, ImagesError> {
        let parent = st.image.as_ref().map(|i| &i.id);
        let Some(rec) = self.store.build_cache_hit(parent, key)? else {
            return Ok(false);
        };
        let Ok(bytes) = self.content.read(&rec.id) else {
            return Ok(false);
        };
        let Ok(Value::Object(blob)) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(false);
        };
        st.blob = blob;
        st.image = Some(rec);
        Ok(true)
    }

    /// Records the step's image: the stage's config, `cc` as its container config, a history
    /// entry `created_by`, and `layer` (already in the content store) on top.
    pub(crate) fn commit_step(
        &self,
        st: &mut StageState,
        cc: Map<String, Value>,
        key: String,
        created_by: &str,
        layer: Option<NewLayer>,
    ) -> Result<(), ImagesError> {
        let mut added = Added::default();
        let result = self.commit_step_into(st, cc, key, created_by, layer, &mut added);
        self.release(added);
        result
    }

    fn commit_step_into(
        &self,
        st: &mut StageState,
        cc: Map<String, Value>,
        key: String,
        created_by: &str,
        layer: Option<NewLayer>,
        added: &mut Added,
    ) -> Result<(), ImagesError> {
        let now = time::OffsetDateTime::now_utc();
        let created = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut blob = st.blob.clone();
        blob.insert("container_config".to_owned(), Value::Object(cc));
        blob.insert("created".to_owned(), json!(created));
        if let Some(m) = &st.maintainer {
            blob.insert("author".to_owned(), json!(m));
        }
        let mut entry = json!({"created": created, "created_by": created_by});
        if let Some(m) = &st.maintainer {
            entry["author"] = json!(m);
        }
        if layer.is_none() {
            entry["empty_layer"] = json!(true);
        }
        let mut history = blob
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        history.push(entry);
        blob.insert("history".to_owned(), Value::Array(history));
        let parent = st.image.clone();
        let mut diff_ids = parent
            .as_ref()
            .map(|p| p.diff_ids.clone())
            .unwrap_or_default();
        let mut descriptors = match &parent {
            Some(p) if !p.diff_ids.is_empty() => self.complete_manifest(p)?.layers,
            _ => Vec::new(),
        };
        let mut size = parent.as_ref().map_or(0, |p| p.size);
        if let Some(l) = &layer {
            diff_ids.push(l.diff_id.clone());
            descriptors.push(Descriptor {
                media_type: OCI_LAYER.to_owned(),
                digest: l.diff_id.clone(),
                size: l.size,
                platform: None,
            });
        }
        let mut rootfs = json!({"type": "layers", "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()});
        if let Some(r) = blob.get("rootfs").and_then(Value::as_object)
            && let Some(t) = r.get("type")
        {
            rootfs["type"] = t.clone();
        }
        blob.insert("rootfs".to_owned(), rootfs);
        let chain = chain_ids(&diff_ids);
        if let Some(l) = &layer {
            let top = chain.last().cloned().unwrap_or_else(|| l.diff_id.clone());
            let existed = self.store.layer(&top)?.is_some() && self.layers.diff_dir(&top).is_dir();
            let file = self.content.open_blob(&l.diff_id)?;
            let parent_chain = chain.len().checked_sub(2).map(|i| chain[i].clone());
            let rec =
                self.layers
                    .ensure(&self.store, &top, &l.diff_id, parent_chain.as_ref(), file)?;
            if !existed {
                added.layers.push(top);
            }
            size += rec.size;
        }
        let bytes = serde_json::to_vec(&Value::Object(blob.clone())).map_err(ImagesError::store)?;
        let id = self.put_tracked(added, &bytes, None)?;
        let manifest = StoredManifest::build(false, &id, bytes.len() as u64, &descriptors);
        self.put_tracked(added, &manifest.bytes, Some(&manifest.digest))?;
        let mut blobs = vec![manifest.digest.clone(), id.clone()];
        blobs.extend(descriptors.iter().map(|d| d.digest.clone()));
        let rec = ImageRecord {
            id,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: Some(manifest.digest),
            chain,
            diff_ids,
            size,
            created: Some(created),
            added_at: now.unix_timestamp(),
            blobs,
            last_tag_time: None,
            parent: parent.map(|p| p.id),
            build_key: Some(key),
        };
        // moby's CommitBuildStep: an image `create` event per committed step, named by the
        // ID, with the image's labels.
        let event = self.labeled_event("create", &rec.id, &rec.id.to_string(), &blob);
        let rec = self.commit_image_with(rec, None, None, event.into_iter().collect())?;
        st.blob = blob;
        st.image = Some(rec);
        Ok(())
    }
}
