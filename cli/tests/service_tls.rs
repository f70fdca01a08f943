//! gRPC between services over TCP with mutual TLS, with certificates from `berth certs`: the
//! service certificate works both ways, and a refused handshake says why in the caller's error.

use std::path::{Path, PathBuf};

use berth_cli::certs::{CertsArgs, run};
use berth_config::{ServiceAddress, ServiceTls};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn certs(out: &Path, hosts: &[&str], service: Option<&str>) {
    run(&CertsArgs {
        out: out.to_owned(),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        service_hosts: Vec::new(),
        service: service.map(str::to_owned),
        days: 30,
        force: false,
    })
    .unwrap();
}

fn tls(dir: &Path, cert: &str, key: &str) -> ServiceTls {
    ServiceTls {
        ca: dir.join("ca.pem"),
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A gRPC server (the health service) on 127.0.0.1 with `tls`; its port.
async fn server(tls: &ServiceTls) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let server = tonic::transport::Server::builder()
        .tls_config(berth_service::server_tls(tls).unwrap())
        .unwrap()
        .add_service(health)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    port
}

/// A health check to `host:port` with `tls`: Ok, or the status message the caller gets.
async fn call(host: &str, port: u16, tls: &ServiceTls) -> Result<(), String> {
    let address = ServiceAddress::Tcp {
        host: host.to_owned(),
        port,
    };
    let channel = berth_service::channel(&address, Some(tls)).unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
        .map_err(|s| s.message().to_owned())
}

struct Certs {
    _tmp: tempfile::TempDir,
    main: PathBuf,
    other: PathBuf,
}

fn setup() -> Certs {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("main");
    let other = tmp.path().join("other");
    certs(&main, &["127.0.0.1", "localhost"], None);
    certs(&main, &["elsewhere.example"], Some("elsewhere"));
    certs(&other, &["127.0.0.1"], None);
    Certs {
        _tmp: tmp,
        main,
        other,
    }
}

#[tokio::test]
async fn the_service_certificate_works_both_ways() {
    let c = setup();
    let svc = tls(&c.main, "service-cert.pem", "service-key.pem");
    let port = server(&svc).await;
    call("127.0.0.1", port, &svc).await.unwrap();
    call("localhost", port, &svc).await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_as_unknown_ca() {
    let c = setup();
    let svc = tls(&c.main, "service-cert.pem", "service-key.pem");
    let port = server(&svc).await;
    // The caller's certificate is signed by another CA: the server's verdict, as an alert.
    let mut stranger = tls(&c.other, "service-cert.pem", "service-key.pem");
    stranger.ca = c.main.join("ca.pem");
    let err = call("127.0.0.1", port, &stranger).await.unwrap_err();
    assert!(err.contains("unknown CA"), "{err}");
    assert!(err.contains("tcp://127.0.0.1:"), "{err}");
    // The server's certificate is signed by another CA: the caller's own verdict.
    let other_server = server(&tls(&c.other, "service-cert.pem", "service-key.pem")).await;
    let err = call("127.0.0.1", other_server, &svc).await.unwrap_err();
    assert!(err.contains("unknown CA"), "{err}");
    assert!(!err.contains("transport error"), "{err}");
}

#[tokio::test]
async fn a_certificate_with_one_usage_is_refused_as_wrong_key_usage() {
    let c = setup();
    let svc = tls(&c.main, "service-cert.pem", "service-key.pem");
    // The caller uses the API server's certificate (serverAuth only) as a client.
    let port = server(&svc).await;
    let err = call(
        "127.0.0.1",
        port,
        &tls(&c.main, "server-cert.pem", "server-key.pem"),
    )
    .await
    .unwrap_err();
    assert!(err.contains("wrong key usage"), "{err}");
    // The server uses the docker client's certificate (clientAuth only).
    let port = server(&tls(&c.main, "cert.pem", "key.pem")).await;
    let err = call("127.0.0.1", port, &svc).await.unwrap_err();
    assert!(err.contains("wrong key usage"), "{err}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_as_name_mismatch() {
    let c = setup();
    let port = server(&tls(&c.main, "elsewhere-cert.pem", "elsewhere-key.pem")).await;
    let svc = tls(&c.main, "service-cert.pem", "service-key.pem");
    let err = call("127.0.0.1", port, &svc).await.unwrap_err();
    assert!(err.contains("name mismatch"), "{err}");
    assert!(err.contains("elsewhere.example"), "{err}");
}
