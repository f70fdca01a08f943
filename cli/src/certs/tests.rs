use std::sync::Arc;

use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    server::WebPkiClientVerifier,
};

use super::*;

fn args(out: PathBuf, hosts: &[&str]) -> CertsArgs {
    CertsArgs {
        out,
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        service_hosts: Vec::new(),
        service: None,
        days: 30,
        force: false,
    }
}

fn cert(dir: &std::path::Path, file: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(dir.join(file)).unwrap()
}

fn roots(dir: &std::path::Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(cert(dir, "ca.pem")).unwrap();
    Arc::new(roots)
}

/// How a TLS server would judge `file` as its client's certificate.
fn as_client(dir: &std::path::Path, file: &str) -> Result<(), rustls::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let v = WebPkiClientVerifier::builder(roots(dir)).build().unwrap();
    v.verify_client_cert(&cert(dir, file), &[], UnixTime::now())
        .map(|_| ())
}

/// How a TLS client dialling `name` would judge `file` as its server's certificate.
fn as_server(dir: &std::path::Path, file: &str, name: &str) -> Result<(), rustls::Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let v = WebPkiServerVerifier::builder(roots(dir)).build().unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    v.verify_server_cert(&cert(dir, file), &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn makes_eight_files_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let args = args(dir.path().join("certs"), &["localhost", "127.0.0.1"]);
    run(&args).unwrap();
    for f in [
        "ca.pem",
        "ca-key.pem",
        "server-cert.pem",
        "server-key.pem",
        "cert.pem",
        "key.pem",
        "service-cert.pem",
        "service-key.pem",
    ] {
        let text = std::fs::read_to_string(args.out.join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN"), "{f}");
    }
    for key in ["key.pem", "service-key.pem", "ca-key.pem"] {
        let mode = std::fs::metadata(args.out.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400, "{key}");
    }
    assert!(run(&args).unwrap_err().to_string().contains("--force"));
    run(&CertsArgs {
        force: true,
        ..args
    })
    .unwrap();
}

#[test]
fn the_service_certificate_serves_and_calls_the_others_do_one_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path().to_owned(), &["gw.example"]);
    a.service_hosts = vec!["10.0.0.5".to_owned(), "svc.example".to_owned()];
    run(&a).unwrap();
    let d = dir.path();
    // Both usages, the service names.
    as_client(d, "service-cert.pem").unwrap();
    as_server(d, "service-cert.pem", "10.0.0.5").unwrap();
    as_server(d, "service-cert.pem", "svc.example").unwrap();
    assert!(matches!(
        as_server(d, "service-cert.pem", "gw.example"),
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForNameContext { .. }
        ))
    ));
    // The API server's and the docker client's certificates: one usage each.
    as_server(d, "server-cert.pem", "gw.example").unwrap();
    as_client(d, "cert.pem").unwrap();
    let wrong_usage = |r: Result<(), rustls::Error>| {
        matches!(
            r,
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose
                    | rustls::CertificateError::InvalidPurposeContext { .. }
            ))
        )
    };
    assert!(wrong_usage(as_client(d, "server-cert.pem")));
    assert!(wrong_usage(as_server(d, "cert.pem", "gw.example")));
}

#[test]
fn one_service_certificate_is_signed_by_the_existing_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut one = args(d.to_owned(), &["10.0.0.7", "images.example"]);
    one.service = Some("images".to_owned());
    // No CA yet: the error says how to make one.
    let err = run(&one).unwrap_err().to_string();
    assert!(err.contains("berth certs --out"), "{err}");

    run(&args(d.to_owned(), &["gw.example"])).unwrap();
    let ca_before = std::fs::read(d.join("ca.pem")).unwrap();
    run(&one).unwrap();
    assert_eq!(std::fs::read(d.join("ca.pem")).unwrap(), ca_before);
    as_client(d, "images-cert.pem").unwrap();
    as_server(d, "images-cert.pem", "10.0.0.7").unwrap();
    as_server(d, "images-cert.pem", "images.example").unwrap();
    assert!(run(&one).unwrap_err().to_string().contains("--force"));

    for bad in ["", "../x", "a/b", ".hidden"] {
        one.service = Some(bad.to_owned());
        assert!(run(&one).is_err(), "{bad:?}");
    }
}
