//! `docker push`: an image's layer blobs, config and manifest to its registry, with Docker's
//! progress lines. Each blob is asked for first (`Layer already exists`), then mounted from
//! another repository of the same registry the image is known to be in (`Mounted from ...`),
//! and only then uploaded, streamed from the content store. The manifest pushed is the one the
//! image was pulled or loaded with when its layers are compressed; otherwise uncompressed layers
//! are gzipped into the content store first and a new manifest is written and kept, so pushing
//! again gives the same digest.

use std::{io, sync::Arc};

use berth_types::{Digest, ImageRef};
use bytes::Bytes;
use oci_client::{
    Client, Reference, RegistryOperation, errors::OciDistributionError, errors::OciErrorCode,
    secrets::RegistryAuth,
};
use tokio::io::AsyncReadExt;

use crate::{
    ImagesError,
    added::Added,
    compression::Compression,
    manifest::Descriptor,
    pipe::{Line, LineSink},
    registry::{Credentials, oci_reference},
    service::ImageService,
    store::ImageRecord,
    stored::StoredManifest,
};

/// Bytes per upload request (oci-client sends one PATCH per chunk).
const UPLOAD_CHUNK: usize = 4 << 20;

/// What `POST /images/{name}/push` asks for.
#[derive(Debug, Clone)]
pub(crate) struct PushSpec {
    pub(crate) name: String,
    /// Empty: every tag of the repository.
    pub(crate) tag: String,
    pub(crate) credentials: Credentials,
}

struct Session {
    client: Client,
    auth: RegistryAuth,
    registry: String,
}

/// A registry error in Docker's words.
fn push_error(repo: &ImageRef, e: OciDistributionError) -> ImagesError {
    let unauthorized =
        || ImagesError::Unauthorized("unauthorized: authentication required".to_owned());
    let denied = || {
        ImagesError::Unauthorized("denied: requested access to the resource is denied".to_owned())
    };
    match &e {
        OciDistributionError::AuthenticationFailure(m) => {
            ImagesError::Unauthorized(format!("unauthorized: {m}"))
        }
        OciDistributionError::UnauthorizedError { .. } => unauthorized(),
        OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
        OciDistributionError::ServerError { code: 403, .. } => denied(),
        OciDistributionError::RequestError(r) if r.status().is_some_and(|s| s.as_u16() == 401) => {
            unauthorized()
        }
        OciDistributionError::RequestError(r) if r.status().is_some_and(|s| s.as_u16() == 403) => {
            denied()
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            if envelope
                .errors
                .iter()
                .any(|x| matches!(x.code, OciErrorCode::Unauthorized))
            {
                unauthorized()
            } else if envelope
                .errors
                .iter()
                .any(|x| matches!(x.code, OciErrorCode::Denied))
            {
                denied()
            } else {
                ImagesError::Registry(format!("error pushing to {}: {e}", repo.name()))
            }
        }
        _ => ImagesError::Registry(format!("error pushing to {}: {e}", repo.name())),
    }
}

/// The 12 characters Docker shows for a layer: its diff_id, shortened.
fn layer_id(diff_id: &Digest) -> String {
    diff_id.short().to_owned()
}

impl ImageService {
    /// The repository and the tagged images to push: one tag, or every tag of the repository.
    fn push_targets(
        &self,
        spec: &PushSpec,
    ) -> Result<(ImageRef, Vec<(ImageRef, ImageRecord)>), ImagesError> {
        let r: ImageRef = spec
            .name
            .parse()
            .map_err(|e: berth_types::ReferenceError| {
                ImagesError::InvalidArgument(e.to_string())
            })?;
        let tag = match (spec.tag.as_str(), r.tag()) {
            ("", t) => t.map(str::to_owned),
            (t, _) => Some(t.to_owned()),
        };
        let repo = r.name_only();
        let missing = || {
            ImagesError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                repo.familiar_name()
            ))
        };
        let mut targets = Vec::new();
        match tag {
            Some(t) => {
                let tagged = repo
                    .clone()
                    .with_tag(&t)
                    .map_err(|e| ImagesError::InvalidArgument(e.to_string()))?;
                let id = self
                    .store
                    .resolve(&tagged.to_string())?
                    .ok_or_else(missing)?;
                targets.push((tagged, self.store.image(&id)?.ok_or_else(missing)?));
            }
            None => {
                for rec in self.store.images()? {
                    for t in &rec.repo_tags {
                        if let Ok(tr) = t.parse::<ImageRef>()
                            && tr.name() == repo.name()
                        {
                            targets.push((tr, rec.clone()));
                        }
                    }
                }
                targets.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
        if targets.is_empty() {
            return Err(missing());
        }
        Ok((repo, targets))
    }

    /// Pushes as `spec` says; progress and results go to `out`. Publishes `push` per tag.
    pub(crate) async fn push(
        self: &Arc<Self>,
        spec: PushSpec,
        out: LineSink,
    ) -> Result<(), ImagesError> {
        let (repo, targets) = self.push_targets(&spec)?;
        out.status(
            "",
            format!("The push refers to repository [{}]", repo.name()),
        )
        .await;
        let endpoint = self
            .registries
            .endpoints(&repo)
            .pop()
            .expect("the registry itself is always an endpoint");
        let s = Session {
            client: self.registries.client(&endpoint),
            auth: spec.credentials.to_auth(),
            registry: endpoint.registry.clone(),
        };
        for (tagged, rec) in targets {
            let reference = oci_reference(&tagged, &endpoint);
            s.client
                .auth(&reference, &s.auth, RegistryOperation::Push)
                .await
                .map_err(|e| push_error(&repo, e))?;
            let this = self.clone();
            let prepared = rec.clone();
            let manifest = tokio::task::spawn_blocking(move || this.push_manifest(&prepared))
                .await
                .map_err(|e| ImagesError::Registry(format!("preparing the push: {e}")))??;
            let sources = mount_sources(&rec, &repo);
            let ids: Vec<String> = rec.diff_ids.iter().map(layer_id).collect();
            for id in &ids {
                out.status(id, "Preparing").await;
            }
            for (l, id) in manifest.layers.iter().zip(&ids) {
                self.push_layer(&s, &reference, &repo, l, id, &sources, &out)
                    .await?;
            }
            let config_digest = rec.id.to_string();
            if !s
                .client
                .blob_exists(&reference, &config_digest)
                .await
                .map_err(|e| push_error(&repo, e))?
            {
                let config = self.content.read(&rec.id)?;
                s.client
                    .push_blob(&reference, config, &config_digest)
                    .await
                    .map_err(|e| push_error(&repo, e))?;
            }
            let content_type = manifest
                .media_type
                .parse()
                .map_err(|_| ImagesError::Registry("bad manifest media type".to_owned()))?;
            s.client
                .push_manifest_raw(&reference, manifest.bytes.clone(), content_type)
                .await
                .map_err(|e| push_error(&repo, e))?;
            let tag = tagged.tag().unwrap_or("latest").to_owned();
            let size = manifest.bytes.len();
            // The registry now holds the image: record the digest it goes by there.
            let fresh = self.store.image(&rec.id)?.unwrap_or(rec);
            let digest_ref = repo.clone().with_digest(manifest.digest.clone());
            self.commit_image(fresh, None, Some(&digest_ref))?;
            out.status(
                "",
                format!("{tag}: digest: {} size: {size}", manifest.digest),
            )
            .await;
            out.send(Line::Pushed(berth_proto::images::v1::Pushed {
                tag: tag.to_string(),
                digest: manifest.digest.to_string(),
                size: i64::try_from(size).unwrap_or(i64::MAX),
            }))
            .await;
            self.event("push", &tagged.familiar_string(), &tagged.familiar_string());
        }
        Ok(())
    }

    /// One layer: already there, mounted from another repository, or uploaded.
    #[allow(clippy::too_many_arguments)]
    async fn push_layer(
        &self,
        s: &Session,
        reference: &Reference,
        repo: &ImageRef,
        layer: &Descriptor,
        id: &str,
        sources: &[String],
        out: &LineSink,
    ) -> Result<(), ImagesError> {
        let digest = layer.digest.to_string();
        if s.client
            .blob_exists(reference, &digest)
            .await
            .map_err(|e| push_error(repo, e))?
        {
            out.status(id, "Layer already exists").await;
            return Ok(());
        }
        for source in sources {
            let from = Reference::with_tag(s.registry.clone(), source.clone(), "latest".to_owned());
            match s.client.mount_blob(reference, &from, &digest).await {
                Ok(()) => {
                    out.status(id, format!("Mounted from {source}")).await;
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(blob = %digest, from = %source, error = %e, "mount failed; uploading")
                }
            }
        }
        let path = self.content.path(&layer.digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ImagesError::io(&path, e))?;
        let total = layer.size;
        let progress = out.clone();
        let id_owned = id.to_owned();
        let chunks = futures::stream::unfold(
            (file, 0u64, progress, id_owned),
            move |(mut f, done, progress, id)| async move {
                let mut buf = vec![0u8; UPLOAD_CHUNK];
                let mut len = 0;
                while len < buf.len() {
                    match f.read(&mut buf[len..]).await {
                        Ok(0) => break,
                        Ok(n) => len += n,
                        Err(e) => {
                            return Some((
                                Err(OciDistributionError::IoError(e)),
                                (f, done, progress, id),
                            ));
                        }
                    }
                }
                if len == 0 {
                    return None;
                }
                buf.truncate(len);
                let done = done + len as u64;
                progress.bytes(&id, "Pushing", done, total).await;
                Some((Ok(Bytes::from(buf)), (f, done, progress, id)))
            },
        );
        s.client
            .push_blob_stream(reference, chunks, &digest, Some(total))
            .await
            .map_err(|e| push_error(repo, e))?;
        out.status(id, "Pushed").await;
        Ok(())
    }

    /// The manifest to push for `rec`, with every layer blob in the content store and
    /// compressed: a stored one if there is; else one written (and kept, with the image) after
    /// gzipping the uncompressed layers. Blocking.
    pub(crate) fn push_manifest(&self, rec: &ImageRecord) -> Result<StoredManifest, ImagesError> {
        let compressed =
            |l: &Descriptor| Compression::of_media_type(&l.media_type) != Compression::None;
        if let Some(m) = self.manifests_of(rec).into_iter().find(|m| {
            m.layers
                .iter()
                .all(|l| compressed(l) && self.content.exists(&l.digest))
        }) {
            return Ok(m);
        }
        let base = self.complete_manifest(rec)?;
        let mut added = Added::default();
        let result = self.gzip_layers(rec, &base, &mut added);
        self.release(added);
        result
    }

    fn gzip_layers(
        &self,
        rec: &ImageRecord,
        base: &StoredManifest,
        added: &mut Added,
    ) -> Result<StoredManifest, ImagesError> {
        let mut layers = Vec::new();
        for l in &base.layers {
            if Compression::of_media_type(&l.media_type) != Compression::None {
                layers.push(l.clone());
                continue;
            }
            let mut w = self.content.writer()?;
            let io_err = |e: io::Error| ImagesError::io(&self.content.path(&l.digest), e);
            {
                let mut gz = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(&mut w, flate2::Compression::default());
                let mut blob = self.content.open_blob(&l.digest)?;
                io::copy(&mut blob, &mut gz).map_err(io_err)?;
                gz.finish().map_err(io_err)?;
            }
            let size = w.written();
            let digest = w.commit(None, Some(size))?;
            added.blobs.push(digest.clone());
            layers.push(Descriptor {
                media_type: Compression::Gzip
                    .layer_media_type(base.is_docker())
                    .to_owned(),
                digest,
                size,
                platform: None,
            });
        }
        let config_size = self.blob_size(&rec.id)?;
        let m = StoredManifest::build(base.is_docker(), &rec.id, config_size, &layers);
        self.put_tracked(added, &m.bytes, Some(&m.digest))?;
        let mut updated = self.store.image(&rec.id)?.unwrap_or_else(|| rec.clone());
        for d in std::iter::once(&m.digest).chain(layers.iter().map(|l| &l.digest)) {
            if !updated.blobs.contains(d) {
                updated.blobs.push(d.clone());
            }
        }
        self.commit_image(updated, None, None)?;
        Ok(m)
    }
}

/// Other repositories of `repo`'s registry the image is known to be in (where it was pulled
/// from or pushed to): candidates for a cross-repository blob mount.
fn mount_sources(rec: &ImageRecord, repo: &ImageRef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in &rec.repo_digests {
        if let Ok(r) = d.parse::<ImageRef>()
            && r.domain() == repo.domain()
            && r.path() != repo.path()
            && !out.iter().any(|p| p == r.path())
        {
            out.push(r.path().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_come_from_other_repositories_of_the_same_registry() {
        let d = Digest::sha256_of(b"m");
        let rec = ImageRecord {
            id: Digest::sha256_of(b"c"),
            repo_tags: vec!["127.0.0.1:5000/tagged:1".to_owned()],
            repo_digests: vec![
                format!("127.0.0.1:5000/src@{d}"),
                format!("127.0.0.1:5000/dst@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("127.0.0.1:5000/src@{d}"),
            ],
            manifest: None,
            chain: vec![],
            diff_ids: vec![],
            size: 0,
            created: None,
            added_at: 0,
            blobs: vec![],
            last_tag_time: None,
            parent: None,
            build_key: None,
        };
        let target: ImageRef = "127.0.0.1:5000/dst:1".parse().unwrap();
        assert_eq!(mount_sources(&rec, &target.name_only()), ["src"]);
    }
}
