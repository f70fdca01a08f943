//! `GET /distribution/{name}/json` (moby's distribution router): what the registry holds for a
//! reference, without pulling it: the descriptor of its top manifest (an index or an image
//! manifest, as the registry serves it) and the platforms it offers: those of the index's
//! entries, or the one of the image's config. Mirrors are tried first, as for a pull.

use berth_types::{Digest, ImageRef};
use oci_client::Reference;

use crate::{
    ImagesError,
    manifest::{self, Parsed},
    registry::{Credentials, Endpoint, oci_reference, registry_error},
    service::ImageService,
};

/// One platform, in the OCI image spec's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PlatformInfo {
    pub(crate) architecture: String,
    pub(crate) os: String,
    pub(crate) os_version: String,
    pub(crate) os_features: Vec<String>,
    pub(crate) variant: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DistributionInfo {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) platforms: Vec<PlatformInfo>,
}

impl ImageService {
    pub(crate) async fn distribution(
        &self,
        r: &ImageRef,
        credentials: &Credentials,
    ) -> Result<DistributionInfo, ImagesError> {
        let r = r.clone().with_default_tag();
        let endpoints = self.registries.endpoints(&r);
        let mut last = None;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.distribution_from(&r, ep, credentials).await {
                Ok(info) => return Ok(info),
                Err(e) if i + 1 < endpoints.len() => {
                    tracing::warn!(mirror = %ep.registry, error = %e, "mirror failed; trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ImagesError::Registry("no registry endpoint".to_owned())))
    }

    async fn distribution_from(
        &self,
        r: &ImageRef,
        ep: &Endpoint,
        credentials: &Credentials,
    ) -> Result<DistributionInfo, ImagesError> {
        let client = self.registries.client(ep);
        let auth = credentials.to_auth();
        let reference = oci_reference(r, ep);
        let (bytes, digest) = client
            .pull_manifest_raw(&reference, &auth, &manifest::ACCEPTED)
            .await
            .map_err(|e| registry_error(r, e))?;
        let digest: Digest = digest.parse().unwrap_or_else(|_| Digest::sha256_of(&bytes));
        let platforms = match manifest::parse(&bytes)? {
            Parsed::Index(entries) => entries
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| PlatformInfo {
                    architecture: p.architecture.clone(),
                    os: p.os.clone(),
                    variant: p.variant.clone().unwrap_or_default(),
                    ..Default::default()
                })
                .collect(),
            Parsed::Image { config, .. } => {
                let blob = Reference::with_digest(
                    reference.registry().to_owned(),
                    reference.repository().to_owned(),
                    config.digest.to_string(),
                );
                let mut buf = Vec::new();
                client
                    .pull_blob(&blob, config.digest.to_string().as_str(), &mut buf)
                    .await
                    .map_err(|e| registry_error(r, e))?;
                if Digest::sha256_of(&buf) != config.digest {
                    return Err(ImagesError::Verify(format!(
                        "the registry's config blob does not match its digest {}",
                        config.digest
                    )));
                }
                vec![config_platform(&buf)?]
            }
        };
        Ok(DistributionInfo {
            media_type: media_type(&bytes),
            digest,
            size: bytes.len() as u64,
            platforms,
        })
    }
}

/// The manifest's own `mediaType` (both Docker schema 2 and OCI documents carry it); an OCI
/// document without one is told apart by its `manifests`.
fn media_type(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match v["mediaType"].as_str() {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ if v.get("manifests").is_some() => manifest::OCI_INDEX.to_owned(),
        _ => manifest::OCI_MANIFEST.to_owned(),
    }
}

/// The platform an image config names.
fn config_platform(config: &[u8]) -> Result<PlatformInfo, ImagesError> {
    let v: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| ImagesError::Registry(format!("invalid image config: {e}")))?;
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(PlatformInfo {
        architecture: s("architecture"),
        os: s("os"),
        os_version: s("os.version"),
        os_features: v["os.features"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        variant: s("variant"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_config_platforms() {
        assert_eq!(
            media_type(br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#),
            manifest::DOCKER_MANIFEST
        );
        assert_eq!(
            media_type(br#"{"schemaVersion":2,"manifests":[]}"#),
            manifest::OCI_INDEX
        );
        assert_eq!(
            media_type(br#"{"schemaVersion":2,"layers":[]}"#),
            manifest::OCI_MANIFEST
        );
        let p = config_platform(
            br#"{"architecture":"arm64","os":"linux","variant":"v8","os.features":["x"]}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            PlatformInfo {
                architecture: "arm64".into(),
                os: "linux".into(),
                os_version: String::new(),
                os_features: vec!["x".into()],
                variant: "v8".into(),
            }
        );
        assert!(config_platform(b"not json").is_err());
    }
}
