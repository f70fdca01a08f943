//! Image operations on what is stored: list, inspect, history, tag, remove, prune.

use std::collections::{BTreeMap, HashSet};

use berth_proto::images::v1 as pb;
use berth_types::{Digest, Filters, ImageRef, validate_tag};
use serde_json::{Value, json};

use crate::{ImagesError, service::ImageService, store::ImageRecord};

/// Filter keys `GET /images/json` accepts.
const LIST_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since", "until"];
/// Filter keys `POST /images/prune` accepts.
const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

fn familiar(reference: &str) -> String {
    reference
        .parse::<ImageRef>()
        .map_or_else(|_| reference.to_owned(), |r| r.familiar_string())
}

fn rfc3339_to_unix(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn unix_to_rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned())
}

/// `until`: a unix timestamp, an RFC 3339 time, or a Go duration before now (`24h`).
fn parse_until(v: &str) -> Result<i64, ImagesError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Ok(t) = v.split('.').next().unwrap_or(v).parse::<i64>() {
        return Ok(t);
    }
    if let Some(t) = rfc3339_to_unix(v) {
        return Ok(t);
    }
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().map_err(|_| {
        ImagesError::InvalidArgument(format!(
            "failed to parse value as time or duration: \"{v}\""
        ))
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(ImagesError::InvalidArgument(format!(
                "failed to parse value as time or duration: \"{v}\""
            )));
        }
    };
    Ok(now - secs as i64)
}

impl ImageService {
    fn config_of(&self, rec: &ImageRecord) -> Value {
        self.content
            .read(&rec.id)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    fn created_of(&self, rec: &ImageRecord) -> i64 {
        rec.created
            .as_deref()
            .and_then(rfc3339_to_unix)
            .unwrap_or(rec.added_at)
    }

    fn summary(&self, rec: &ImageRecord) -> pb::ImageSummary {
        let cfg = self.config_of(rec);
        let labels: BTreeMap<String, String> =
            serde_json::from_value(cfg["config"]["Labels"].clone()).unwrap_or_default();
        pb::ImageSummary {
            id: rec.id.to_string(),
            parent_id: String::new(),
            repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
            created: self.created_of(rec),
            size: rec.size as i64,
            shared_size: -1,
            labels: labels.into_iter().collect(),
            containers: -1,
        }
    }

    /// Every image, newest first.
    pub(crate) fn summaries(&self, _all: bool) -> Result<Vec<pb::ImageSummary>, ImagesError> {
        let mut images = self.store.images()?;
        images.sort_by_key(|i| std::cmp::Reverse(self.created_of(i)));
        Ok(images.iter().map(|i| self.summary(i)).collect())
    }

    pub(crate) fn list(
        &self,
        all: bool,
        filters: &str,
    ) -> Result<Vec<pb::ImageSummary>, ImagesError> {
        let f = Filters::parse(filters).map_err(|e| ImagesError::InvalidArgument(e.message))?;
        f.validate(LIST_FILTERS)
            .map_err(|e| ImagesError::InvalidArgument(e.message))?;
        let dangling = f
            .bool_value("dangling")
            .map_err(|e| ImagesError::InvalidArgument(e.message))?;
        let created_of = |name: &str| -> Result<i64, ImagesError> {
            let rec = self.find(name)?;
            Ok(self.created_of(&rec))
        };
        let before: Vec<i64> = f
            .values("before")
            .map(created_of)
            .collect::<Result<_, _>>()?;
        let since: Vec<i64> = f
            .values("since")
            .map(created_of)
            .collect::<Result<_, _>>()?;
        let until: Vec<i64> = f
            .values("until")
            .map(parse_until)
            .collect::<Result<_, _>>()?;
        let refs: Vec<&str> = f.values("reference").collect();
        let out = self
            .summaries(all)?
            .into_iter()
            .filter(|s| match dangling {
                Some(true) => s.repo_tags.is_empty(),
                Some(false) => !s.repo_tags.is_empty(),
                None => true,
            })
            .filter(|s| before.iter().all(|b| s.created < *b))
            .filter(|s| since.iter().all(|b| s.created > *b))
            .filter(|s| until.iter().all(|u| s.created <= *u))
            .filter(|s| {
                let attrs: BTreeMap<String, String> = s.labels.clone().into_iter().collect();
                f.match_kv_list("label", &attrs)
            })
            .filter(|s| {
                refs.is_empty()
                    || s.repo_tags
                        .iter()
                        .any(|t| refs.iter().any(|r| reference_matches(r, t)))
            })
            .collect();
        Ok(out)
    }

    /// The Docker image inspect JSON.
    pub(crate) fn inspect(&self, name: &str) -> Result<(Digest, Value), ImagesError> {
        let rec = self.find(name)?;
        let cfg = self.config_of(&rec);
        let lowers: Vec<String> = rec
            .chain
            .iter()
            .rev()
            .map(|c| self.layers.diff_dir(c).display().to_string())
            .collect();
        let mut graph = serde_json::Map::new();
        if let Some((top, rest)) = lowers.split_first() {
            graph.insert("UpperDir".to_owned(), json!(top));
            if !rest.is_empty() {
                graph.insert("LowerDir".to_owned(), json!(rest.join(":")));
            }
        }
        let v = json!({
            "Id": rec.id.to_string(),
            "RepoTags": rec.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
            "RepoDigests": rec.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
            "Parent": "",
            "Comment": cfg["comment"].as_str().unwrap_or_default(),
            "Created": rec.created.clone().unwrap_or_else(|| unix_to_rfc3339(rec.added_at)),
            "DockerVersion": cfg["docker_version"].as_str().unwrap_or_default(),
            "Author": cfg["author"].as_str().unwrap_or_default(),
            "Config": cfg["config"].clone(),
            "Architecture": cfg["architecture"].as_str().unwrap_or_default(),
            "Variant": cfg["variant"].clone(),
            "Os": cfg["os"].as_str().unwrap_or_default(),
            "Size": rec.size,
            "GraphDriver": {"Name": "overlay2", "Data": graph},
            "RootFS": {"Type": "layers", "Layers": rec.diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>()},
            "Metadata": {"LastTagTime": rec.last_tag_time.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), unix_to_rfc3339)},
        });
        Ok((rec.id, v))
    }

    /// `docker history`: newest first; the top entry carries the image ID and tags.
    pub(crate) fn history(&self, name: &str) -> Result<Vec<pb::HistoryEntry>, ImagesError> {
        let rec = self.find(name)?;
        let cfg = self.config_of(&rec);
        let sizes: Vec<u64> = rec
            .chain
            .iter()
            .map(|c| self.store.layer(c).ok().flatten().map_or(0, |l| l.size))
            .collect();
        let mut layer = 0;
        let mut out = Vec::new();
        let history = cfg["history"].as_array().cloned().unwrap_or_default();
        for h in &history {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            out.push(pb::HistoryEntry {
                id: "<missing>".to_owned(),
                created: h["created"].as_str().and_then(rfc3339_to_unix).unwrap_or(0),
                created_by: h["created_by"].as_str().unwrap_or_default().to_owned(),
                tags: Vec::new(),
                size: size as i64,
                comment: h["comment"].as_str().unwrap_or_default().to_owned(),
            });
        }
        if out.is_empty() {
            out.push(pb::HistoryEntry {
                id: String::new(),
                created: self.created_of(&rec),
                size: rec.size as i64,
                ..Default::default()
            });
        }
        out.reverse();
        out[0].id = rec.id.to_string();
        out[0].tags = rec.repo_tags.iter().map(|t| familiar(t)).collect();
        Ok(out)
    }

    /// `docker tag SOURCE REPO[:TAG]`.
    pub(crate) fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), ImagesError> {
        let mut rec = self.find(source)?;
        let tag = if tag.is_empty() { "latest" } else { tag };
        validate_tag(tag).map_err(|e| ImagesError::InvalidArgument(e.to_string()))?;
        let target: ImageRef = repo.parse().map_err(|e: berth_types::ReferenceError| {
            ImagesError::InvalidArgument(e.to_string())
        })?;
        if !target.is_name_only() {
            return Err(ImagesError::InvalidArgument(
                "invalid reference format".to_owned(),
            ));
        }
        let target = target
            .with_tag(tag)
            .map_err(|e| ImagesError::InvalidArgument(e.to_string()))?;
        rec.last_tag_time = Some(time::OffsetDateTime::now_utc().unix_timestamp());
        self.commit_image(rec.clone(), Some(&target), None)?;
        self.event("tag", &rec.id.to_string(), &target.familiar_string());
        Ok(())
    }

    /// `docker rmi`, with Docker's conflict rules. Returns the Untagged/Deleted lines.
    pub(crate) fn remove(&self, name: &str, force: bool) -> Result<Vec<pb::Deleted>, ImagesError> {
        let rec = self.find(name)?;
        let named = (!ImageRef::looks_like_id(name))
            .then(|| name.parse::<ImageRef>().ok())
            .flatten()
            .map(|r| r.with_default_tag())
            .filter(|r| {
                let s = r.to_string();
                rec.repo_tags.contains(&s) || rec.repo_digests.contains(&s)
            });
        let mut out = Vec::new();
        let rec = match named {
            // By reference: untag it (and, for a repository's last tag, that repository's digest
            // references); the image itself goes only when no reference is left.
            Some(r) => {
                let mut gone = vec![r.to_string()];
                let repo = r.name();
                let is_tag = r.digest().is_none();
                let other_tag_in_repo = rec.repo_tags.iter().any(|t| {
                    *t != gone[0] && t.parse::<ImageRef>().is_ok_and(|x| x.name() == repo)
                });
                if is_tag && !other_tag_in_repo {
                    gone.extend(
                        rec.repo_digests
                            .iter()
                            .filter(|d| d.parse::<ImageRef>().is_ok_and(|x| x.name() == repo))
                            .cloned(),
                    );
                }
                let mut updated = rec.clone();
                updated.repo_tags.retain(|t| !gone.contains(t));
                updated.repo_digests.retain(|t| !gone.contains(t));
                self.store.update(|tx| {
                    for g in &gone {
                        tx.delete_ref(g)?;
                    }
                    tx.put_image(&updated)
                })?;
                for g in &gone {
                    out.push(pb::Deleted {
                        untagged: familiar(g),
                        deleted: String::new(),
                    });
                    self.event("untag", &rec.id.to_string(), &familiar(g));
                }
                if !updated.repo_tags.is_empty() || !updated.repo_digests.is_empty() {
                    return Ok(out);
                }
                updated
            }
            // By ID: more than one reference needs -f (moby's isSingleReference).
            None => {
                if !force && !is_single_reference(&rec) {
                    return Err(ImagesError::Conflict(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        rec.id.short()
                    )));
                }
                rec
            }
        };
        let users = self.snapshots_of(&rec.id)?;
        if !users.is_empty() {
            if !force {
                return Err(ImagesError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    rec.id.short(),
                    &users[0][..users[0].len().min(12)]
                )));
            }
            // Forced: the references go, the image stays (dangling) for its containers.
            out.extend(self.untag_all(&rec)?);
            return Ok(out);
        }
        out.extend(self.delete_image(&rec)?);
        Ok(out)
    }

    /// Removes every reference of the image but keeps it.
    fn untag_all(&self, rec: &ImageRecord) -> Result<Vec<pb::Deleted>, ImagesError> {
        let mut bare = rec.clone();
        bare.repo_tags.clear();
        bare.repo_digests.clear();
        self.store.update(|tx| {
            for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
                tx.delete_ref(r)?;
            }
            tx.put_image(&bare)
        })?;
        let mut out = Vec::new();
        for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
            out.push(pb::Deleted {
                untagged: familiar(r),
                deleted: String::new(),
            });
            self.event("untag", &rec.id.to_string(), &familiar(r));
        }
        Ok(out)
    }

    /// Removes the image, its references, and the layers and blobs nothing else uses.
    fn delete_image(&self, rec: &ImageRecord) -> Result<Vec<pb::Deleted>, ImagesError> {
        let mut out = Vec::new();
        self.store.update(|tx| {
            for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
                // A reference that moved to another image stays with it.
                if tx.resolve(r)?.as_ref() == Some(&rec.id) {
                    tx.delete_ref(r)?;
                }
            }
            tx.delete_image(&rec.id)
        })?;
        for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
            out.push(pb::Deleted {
                untagged: familiar(r),
                deleted: String::new(),
            });
            self.event("untag", &rec.id.to_string(), &familiar(r));
        }
        out.push(pb::Deleted {
            untagged: String::new(),
            deleted: rec.id.to_string(),
        });
        let others = self.store.images()?;
        let used_layers: HashSet<&Digest> = others.iter().flat_map(|i| &i.chain).collect();
        for c in rec.chain.iter().rev() {
            if !used_layers.contains(c) && !self.snapshot_uses(c)? {
                self.layers.remove(&self.store, c)?;
                out.push(pb::Deleted {
                    untagged: String::new(),
                    deleted: c.to_string(),
                });
            }
        }
        let used_blobs: HashSet<&Digest> = others
            .iter()
            .flat_map(|i| i.blobs.iter().chain([&i.id]))
            .collect();
        for b in rec.blobs.iter().chain([&rec.id]) {
            if !used_blobs.contains(b) {
                self.content.delete(b)?;
            }
        }
        self.event("delete", &rec.id.to_string(), &rec.id.to_string());
        Ok(out)
    }

    /// `docker image prune`: dangling images (or, with `dangling=false`, all unused ones).
    pub(crate) fn prune(&self, filters: &str) -> Result<(Vec<pb::Deleted>, u64), ImagesError> {
        let f = Filters::parse(filters).map_err(|e| ImagesError::InvalidArgument(e.message))?;
        f.validate(PRUNE_FILTERS)
            .map_err(|e| ImagesError::InvalidArgument(e.message))?;
        let dangling_only = f
            .bool_value("dangling")
            .map_err(|e| ImagesError::InvalidArgument(e.message))?
            .unwrap_or(true);
        let until: Vec<i64> = f
            .values("until")
            .map(parse_until)
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        let mut reclaimed = 0u64;
        for rec in self.store.images()? {
            if dangling_only && !rec.repo_tags.is_empty() {
                continue;
            }
            if !self.snapshots_of(&rec.id)?.is_empty() {
                continue;
            }
            if !until.iter().all(|u| self.created_of(&rec) <= *u) {
                continue;
            }
            let labels: BTreeMap<String, String> =
                serde_json::from_value(self.config_of(&rec)["config"]["Labels"].clone())
                    .unwrap_or_default();
            if !f.match_kv_list("label", &labels) {
                continue;
            }
            if f.contains("label!")
                && f.values("label!").any(|l| {
                    let (k, v) = l.split_once('=').map_or((l, None), |(k, v)| (k, Some(v)));
                    labels
                        .get(k)
                        .is_some_and(|have| v.is_none_or(|v| v == have))
                })
            {
                continue;
            }
            let before: u64 = self.store.layers()?.iter().map(|l| l.size).sum();
            out.extend(self.delete_image(&rec)?);
            let after: u64 = self.store.layers()?.iter().map(|l| l.size).sum();
            reclaimed += before.saturating_sub(after);
        }
        self.event("prune", "", "");
        Ok((out, reclaimed))
    }
}

/// moby's `isSingleReference`: at most one tag, and digest references only of that tag's
/// repository (or of one repository when there is no tag).
fn is_single_reference(rec: &ImageRecord) -> bool {
    let refs = rec.repo_tags.len() + rec.repo_digests.len();
    if refs <= 1 {
        return true;
    }
    if rec.repo_tags.len() > 1 {
        return false;
    }
    let name = |s: &String| s.parse::<ImageRef>().map(|r| r.name()).ok();
    let digest_repos: HashSet<Option<String>> = rec.repo_digests.iter().map(name).collect();
    let single = rec.repo_tags.first().or(rec.repo_digests.first()).map(name);
    digest_repos.len() == 1 && single.is_some_and(|s| digest_repos.contains(&s))
}

/// `reference` filter: the pattern matches the familiar name, or name:tag (with `*` globs).
fn reference_matches(pattern: &str, familiar_tag: &str) -> bool {
    let name = familiar_tag
        .rsplit_once(':')
        .map_or(familiar_tag, |(n, _)| n);
    glob(pattern, familiar_tag) || glob(pattern, name)
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len())
                    .any(|i| s.is_char_boundary(head.len() + i) && glob(tail, &s[head.len() + i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busybox:latest", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:1"));
        assert!(reference_matches("*:1", "busybox:1"));
        assert!(!reference_matches("alpine", "busybox:latest"));
    }

    #[test]
    fn until_forms() {
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - 3600 - parse_until("1h").unwrap()).abs() <= 1);
        assert!(parse_until("soon").is_err());
    }
}
