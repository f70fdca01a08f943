//! `docker load` of an archive in the layout before Docker 1.10: a `repositories` file
//! (`{"repo": {"tag": "<v1 id>"}}`) and, per v1 image, `<id>/json` (its v1 config, naming its
//! `parent`) and `<id>/layer.tar`; no `manifest.json`. As dockerd does, each tagged image's
//! chain of parents becomes one image: the v1 config without its v1 fields, with the layers'
//! diff_ids as `rootfs` and one `history` entry per v1 image.

use std::collections::BTreeMap;

use berth_types::{Digest, ImageRef};
use serde_json::{Value, json};

use crate::{
    ImagesError,
    load_archive::{File, Staged, invalid},
};

/// How long a chain of parents may be (dockerd's layer limit).
const MAX_CHAIN: usize = 128;

/// An image of a v1 archive: its config (JSON), layer blobs (bottom first) and tags.
pub(crate) struct V1Image {
    pub(crate) config: Vec<u8>,
    pub(crate) layers: Vec<Digest>,
    pub(crate) tags: Vec<ImageRef>,
}

fn is_v1_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The fields of a v1 config that are not in an image config (moby's MakeConfigFromV1Config).
const V1_ONLY: [&str; 6] = ["id", "parent", "Size", "parent_id", "layer_id", "throwaway"];

/// The history entry of one v1 image (moby's HistoryFromConfig).
fn history(v1: &Value) -> Value {
    let mut h = serde_json::Map::new();
    for key in ["created", "author", "comment"] {
        if let Some(s) = v1[key].as_str().filter(|s| !s.is_empty()) {
            h.insert(key.to_owned(), json!(s));
        }
    }
    let cmd: Vec<&str> = v1["container_config"]["Cmd"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !cmd.is_empty() {
        h.insert("created_by".to_owned(), json!(cmd.join(" ")));
    }
    Value::Object(h)
}

/// The images `repositories` names, with the tags of each (ordered by repository and tag).
pub(crate) fn images(
    staged: &Staged,
    repositories: &[u8],
    parse_tag: impl Fn(&str) -> Result<ImageRef, ImagesError>,
) -> Result<Vec<V1Image>, ImagesError> {
    let repos: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_slice(repositories).map_err(|e| invalid(format!("repositories: {e}")))?;
    let mut by_id: BTreeMap<String, Vec<ImageRef>> = BTreeMap::new();
    let mut order = Vec::new();
    for (repo, tags) in &repos {
        for (tag, id) in tags {
            if !is_v1_id(id) {
                return Err(invalid(format!("repositories: invalid image ID {id:?}")));
            }
            let r = parse_tag(&format!("{repo}:{tag}"))?;
            if !by_id.contains_key(id) {
                order.push(id.clone());
            }
            by_id.entry(id.clone()).or_default().push(r);
        }
    }
    order
        .into_iter()
        .map(|id| {
            let tags = by_id.remove(&id).unwrap_or_default();
            image(staged, &id, tags)
        })
        .collect()
}

fn image(staged: &Staged, top: &str, tags: Vec<ImageRef>) -> Result<V1Image, ImagesError> {
    let mut chain: Vec<(String, Value)> = Vec::new();
    let mut next = Some(top.to_owned());
    while let Some(id) = next {
        if chain.len() >= MAX_CHAIN {
            return Err(invalid(format!(
                "image {top} has more than {MAX_CHAIN} parents"
            )));
        }
        if chain.iter().any(|(seen, _)| *seen == id) {
            return Err(invalid(format!("image {top} is its own parent")));
        }
        let v1: Value = match staged.get(&format!("{id}/json"))? {
            File::Bytes(b) => serde_json::from_slice(b)
                .map_err(|e| invalid(format!("{id}/json is not JSON: {e}")))?,
            File::Blob(_) => return Err(invalid(format!("{id}/json is not a v1 config"))),
        };
        next = match v1["parent"].as_str().filter(|p| !p.is_empty()) {
            Some(p) if is_v1_id(p) => Some(p.to_owned()),
            Some(p) => return Err(invalid(format!("{id}/json: invalid parent {p:?}"))),
            None => None,
        };
        chain.push((id, v1));
    }
    chain.reverse();
    let mut layers = Vec::new();
    let mut history_entries = Vec::new();
    for (id, v1) in &chain {
        match staged.get(&format!("{id}/layer.tar"))? {
            File::Blob(d) => layers.push(d),
            File::Bytes(_) => return Err(invalid(format!("{id}/layer.tar is not a layer"))),
        }
        history_entries.push(history(v1));
    }
    let Some((_, top_v1)) = chain.last() else {
        return Err(invalid(format!("image {top} has no config")));
    };
    let mut config = match top_v1 {
        Value::Object(m) => m.clone(),
        _ => return Err(invalid(format!("{top}/json is not an object"))),
    };
    for key in V1_ONLY {
        config.remove(key);
    }
    // A layer.tar is stored under the digest of what it holds: uncompressed, its diff_id.
    let diff_ids: Vec<String> = layers.iter().map(ToString::to_string).collect();
    config.insert(
        "rootfs".to_owned(),
        json!({"type": "layers", "diff_ids": diff_ids}),
    );
    config.insert("history".to_owned(), Value::Array(history_entries));
    let config = serde_json::to_vec(&Value::Object(config))
        .map_err(|e| invalid(format!("the config of {top}: {e}")))?;
    Ok(V1Image {
        config,
        layers,
        tags,
    })
}
