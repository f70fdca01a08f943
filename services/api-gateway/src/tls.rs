//! TLS for TCP listeners: with `tlsverify`, a client certificate signed by `tlscacert` is
//! required (mutual TLS); with `tls` alone, server TLS only. rustls with the ring provider.

use std::{path::Path, sync::Arc};

use berth_config::DaemonConfig;
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("reading certificates from {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("parsing certificates in {}: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate found in {}", path.display());
    }
    Ok(certs)
}

/// The server TLS configuration for TCP hosts, or `None` when TLS is off.
pub(crate) fn server_config(cfg: &DaemonConfig) -> anyhow::Result<Option<Arc<ServerConfig>>> {
    if !cfg.tls {
        return Ok(None);
    }
    let need = |p: &Option<std::path::PathBuf>, key: &str| {
        p.clone()
            .ok_or_else(|| anyhow::anyhow!("TLS is on but \"{key}\" is not set"))
    };
    let cert = need(&cfg.tls_files.cert, "tlscert")?;
    let key = need(&cfg.tls_files.key, "tlskey")?;
    let chain = certs(&cert)?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| anyhow::anyhow!("reading the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if cfg.tlsverify {
        let ca = need(&cfg.tls_files.ca, "tlscacert")?;
        let mut roots = RootCertStore::empty();
        for c in certs(&ca)? {
            roots.add(c)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
