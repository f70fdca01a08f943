//! Image operations on what is stored: list, inspect, history, tag, remove, prune.

use std::collections::{BTreeMap, HashSet};

use berth_proto::images::v1 as pb;
use berth_types::{Digest, ImageRef, validate_tag};

use crate::{ImagesError, image_config::ConfigBlob, service::ImageService, store::ImageRecord};

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

/// An [`pb::ImageFilters`] with its image names resolved to creation times.
struct Selection<'a> {
    filters: &'a pb::ImageFilters,
    before: Vec<i64>,
    since: Vec<i64>,
}

impl Selection<'_> {
    /// Whether an image with these tags, creation time and labels is selected. `dangling`
    /// is the caller's default for an unset `dangling`.
    fn matches(
        &self,
        dangling: Option<bool>,
        repo_tags: &[String],
        created: i64,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        let f = self.filters;
        let label_matches = |l: &pb::LabelFilter| {
            labels
                .get(&l.key)
                .is_some_and(|have| l.value.as_ref().is_none_or(|v| v == have))
        };
        let dangling_ok = match f.dangling.or(dangling) {
            Some(true) => repo_tags.is_empty(),
            Some(false) => !repo_tags.is_empty(),
            None => true,
        };
        dangling_ok
            && self.before.iter().all(|b| created < *b)
            && self.since.iter().all(|s| created > *s)
            && f.until.is_none_or(|u| created <= u)
            && f.labels.iter().all(label_matches)
            && !f.labels_not.iter().any(label_matches)
            && (f.references.is_empty()
                || repo_tags
                    .iter()
                    .any(|t| f.references.iter().any(|r| reference_matches(r, t))))
    }
}

impl ImageService {
    fn config_of(&self, rec: &ImageRecord) -> ConfigBlob {
        self.content
            .read(&rec.id)
            .map(|b| ConfigBlob::parse(&b))
            .unwrap_or_default()
    }

    /// The labels of the image's config.
    pub(crate) fn labels_of(
        &self,
        rec: &ImageRecord,
    ) -> std::collections::BTreeMap<String, String> {
        self.config_of(rec).labels()
    }

    fn created_of(&self, rec: &ImageRecord) -> i64 {
        rec.created
            .as_deref()
            .and_then(rfc3339_to_unix)
            .unwrap_or(rec.added_at)
    }

    fn summary(&self, rec: &ImageRecord) -> pb::ImageSummary {
        pb::ImageSummary {
            id: rec.id.to_string(),
            parent_id: rec
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
            created: self.created_of(rec),
            size: rec.size as i64,
            shared_size: -1,
            labels: self.config_of(rec).labels().into_iter().collect(),
            containers: -1,
        }
    }

    /// Every image, newest first; without `all`, not the untagged intermediate images of
    /// builds (those that are another image's parent), as `docker images` hides them.
    pub(crate) fn summaries(&self, all: bool) -> Result<Vec<pb::ImageSummary>, ImagesError> {
        let mut images = self.store.images()?;
        if !all {
            let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent.clone()).collect();
            images.retain(|i| {
                !(i.repo_tags.is_empty() && i.repo_digests.is_empty() && parents.contains(&i.id))
            });
        }
        images.sort_by_key(|i| std::cmp::Reverse(self.created_of(i)));
        Ok(images.iter().map(|i| self.summary(i)).collect())
    }

    /// Resolves the filters' `before` and `since` images (an unknown one is an error).
    fn select<'a>(&self, filters: &'a pb::ImageFilters) -> Result<Selection<'a>, ImagesError> {
        let created_of = |name: &String| -> Result<i64, ImagesError> {
            let rec = self.find(name)?;
            Ok(self.created_of(&rec))
        };
        Ok(Selection {
            filters,
            before: filters
                .before
                .iter()
                .map(created_of)
                .collect::<Result<_, _>>()?,
            since: filters
                .since
                .iter()
                .map(created_of)
                .collect::<Result<_, _>>()?,
        })
    }

    pub(crate) fn list(
        &self,
        all: bool,
        filters: &pb::ImageFilters,
    ) -> Result<Vec<pb::ImageSummary>, ImagesError> {
        let selection = self.select(filters)?;
        let out = self
            .summaries(all)?
            .into_iter()
            .filter(|s| {
                let labels: BTreeMap<String, String> = s.labels.clone().into_iter().collect();
                selection.matches(None, &s.repo_tags, s.created, &labels)
            })
            .collect();
        Ok(out)
    }

    /// One image, with its config, as `docker image inspect` shows it.
    pub(crate) fn inspect(&self, name: &str) -> Result<pb::Image, ImagesError> {
        let rec = self.find(name)?;
        let cfg = self.config_of(&rec);
        let dirs: Vec<String> = rec
            .chain
            .iter()
            .rev()
            .map(|c| self.layers.diff_dir(c).display().to_string())
            .collect();
        let (upper_dir, lower_dir) = match dirs.split_first() {
            Some((top, rest)) => (top.clone(), rest.join(":")),
            None => (String::new(), String::new()),
        };
        Ok(pb::Image {
            id: rec.id.to_string(),
            repo_tags: rec.repo_tags.iter().map(|t| familiar(t)).collect(),
            repo_digests: rec.repo_digests.iter().map(|t| familiar(t)).collect(),
            parent: rec
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            // As moby: the config's comment, else the last history entry's (a commit's).
            comment: if cfg.comment.is_empty() {
                cfg.history
                    .last()
                    .map(|h| h.comment.clone())
                    .unwrap_or_default()
            } else {
                cfg.comment.clone()
            },
            created: rec
                .created
                .clone()
                .unwrap_or_else(|| unix_to_rfc3339(rec.added_at)),
            docker_version: cfg.docker_version,
            author: cfg.author,
            config: cfg.config.as_ref().map(pb::ImageConfig::from),
            architecture: cfg.architecture,
            variant: cfg.variant,
            os: cfg.os,
            os_version: cfg.os_version,
            size: rec.size as i64,
            layers: rec.diff_ids.iter().map(ToString::to_string).collect(),
            upper_dir,
            lower_dir,
            last_tag_time: rec.last_tag_time.map(unix_to_rfc3339).unwrap_or_default(),
        })
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
        for h in &cfg.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            out.push(pb::HistoryEntry {
                id: "<missing>".to_owned(),
                created: h.created.as_deref().and_then(rfc3339_to_unix).unwrap_or(0),
                created_by: h.created_by.clone(),
                tags: Vec::new(),
                size: size as i64,
                comment: h.comment.clone(),
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
        let tagged = self.image_event("tag", &rec.id.to_string(), &target.familiar_string());
        self.commit_image_with(rec, Some(&target), None, tagged.into_iter().collect())?;
        Ok(())
    }

    /// `docker rmi`, with Docker's conflict rules. Returns the Untagged/Deleted lines.
    /// `docker rmi`, the untagged parents nothing else keeps going too.
    pub(crate) fn remove(&self, name: &str, force: bool) -> Result<Vec<pb::Deleted>, ImagesError> {
        self.remove_pruning(name, force, true)
    }

    /// `docker rmi`; with `prune` (unless `noprune`), the untagged parents nothing else keeps
    /// go too.
    pub(crate) fn remove_pruning(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<pb::Deleted>, ImagesError> {
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
                let updated = self.store.update(|tx| {
                    for g in &gone {
                        tx.delete_ref(g)?;
                        tx.emit(self.image_event("untag", &rec.id.to_string(), &familiar(g)));
                    }
                    // The record as it is now: a tag added since `rec` was read stays (a
                    // write of `rec` would drop it from the record but not from the refs).
                    let mut updated = tx.image(&rec.id)?.unwrap_or_else(|| rec.clone());
                    updated.repo_tags.retain(|t| !gone.contains(t));
                    updated.repo_digests.retain(|t| !gone.contains(t));
                    tx.put_image(&updated)?;
                    Ok(updated)
                })?;
                for g in &gone {
                    out.push(pb::Deleted {
                        untagged: familiar(g),
                        deleted: String::new(),
                    });
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
        if prune {
            out.extend(self.prune_parents(rec.parent.clone())?);
        }
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
                tx.emit(self.image_event("untag", &rec.id.to_string(), &familiar(r)));
            }
            tx.put_image(&bare)
        })?;
        let mut out = Vec::new();
        for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
            out.push(pb::Deleted {
                untagged: familiar(r),
                deleted: String::new(),
            });
        }
        Ok(out)
    }

    /// Removes the image, its references, and the layers and blobs nothing else uses.
    pub(crate) fn delete_image(&self, rec: &ImageRecord) -> Result<Vec<pb::Deleted>, ImagesError> {
        let mut out = Vec::new();
        self.store.update(|tx| {
            for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
                // A reference that moved to another image stays with it.
                if tx.resolve(r)?.as_ref() == Some(&rec.id) {
                    tx.delete_ref(r)?;
                }
                tx.emit(self.image_event("untag", &rec.id.to_string(), &familiar(r)));
            }
            let id = rec.id.to_string();
            tx.emit(self.image_event("delete", &id, &id));
            tx.delete_image(&rec.id)
        })?;
        for r in rec.repo_tags.iter().chain(&rec.repo_digests) {
            out.push(pb::Deleted {
                untagged: familiar(r),
                deleted: String::new(),
            });
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
        Ok(out)
    }

    /// `docker image prune`: dangling images (or, with `dangling=false`, all unused ones).
    pub(crate) fn prune(
        &self,
        filters: &pb::ImageFilters,
    ) -> Result<(Vec<pb::Deleted>, u64), ImagesError> {
        // moby: dangling=false (prune -a) takes every unused image, tagged or not.
        let mut filters = filters.clone();
        filters.dangling = match filters.dangling {
            Some(false) => None,
            _ => Some(true),
        };
        let selection = self.select(&filters)?;
        let mut out = Vec::new();
        let mut reclaimed = 0u64;
        // Passes until one deletes nothing: an image whose children went in a pass (with -a,
        // a tagged base image of a pruned build) can go in the next.
        loop {
            let images = self.store.images()?;
            // Intermediate images go with the image they lead to, not on their own.
            let intermediates = crate::parents::intermediates(&images);
            let mut gone: HashSet<Digest> = HashSet::new();
            for rec in images {
                if intermediates.contains(&rec.id) || gone.contains(&rec.id) {
                    continue;
                }
                let labels = self.config_of(&rec).labels();
                let tags: Vec<String> = rec.repo_tags.iter().map(|t| familiar(t)).collect();
                if !selection.matches(None, &tags, self.created_of(&rec), &labels) {
                    continue;
                }
                if !self.snapshots_of(&rec.id)?.is_empty() {
                    continue;
                }
                // An image with children stays (moby: a conflict, skipped by the prune).
                if crate::parents::has_children(&self.store.images()?, &rec.id) {
                    continue;
                }
                let before: u64 = self.store.layers()?.iter().map(|l| l.size).sum();
                out.extend(self.delete_image(&rec)?);
                gone.insert(rec.id.clone());
                let parents = self.prune_parents(rec.parent.clone())?;
                gone.extend(parents.iter().filter_map(|d| d.deleted.parse().ok()));
                out.extend(parents);
                let after: u64 = self.store.layers()?.iter().map(|l| l.size).sum();
                reclaimed += before.saturating_sub(after);
            }
            if gone.is_empty() {
                break;
            }
        }
        // moby's ImagesPrune: the prune event carries the bytes reclaimed.
        if let Some(mut ev) = self.image_event("prune", "", "") {
            ev.actor
                .attributes
                .insert("reclaimed".to_owned(), reclaimed.to_string());
            self.events.publish(&ev);
        }
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

/// `*` matches any run of characters. Linear backtracking (to the last `*` only), so a
/// pattern with many stars costs O(pattern × name), not exponential time.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    // The last star seen, and where in `s` its match currently ends.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
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
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxbyy"));
        assert!(glob("**", "") && glob("", "") && !glob("", "x"));
        // Many stars against a long name that almost matches: fast, and no match.
        let name = "a".repeat(300);
        assert!(!glob(&format!("{}b", "a*".repeat(30)), &name));
    }
}
