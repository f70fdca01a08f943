//! gRPC channels to other services: unix sockets on one host, TCP with mutual TLS across hosts.
//! Channels connect lazily, so a service that is down makes calls fail fast, not the caller.

use std::time::Duration;

use berth_config::{DaemonConfig, ServiceAddress, ServiceTls};
use berth_types::ServiceName;
use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::Channel;

/// The largest HTTP/2 frame a service accepts, as a server and as a client (the bytes of an
/// upload or a download travel in frames of this size, not 16 KiB ones).
pub(crate) const MAX_FRAME: u32 = 1 << 20;

/// A lazily connecting channel to `address`.
pub fn channel(address: &ServiceAddress, tls: Option<&ServiceTls>) -> anyhow::Result<Channel> {
    let tune = |e: Endpoint| {
        e.connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .max_frame_size(MAX_FRAME)
    };
    match address {
        ServiceAddress::Unix(path) => {
            let peer = format!("{address}");
            let path = path.clone();
            // The URI is required by the API but unused: the connector dials the socket.
            let endpoint = tune(Endpoint::from_static("http://localhost"));
            let inner = endpoint.connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
            Ok(Channel::new(inner, peer))
        }
        ServiceAddress::Tcp { host, port } => {
            let tls = tls.ok_or_else(|| anyhow::anyhow!("tcp:// services need berth.tls"))?;
            let read = |p: &std::path::Path| {
                std::fs::read(p)
                    .map_err(|e| anyhow::anyhow!("reading berth.tls file {}: {e}", p.display()))
            };
            let config = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(&tls.ca)?))
                .identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?))
                .domain_name(host.clone());
            let endpoint = tune(Endpoint::from_shared(format!("https://{host}:{port}"))?)
                .tls_config(config)?;
            Ok(Channel::new(endpoint.connect_lazy(), address.to_string()))
        }
    }
}

/// Channels to every backend service named in `cfg`.
pub fn connect_all(cfg: &DaemonConfig) -> anyhow::Result<Vec<(ServiceName, Channel)>> {
    ServiceName::backends()
        .into_iter()
        .map(|s| {
            Ok((
                s,
                channel(&cfg.service_address(s), cfg.berth.service_tls.as_ref())?,
            ))
        })
        .collect()
}

/// A client interceptor that carries the caller's trace context in the request metadata.
pub fn trace_interceptor(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let md = req.metadata_mut();
    berth_telemetry::inject_context(|k, v| {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
            v.parse(),
        ) {
            md.insert(key, value);
        }
    });
    Ok(req)
}
