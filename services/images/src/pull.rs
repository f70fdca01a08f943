//! `docker pull`: resolve the manifest (choosing a platform from an index), fetch the config,
//! download the layers in parallel (each blob once, however many pulls want it), verify every
//! blob before it enters the content store, unpack the layers in chain order, then record the
//! image and publish `pull`.

use std::sync::Arc;

use berth_types::{Digest, ImageRef};
use futures::StreamExt;
use oci_client::{Client, Reference, secrets::RegistryAuth};

use crate::{
    ImagesError,
    layers::chain_ids,
    manifest::{self, Descriptor, Parsed},
    platform::Platform,
    progress::ProgressSink,
    registry::{Credentials, Endpoint, oci_reference, registry_error},
    service::ImageService,
    store::ImageRecord,
};

/// How many layers download at once.
const PARALLEL_DOWNLOADS: usize = 3;

/// What `pull` needs to know.
pub(crate) struct PullSpec {
    pub(crate) reference: ImageRef,
    pub(crate) platform: Platform,
    pub(crate) credentials: Credentials,
}

#[derive(Clone)]
struct Session {
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
}

impl ImageService {
    /// Pulls `spec.reference`; progress goes to `progress`. Tries Docker Hub mirrors first.
    pub(crate) async fn pull(
        self: &Arc<Self>,
        spec: PullSpec,
        progress: ProgressSink,
    ) -> Result<ImageRecord, ImagesError> {
        let r = spec.reference.clone().with_default_tag();
        let endpoints = self.registries.endpoints(&r);
        let mut last = None;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.pull_from(&r, ep, &spec, &progress).await {
                Ok(rec) => return Ok(rec),
                Err(e) if i + 1 < endpoints.len() => {
                    tracing::warn!(mirror = %ep.registry, error = %e, "mirror failed; trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ImagesError::Registry("no registry endpoint".to_owned())))
    }

    async fn pull_from(
        self: &Arc<Self>,
        r: &ImageRef,
        ep: &Endpoint,
        spec: &PullSpec,
        progress: &ProgressSink,
    ) -> Result<ImageRecord, ImagesError> {
        let s = Session {
            client: self.registries.client(ep),
            auth: spec.credentials.to_auth(),
            reference: oci_reference(r, ep),
        };
        let tag_id = r.tag().map_or_else(
            || r.digest().map(|d| d.to_string()).unwrap_or_default(),
            str::to_owned,
        );
        let (bytes, digest) = s
            .client
            .pull_manifest_raw(&s.reference, &s.auth, &manifest::ACCEPTED)
            .await
            .map_err(|e| registry_error(r, e))?;
        // Said once the registry knows the image: a missing one is an HTTP error, as with dockerd.
        progress
            .status(&tag_id, format!("Pulling from {}", r.familiar_name()))
            .await;
        let top_digest: Digest = digest.parse().unwrap_or_else(|_| Digest::sha256_of(&bytes));
        self.content.put(&bytes, Some(&top_digest))?;
        let mut blobs = vec![top_digest.clone()];
        let (config, layers) = match manifest::parse(&bytes)? {
            Parsed::Image { config, layers } => (config, layers),
            Parsed::Index(entries) => {
                let chosen = entries
                    .iter()
                    .find(|d| {
                        d.platform.as_ref().is_some_and(|p| {
                            spec.platform
                                .matches(&p.os, &p.architecture, p.variant.as_deref())
                        })
                    })
                    .ok_or_else(|| {
                        ImagesError::NotFound(format!(
                            "no matching manifest for {} in the manifest list entries",
                            spec.platform
                        ))
                    })?;
                let child = Reference::with_digest(
                    s.reference.registry().to_owned(),
                    s.reference.repository().to_owned(),
                    chosen.digest.to_string(),
                );
                let (child_bytes, _) = s
                    .client
                    .pull_manifest_raw(&child, &s.auth, &manifest::ACCEPTED)
                    .await
                    .map_err(|e| registry_error(r, e))?;
                self.content.put(&child_bytes, Some(&chosen.digest))?;
                blobs.push(chosen.digest.clone());
                match manifest::parse(&child_bytes)? {
                    Parsed::Image { config, layers } => (config, layers),
                    Parsed::Index(_) => {
                        return Err(ImagesError::Registry("an index inside an index".to_owned()));
                    }
                }
            }
        };

        // The config: small, fetched whole, verified.
        if !self.content.exists(&config.digest) {
            let mut buf = Vec::new();
            s.client
                .pull_blob(&s.reference, config.digest.to_string().as_str(), &mut buf)
                .await
                .map_err(|e| registry_error(r, e))?;
            self.content.put(&buf, Some(&config.digest))?;
        }
        let image_config: serde_json::Value =
            serde_json::from_slice(&self.content.read(&config.digest)?)
                .map_err(|e| ImagesError::Registry(format!("invalid image config: {e}")))?;
        let diff_ids: Vec<Digest> = image_config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        if diff_ids.len() != layers.len() {
            return Err(ImagesError::Registry(format!(
                "invalid image: {} layers but {} diff_ids",
                layers.len(),
                diff_ids.len()
            )));
        }
        let chain = chain_ids(&diff_ids);
        blobs.push(config.digest.clone());
        blobs.extend(layers.iter().map(|l| l.digest.clone()));
        let existed = self.store.image(&config.digest)?.is_some();

        // Layers already unpacked need nothing; others download in parallel, then unpack in order.
        let mut todo = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            if self.store.layer(&chain[i])?.is_some() && self.layers.diff_dir(&chain[i]).is_dir() {
                // An image already here says nothing per layer, as dockerd.
                if !existed {
                    progress.status(l.digest.short(), "Already exists").await;
                }
            } else {
                progress.status(l.digest.short(), "Pulling fs layer").await;
                todo.push(i);
            }
        }
        // Downloads run as tasks (at most PARALLEL_DOWNLOADS at once) while the layers unpack in
        // chain order: layer n unpacks as soon as it and the layers below it are stored.
        let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_DOWNLOADS));
        let mut downloads: std::collections::HashMap<
            usize,
            tokio::task::JoinHandle<Result<(), ImagesError>>,
        > = std::collections::HashMap::new();
        for &i in &todo {
            let (this, s, r, layer, progress, permits) = (
                self.clone(),
                s.clone(),
                r.clone(),
                layers[i].clone(),
                progress.clone(),
                permits.clone(),
            );
            downloads.insert(
                i,
                tokio::spawn(async move {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .map_err(|e| ImagesError::Registry(format!("download slots: {e}")))?;
                    this.fetch_blob(&s, &r, &layer, &progress).await
                }),
            );
        }
        // On an early return the remaining downloads still finish into the content store (or
        // clean up after themselves), where a retry finds them.
        let mut size = 0u64;
        for (i, l) in layers.iter().enumerate() {
            if let Some(handle) = downloads.remove(&i) {
                handle
                    .await
                    .map_err(|e| ImagesError::Registry(format!("downloading: {e}")))??;
            }
            if todo.contains(&i) {
                progress.status(l.digest.short(), "Extracting").await;
            }
            let this = self.clone();
            let (chain_id, diff_id, parent, blob) = (
                chain[i].clone(),
                diff_ids[i].clone(),
                i.checked_sub(1).map(|p| chain[p].clone()),
                l.digest.clone(),
            );
            let rec = tokio::task::spawn_blocking(move || {
                let file = this.content.open_blob(&blob)?;
                this.layers
                    .ensure(&this.store, &chain_id, &diff_id, parent.as_ref(), file)
            })
            .await
            .map_err(|e| ImagesError::Registry(format!("unpacking: {e}")))??;
            size += rec.size;
            if todo.contains(&i) {
                progress.status(l.digest.short(), "Pull complete").await;
            }
        }

        let manifest_digest = match r.digest() {
            Some(d) => d.clone(),
            None => top_digest,
        };
        let rec = ImageRecord {
            id: config.digest.clone(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: Some(manifest_digest.clone()),
            chain,
            diff_ids,
            size,
            created: image_config["created"].as_str().map(str::to_owned),
            added_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            blobs,
            last_tag_time: Some(time::OffsetDateTime::now_utc().unix_timestamp()),
            parent: None,
            build_key: None,
        };
        let tag_ref = r.tag().map(|_| r.clone().without_digest());
        let digest_ref = r.clone().name_only().with_digest(manifest_digest.clone());
        let had_tag = match &tag_ref {
            Some(t) => self.store.resolve(&t.to_string())? == Some(rec.id.clone()),
            None => self.store.resolve(&digest_ref.to_string())?.is_some(),
        };
        let rec = self.commit_image(rec, tag_ref.as_ref(), Some(&digest_ref))?;
        progress
            .status("", format!("Digest: {manifest_digest}"))
            .await;
        let shown = r.familiar_string();
        if existed && had_tag {
            progress
                .status("", format!("Status: Image is up to date for {shown}"))
                .await;
        } else {
            progress
                .status("", format!("Status: Downloaded newer image for {shown}"))
                .await;
        }
        self.event("pull", &shown, &r.familiar_name());
        Ok(rec)
    }

    /// Downloads one blob into the content store, verified, unless it is there already.
    async fn fetch_blob(
        &self,
        s: &Session,
        r: &ImageRef,
        layer: &Descriptor,
        progress: &ProgressSink,
    ) -> Result<(), ImagesError> {
        let id = layer.digest.short().to_owned();
        let lock = self.blob_lock(&layer.digest);
        let _held = match lock.try_lock() {
            Ok(g) => g,
            Err(_) => {
                progress.status(&id, "Waiting").await;
                lock.lock().await
            }
        };
        if self.content.exists(&layer.digest) {
            progress.status(&id, "Download complete").await;
            return Ok(());
        }
        let mut stream = s
            .client
            .pull_blob_stream(&s.reference, layer.digest.to_string().as_str())
            .await
            .map_err(|e| registry_error(r, e))?;
        let mut w = self.content.writer()?;
        let mut last = 0u64;
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| {
                ImagesError::Registry(format!(
                    "error pulling {}: downloading {}: {e}",
                    r.familiar_string(),
                    layer.digest
                ))
            })?;
            std::io::Write::write_all(&mut w, &chunk)
                .map_err(|e| ImagesError::io(&self.root, e))?;
            let done = w.written();
            if done - last >= 512 * 1024 || done == layer.size {
                progress.bytes(&id, "Downloading", done, layer.size).await;
                last = done;
            }
            if done > layer.size {
                return Err(ImagesError::Verify(format!(
                    "blob {} is larger than the {} bytes the manifest says",
                    layer.digest, layer.size
                )));
            }
        }
        progress.status(&id, "Verifying Checksum").await;
        let digest = layer.digest.clone();
        let size = layer.size;
        tokio::task::spawn_blocking(move || w.commit(Some(&digest), Some(size)))
            .await
            .map_err(|e| ImagesError::Registry(format!("storing a blob: {e}")))??;
        progress.status(&id, "Download complete").await;
        Ok(())
    }
}
