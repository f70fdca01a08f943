//! The API over TCP with mutual TLS, with certificates from `berth certs`.

use berth_testutil::{Engine, EngineOptions, bin, free_port, run, text};

#[test]
fn tlsverify_requires_a_client_certificate_signed_by_the_ca() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path().display().to_string();
    let out = run(std::process::Command::new(bin("berth")).args([
        "certs",
        "--out",
        &dir,
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
    ]));
    assert!(out.status.success(), "{:?}", text(&out));

    let port = free_port();
    let engine = Engine::up(EngineOptions {
        extra_hosts: vec![format!("tcp://127.0.0.1:{port}")],
        config: Some(serde_json::json!({
            "tls": true, "tlsverify": true,
            "tlscacert": format!("{dir}/ca.pem"),
            "tlscert": format!("{dir}/server-cert.pem"),
            "tlskey": format!("{dir}/server-key.pem"),
        })),
        ..Default::default()
    });
    let tcp = format!("tcp://127.0.0.1:{port}");

    // With the client certificate: works, by flags and by DOCKER_CERT_PATH.
    let ok = engine.docker(&[
        "--tlsverify",
        "--tlscacert",
        &format!("{dir}/ca.pem"),
        "--tlscert",
        &format!("{dir}/cert.pem"),
        "--tlskey",
        &format!("{dir}/key.pem"),
        "-H",
        &tcp,
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    assert!(ok.status.success(), "{:?}\n{}", text(&ok), engine.logs());
    assert_eq!(text(&ok).0.trim(), "1.50");
    let ok = run(engine
        .docker_cmd()
        .env("DOCKER_HOST", &tcp)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &dir)
        .args(["info", "--format", "{{.ServerVersion}}"]));
    assert!(ok.status.success(), "{:?}", text(&ok));

    // Without a client certificate: refused during the handshake.
    let only_ca = tempfile::tempdir().unwrap();
    std::fs::copy(format!("{dir}/ca.pem"), only_ca.path().join("ca.pem")).unwrap();
    let refused = run(engine
        .docker_cmd()
        .env("DOCKER_HOST", &tcp)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", only_ca.path())
        .args(["version"]));
    let (stdout, stderr) = text(&refused);
    assert!(!refused.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("Server:"), "{stdout}");

    // A certificate from another CA: refused too.
    let other = tempfile::tempdir().unwrap();
    let o = other.path().display().to_string();
    assert!(
        run(std::process::Command::new(bin("berth")).args([
            "certs",
            "--out",
            &o,
            "--host",
            "127.0.0.1"
        ]))
        .status
        .success()
    );
    let refused = engine.docker(&[
        "--tlsverify",
        "--tlscacert",
        &format!("{dir}/ca.pem"),
        "--tlscert",
        &format!("{o}/cert.pem"),
        "--tlskey",
        &format!("{o}/key.pem"),
        "-H",
        &tcp,
        "version",
    ]);
    assert!(!refused.status.success(), "{:?}", text(&refused));

    // Plain HTTP to the TLS port: no answer from the engine.
    let plain = engine.docker(&["-H", &tcp, "version", "--format", "{{.Server.APIVersion}}"]);
    assert!(!plain.status.success(), "{:?}", text(&plain));

    // The unix socket still serves without TLS, with mode 0660.
    engine.docker_ok(&["version"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(engine.run_root.join("docker.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
}

#[test]
fn tls_without_verify_serves_any_client_over_tls_only() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path().display().to_string();
    let out = run(std::process::Command::new(bin("berth")).args([
        "certs",
        "--out",
        &dir,
        "--host",
        "127.0.0.1",
    ]));
    assert!(out.status.success(), "{:?}", text(&out));
    let port = free_port();
    let engine = Engine::up(EngineOptions {
        extra_hosts: vec![format!("tcp://127.0.0.1:{port}")],
        config: Some(serde_json::json!({
            "tls": true,
            "tlscert": format!("{dir}/server-cert.pem"),
            "tlskey": format!("{dir}/server-key.pem"),
        })),
        ..Default::default()
    });
    let tcp = format!("tcp://127.0.0.1:{port}");
    // No client certificate needed; the client checks the server against the CA.
    let ok = engine.docker(&[
        "--tlsverify",
        "--tlscacert",
        &format!("{dir}/ca.pem"),
        "-H",
        &tcp,
        "version",
        "--format",
        "{{.Server.APIVersion}}",
    ]);
    assert!(ok.status.success(), "{:?}\n{}", text(&ok), engine.logs());
    assert_eq!(text(&ok).0.trim(), "1.50");
    // Plain HTTP is not served on the TLS port.
    let plain = engine.docker(&["-H", &tcp, "version", "--format", "{{.Server.APIVersion}}"]);
    assert!(!plain.status.success(), "{:?}", text(&plain));
}
