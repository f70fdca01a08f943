//! The images domain: everything the gRPC layer calls, independent of tonic.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use berth_bus::EventPublisher;
use berth_config::DaemonConfig;
use berth_types::{Actor, Digest, Event, EventType, ImageRef};

use crate::{
    ImagesError,
    content::ContentStore,
    info::InfoFacts,
    layers::LayerDirs,
    registry::Registries,
    store::{ImageRecord, Store},
};

pub(crate) struct ImageService {
    pub(crate) store: Store,
    pub(crate) content: ContentStore,
    pub(crate) layers: LayerDirs,
    pub(crate) registries: Registries,
    pub(crate) events: EventPublisher,
    pub(crate) facts: InfoFacts,
    pub(crate) root: PathBuf,
    /// One lock per blob being downloaded, so concurrent pulls fetch each blob once.
    blob_locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageService {
    pub(crate) fn open(
        root: &Path,
        cfg: &DaemonConfig,
        events: EventPublisher,
    ) -> anyhow::Result<Arc<ImageService>> {
        let store = Store::open(root)?;
        store.attach_events(events.clone())?;
        let content = ContentStore::open(root)?;
        let layers = LayerDirs::new(root)?;
        let facts = InfoFacts::probe(root, cfg)?;
        let svc = Arc::new(ImageService {
            store,
            content,
            layers,
            registries: Registries::new(cfg),
            events,
            facts,
            root: root.to_owned(),
            blob_locks: Mutex::new(HashMap::new()),
        });
        match svc.sweep_snapshots() {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "removed snapshots left without a record"),
            Err(e) => tracing::warn!(error = %e, "looking for snapshots left without a record"),
        }
        Ok(svc)
    }

    /// The lock that serializes downloads of `digest`.
    pub(crate) fn blob_lock(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.blob_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(digest.clone()).or_default().clone()
    }

    /// Publishes an image event that reports no stored change (those are given to the
    /// change's transaction, from [`ImageService::image_event`]).
    pub(crate) fn event(&self, action: &str, id: &str, name: &str) {
        if let Some(ev) = self.image_event(action, id, name) {
            self.events.publish(&ev);
        }
    }

    /// An image event (none if `action` is malformed), as moby's `LogImageEvent` writes it:
    /// the labels of the image `id` names while it still exists (not for `delete`), then
    /// `name`.
    pub(crate) fn image_event(&self, action: &str, id: &str, name: &str) -> Option<Event> {
        let labels = match action {
            "delete" => Default::default(),
            _ => self
                .find(id)
                .map(|rec| self.labels_of(&rec))
                .unwrap_or_default(),
        };
        image_event_with(action, id, name, labels)
    }

    /// Finds an image by full ID, reference, or unique ID prefix (Docker's lookup order).
    pub(crate) fn find(&self, name: &str) -> Result<ImageRecord, ImagesError> {
        let not_found = || ImagesError::NotFound(format!("No such image: {name}"));
        if ImageRef::looks_like_id(name) {
            let id: Digest = if name.contains(':') {
                name.parse().map_err(|_| not_found())?
            } else {
                format!("sha256:{name}").parse().map_err(|_| not_found())?
            };
            return self.store.image(&id)?.ok_or_else(not_found);
        }
        if let Ok(r) = name.parse::<ImageRef>() {
            let r = r.with_default_tag();
            if let Some(id) = self.store.resolve(&r.to_string())? {
                return self.store.image(&id)?.ok_or_else(not_found);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<ImageRecord> = self
                .store
                .images()?
                .into_iter()
                .filter(|i| i.id.hex().starts_with(prefix))
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(matches.into_iter().next().expect("one")),
                _ => {
                    return Err(ImagesError::InvalidArgument(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )));
                }
            }
        }
        Err(not_found())
    }

    /// Records a new image or new references to one, moving a tag that named another image.
    /// Returns the images that lost a tag (for untag events).
    pub(crate) fn commit_image(
        &self,
        rec: ImageRecord,
        tag: Option<&ImageRef>,
        digest_ref: Option<&ImageRef>,
    ) -> Result<ImageRecord, ImagesError> {
        self.commit_image_with(rec, tag, digest_ref, Vec::new())
    }

    /// [`ImageService::commit_image`] with the events that report it, in its transaction.
    pub(crate) fn commit_image_with(
        &self,
        mut rec: ImageRecord,
        tag: Option<&ImageRef>,
        digest_ref: Option<&ImageRef>,
        events: Vec<Event>,
    ) -> Result<ImageRecord, ImagesError> {
        self.store.update(|tx| {
            tx.emit(events);
            if let Some(existing) = tx.image(&rec.id)? {
                rec.repo_tags = existing.repo_tags;
                rec.repo_digests = existing.repo_digests;
                rec.added_at = existing.added_at;
                for b in existing.blobs {
                    if !rec.blobs.contains(&b) {
                        rec.blobs.push(b);
                    }
                }
            }
            if let Some(t) = tag {
                let t = t.to_string();
                if let Some(prev) = tx.resolve(&t)?
                    && prev != rec.id
                    && let Some(mut other) = tx.image(&prev)?
                {
                    other.repo_tags.retain(|x| *x != t);
                    tx.put_image(&other)?;
                }
                tx.put_ref(&t, &rec.id)?;
                if !rec.repo_tags.contains(&t) {
                    rec.repo_tags.push(t);
                }
            }
            if let Some(d) = digest_ref {
                let d = d.to_string();
                if let Some(prev) = tx.resolve(&d)?
                    && prev != rec.id
                    && let Some(mut other) = tx.image(&prev)?
                {
                    other.repo_digests.retain(|x| *x != d);
                    tx.put_image(&other)?;
                }
                tx.put_ref(&d, &rec.id)?;
                if !rec.repo_digests.contains(&d) {
                    rec.repo_digests.push(d);
                }
            }
            tx.put_image(&rec)?;
            Ok(rec.clone())
        })
    }
}

/// An image event with `labels` (the image's), then `name`; none if `action` is malformed.
pub(crate) fn image_event_with(
    action: &str,
    id: &str,
    name: &str,
    labels: std::collections::BTreeMap<String, String>,
) -> Option<Event> {
    let mut actor = Actor {
        id: id.to_owned(),
        attributes: labels,
    };
    if !name.is_empty() {
        actor.attributes.insert("name".to_owned(), name.to_owned());
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    match action.parse() {
        Ok(a) => Some(Event::new(EventType::Image, a, actor, now)),
        Err(e) => {
            tracing::error!(error = %e, "bad event action");
            None
        }
    }
}
