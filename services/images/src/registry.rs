//! Talking to registries with oci-client: which protocol a registry gets (plain HTTP for
//! `insecure-registries` and loopback, as dockerd does), Docker Hub mirrors, credentials, and
//! registry errors turned into Docker's messages.

use std::{net::IpAddr, time::Duration};

use berth_config::DaemonConfig;
use berth_types::ImageRef;
use oci_client::{
    Client, Reference,
    client::{ClientConfig, ClientProtocol},
    errors::{OciDistributionError, OciErrorCode},
    secrets::RegistryAuth,
};

use crate::ImagesError;

/// Credentials as Docker's AuthConfig carries them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) registry_token: String,
}

impl Credentials {
    pub(crate) fn to_auth(&self) -> RegistryAuth {
        if !self.registry_token.is_empty() {
            RegistryAuth::Bearer(self.registry_token.clone())
        } else if !self.username.is_empty() {
            RegistryAuth::Basic(self.username.clone(), self.password.clone())
        } else {
            RegistryAuth::Anonymous
        }
    }
}

/// Registry settings from daemon.json.
#[derive(Debug, Clone)]
pub(crate) struct Registries {
    insecure_hosts: Vec<String>,
    insecure_cidrs: Vec<(IpAddr, u8)>,
    mirrors: Vec<String>,
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    Some((a.parse().ok()?, p.parse().ok()?))
}

fn in_cidr(ip: IpAddr, (net, prefix): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if prefix <= 32 => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if prefix <= 128 => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Where a pull goes: a registry host (or mirror) and the protocol to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) registry: String,
    pub(crate) insecure: bool,
}

impl Registries {
    pub(crate) fn new(cfg: &DaemonConfig) -> Registries {
        let mut insecure_cidrs = vec![
            parse_cidr("127.0.0.0/8").expect("cidr"),
            parse_cidr("::1/128").expect("cidr"),
        ];
        let mut insecure_hosts = Vec::new();
        for r in &cfg.insecure_registries {
            match parse_cidr(r) {
                Some(c) => insecure_cidrs.push(c),
                None => insecure_hosts.push(r.clone()),
            }
        }
        Registries {
            insecure_hosts,
            insecure_cidrs,
            mirrors: cfg.registry_mirrors.clone(),
        }
    }

    /// Whether `host[:port]` is reached over plain HTTP.
    pub(crate) fn is_insecure(&self, registry: &str) -> bool {
        if self.insecure_hosts.iter().any(|h| h == registry) {
            return true;
        }
        let host = registry
            .strip_prefix('[')
            .and_then(|r| r.split_once(']').map(|(h, _)| h))
            .unwrap_or_else(|| registry.rsplit_once(':').map_or(registry, |(h, _)| h));
        if host == "localhost" {
            return true;
        }
        host.parse::<IpAddr>()
            .is_ok_and(|ip| self.insecure_cidrs.iter().any(|c| in_cidr(ip, *c)))
    }

    /// The endpoints to try for `r`, in order: Docker Hub mirrors first, then the registry.
    pub(crate) fn endpoints(&self, r: &ImageRef) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if r.is_docker_hub() {
            for m in &self.mirrors {
                let insecure = m.starts_with("http://");
                let host = m
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_owned();
                out.push(Endpoint {
                    registry: host,
                    insecure,
                });
            }
        }
        let registry = r.domain().to_owned();
        out.push(Endpoint {
            insecure: self.is_insecure(&registry),
            registry,
        });
        out
    }

    pub(crate) fn client(&self, endpoint: &Endpoint) -> Client {
        Client::new(ClientConfig {
            protocol: if endpoint.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(15)),
            max_concurrent_download: 4,
            max_concurrent_upload: 4,
            user_agent: "berth/0.1",
            ..Default::default()
        })
    }
}

/// The oci-client reference for `r` at `endpoint`.
pub(crate) fn oci_reference(r: &ImageRef, endpoint: &Endpoint) -> Reference {
    let repo = r.repository_for_registry().to_owned();
    match (r.digest(), r.tag()) {
        (Some(d), _) => Reference::with_digest(endpoint.registry.clone(), repo, d.to_string()),
        (None, Some(t)) => Reference::with_tag(endpoint.registry.clone(), repo, t.to_owned()),
        (None, None) => Reference::with_tag(endpoint.registry.clone(), repo, "latest".to_owned()),
    }
}

/// A registry error in Docker's words.
pub(crate) fn registry_error(r: &ImageRef, e: OciDistributionError) -> ImagesError {
    let what = r.familiar_string();
    let has = |want: fn(&OciErrorCode) -> bool| match &e {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|x| want(&x.code))
        }
        _ => false,
    };
    match &e {
        OciDistributionError::ImageManifestNotFoundError(_) => ImagesError::NotFound(format!(
            "manifest for {what} not found: manifest unknown: manifest unknown"
        )),
        // Never 401 on a pull: the docker CLI answers 401 with an interactive login prompt.
        // dockerd says "pull access denied" (404) here.
        OciDistributionError::AuthenticationFailure(m) => ImagesError::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {m}",
            r.familiar_name()
        )),
        OciDistributionError::UnauthorizedError { .. } => ImagesError::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            r.familiar_name()
        )),
        _ => {
            if has(|c| matches!(c, OciErrorCode::ManifestUnknown)) {
                ImagesError::NotFound(format!(
                    "manifest for {what} not found: manifest unknown: manifest unknown"
                ))
            } else if has(|c| matches!(c, OciErrorCode::NameUnknown)) {
                ImagesError::NotFound(format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login'",
                    r.familiar_name()
                ))
            } else if has(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                ImagesError::NotFound(format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
                    r.familiar_name()
                ))
            } else {
                ImagesError::Registry(format!("error pulling {what}: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn insecure_registries() {
        let cfg = DaemonConfig::parse(
            Path::new("d.json"),
            r#"{"insecure-registries": ["10.1.0.0/16", "myreg:5000"], "registry-mirrors": ["https://mirror.example/"]}"#,
        )
        .unwrap();
        let r = Registries::new(&cfg);
        assert!(r.is_insecure("127.0.0.1:5000"));
        assert!(r.is_insecure("localhost:5000"));
        assert!(r.is_insecure("[::1]:5000"));
        assert!(r.is_insecure("10.1.2.3"));
        assert!(r.is_insecure("myreg:5000"));
        assert!(!r.is_insecure("myreg:5001"));
        assert!(!r.is_insecure("docker.io"));
        let hub: ImageRef = "busybox".parse().unwrap();
        let e = r.endpoints(&hub);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].registry, "mirror.example");
        assert_eq!(e[1].registry, "docker.io");
        let local: ImageRef = "127.0.0.1:5000/x".parse().unwrap();
        assert_eq!(
            r.endpoints(&local),
            vec![Endpoint {
                registry: "127.0.0.1:5000".to_owned(),
                insecure: true
            }]
        );
    }
}
