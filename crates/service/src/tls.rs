//! Mutual TLS between services, and errors that say why a handshake failed.
//!
//! tonic reports a failed handshake as `transport error` (or rustls' terse text). [`Channel`]
//! wraps tonic's channel and, when the error's source chain holds a rustls error, answers a
//! `Status` (`UNAVAILABLE`) that names the peer and the cause: unknown CA, wrong key usage,
//! name mismatch, expired, no certificate. In TLS 1.3 the server checks the client's
//! certificate after the client considers the handshake done, so the server's verdict arrives
//! as an alert on the first request: both sides' verdicts are explained.

use std::{
    error::Error as StdError,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use berth_config::ServiceTls;
use rustls::{AlertDescription, CertificateError};
use tonic::{
    body::Body,
    transport::{Certificate, Identity, ServerTlsConfig},
};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A gRPC channel to another service whose TLS failures say why.
#[derive(Clone)]
pub struct Channel {
    inner: tonic::transport::Channel,
    /// `images at tcp://10.0.0.5:7001`: named in the explanations.
    peer: Arc<str>,
}

impl Channel {
    pub(crate) fn new(inner: tonic::transport::Channel, peer: String) -> Channel {
        Channel {
            inner,
            peer: peer.into(),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("peer", &self.peer).finish()
    }
}

impl tower::Service<http::Request<Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner
            .poll_ready(cx)
            .map_err(|e| explained(&self.peer, e))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let fut = self.inner.call(req);
        let peer = self.peer.clone();
        Box::pin(async move { fut.await.map_err(|e| explained(&peer, e)) })
    }
}

/// The error as is, or a `Status` that explains the TLS failure in its chain. tonic takes a
/// `Status` found in an error as the call's status.
fn explained(peer: &str, err: tonic::transport::Error) -> BoxError {
    match explain_tls(&err) {
        Some(why) => Box::new(tonic::Status::unavailable(format!(
            "TLS with {peer} failed: {why}"
        ))),
        None => Box::new(err),
    }
}

/// Why a TLS handshake failed, in words, if `err`'s source chain holds a rustls error.
pub fn explain_tls(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(explain_rustls(r));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // io::Error::source skips the error it wraps: look inside.
            if let Some(r) = io.get_ref().and_then(|inner| explain_tls(inner)) {
                return Some(r);
            }
            // h2 hands a connection's I/O error to each stream as its kind and text only.
            if let Some(a) = alert_in_text(&io.to_string()) {
                return Some(explain_alert(a));
            }
        }
        next = e.source();
    }
    None
}

/// The alert in rustls' text for `Error::AlertReceived` ("received fatal alert: UnknownCA").
fn alert_in_text(text: &str) -> Option<AlertDescription> {
    let name = text.strip_prefix("received fatal alert: ")?;
    [
        AlertDescription::UnknownCA,
        AlertDescription::UnsupportedCertificate,
        AlertDescription::BadCertificate,
        AlertDescription::CertificateExpired,
        AlertDescription::CertificateRequired,
        AlertDescription::CertificateUnknown,
        AlertDescription::AccessDenied,
        AlertDescription::DecryptError,
        AlertDescription::HandshakeFailure,
    ]
    .into_iter()
    .find(|a| format!("{a:?}") == name)
}

const REMEDY: &str = "service certificates from `berth certs` carry both usages";

fn explain_rustls(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(c) => explain_local(c),
        rustls::Error::AlertReceived(a) => explain_alert(*a),
        rustls::Error::NoCertificatesPresented => {
            "the client presented no certificate (berth.tls.cert is required on both sides)"
                .to_owned()
        }
        other => format!("TLS error: {other}"),
    }
}

/// This side refused the peer's certificate.
fn explain_local(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "unknown CA: the peer's certificate is not signed by the CA in berth.tls.ca".to_owned()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!(
                "wrong key usage: the peer's certificate is not valid for this use (a service \
                 certificate needs extendedKeyUsage serverAuth and clientAuth; {REMEDY})"
            )
        }
        CertificateError::NotValidForName => {
            "name mismatch: the peer's certificate does not name the host in its address".to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "name mismatch: the peer's certificate does not name {} (it names {})",
            expected.to_str(),
            presented.join(", ")
        ),
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            format!("the peer's certificate is expired or not yet valid ({c})")
        }
        other => format!("the peer's certificate was refused: {other}"),
    }
}

/// The peer refused this side's certificate and said why with an alert.
fn explain_alert(a: AlertDescription) -> String {
    match a {
        AlertDescription::UnknownCA => "unknown CA: the peer does not trust this service's \
             certificate (it is not signed by the peer's berth.tls.ca)"
            .to_owned(),
        AlertDescription::UnsupportedCertificate => format!(
            "wrong key usage: the peer refused this service's certificate for this use (a \
             service certificate needs extendedKeyUsage serverAuth and clientAuth; {REMEDY})"
        ),
        AlertDescription::BadCertificate => {
            "the peer refused this service's certificate as bad (malformed or naming another host)"
                .to_owned()
        }
        AlertDescription::CertificateExpired => {
            "the peer refused this service's certificate as expired or not yet valid".to_owned()
        }
        AlertDescription::DecryptError => "the peer could not verify the signature on this \
             service's certificate (signed by another CA of the same name as the peer's \
             berth.tls.ca?)"
            .to_owned(),
        AlertDescription::CertificateRequired => {
            "the peer requires a client certificate and got none".to_owned()
        }
        other => format!("the peer ended the handshake with the alert {other:?}"),
    }
}

/// The server side of mutual TLS: `berth.tls`'s certificate, clients verified against its CA.
pub fn server_tls(tls: &ServiceTls) -> anyhow::Result<ServerTlsConfig> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| anyhow::anyhow!("reading berth.tls file {}: {e}", p.display()))
    };
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?))
        .client_ca_root(Certificate::from_pem(read(&tls.ca)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(e: rustls::Error) -> Box<dyn StdError + Send + Sync> {
        // As tokio-rustls and hyper report it: an io::Error around the rustls error, inside
        // another error.
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("transport error")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        Box::new(Outer(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e,
        )))
    }

    #[test]
    fn names_the_cause_found_in_the_chain() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "unknown CA",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                "unknown CA",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::InvalidPurpose),
                "wrong key usage",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnsupportedCertificate),
                "wrong key usage",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "name mismatch",
            ),
        ];
        for (e, want) in cases {
            let why = explain_tls(&*chain(e)).unwrap();
            assert!(why.contains(want), "{why}");
        }
        let via_h2 = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "received fatal alert: UnknownCA",
        );
        assert!(explain_tls(&via_h2).unwrap().contains("unknown CA"));
        let plain = std::io::Error::other("connection refused");
        assert_eq!(explain_tls(&plain), None);
    }
}
