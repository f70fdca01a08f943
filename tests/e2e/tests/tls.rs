//! The API over TCP with mutual TLS, and services reaching each other over TCP with mutual TLS,
//! with certificates from `berth certs`.

use berth_testutil::{
    BusyboxEngine, Engine, EngineOptions, bin, eventually_explained, free_port, run, text,
};
use nix::sys::signal::Signal;

/// `berth certs --out dir --host ...`, asserted to succeed.
fn berth_certs(dir: &str, hosts: &[&str]) {
    let mut cmd = std::process::Command::new(bin("berth"));
    cmd.args(["certs", "--out", dir]);
    for h in hosts {
        cmd.args(["--host", h]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{:?}", text(&out));
}

/// The images and runtime services on `tcp://127.0.0.1` ports with mutual TLS, using the service
/// certificate `berth certs` makes: `docker run` works through them. Then images restarts with a
/// certificate from another CA, and the gateway's error names the cause.
#[test]
fn services_on_tcp_with_mutual_tls_from_berth_certs() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path().join("main").display().to_string();
    let other = certs.path().join("other").display().to_string();
    berth_certs(&dir, &["127.0.0.1", "localhost"]);
    berth_certs(&other, &["127.0.0.1"]);
    // The files berth.tls names, so that the test can swap the certificate later.
    let live = certs.path().join("live");
    std::fs::create_dir(&live).unwrap();
    for f in ["service-cert.pem", "service-key.pem"] {
        std::fs::copy(format!("{dir}/{f}"), live.join(f)).unwrap();
    }
    let (images_port, runtime_port) = (free_port(), free_port());
    let b = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            config: Some(serde_json::json!({"berth": {
                "services": {
                    "images": {"address": format!("tcp://127.0.0.1:{images_port}")},
                    "runtime": {"address": format!("tcp://127.0.0.1:{runtime_port}")},
                },
                "tls": {
                    "ca": format!("{dir}/ca.pem"),
                    "cert": live.join("service-cert.pem"),
                    "key": live.join("service-key.pem"),
                },
            }})),
            ..Default::default()
        },
    );
    let e = &b.engine;
    // Both really listen on TCP (and not on their default sockets).
    for port in [images_port, runtime_port] {
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    }
    assert!(!e.run_root.join("images.sock").exists());
    assert!(!e.run_root.join("runtime.sock").exists());
    // Build contexts go to a remote images service as messages: no spool directory.
    assert!(!e.run_root.join("spool").exists());
    // gateway -> runtime -> images (image config, snapshot) all over mutual TLS.
    assert_eq!(
        b.docker(&["run", "--rm", &b.image, "echo", "through TLS"]),
        "through TLS"
    );
    // A build's context reaches a remote images service as messages (no spool file): a COPY
    // of a file larger than one message (the relay sends at most 1 MiB at once).
    let ctx = tempfile::tempdir().unwrap();
    let big: String = (0..300_000).map(|i| format!("{i}\n")).collect();
    std::fs::write(ctx.path().join("big.txt"), &big).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nCOPY big.txt /big.txt\n", b.image),
    )
    .unwrap();
    let out = run(e
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "over-tls:1"])
        .arg(ctx.path()));
    let (o, err) = text(&out);
    assert!(out.status.success(), "{o}{err}");
    let got = b.docker(&[
        "run",
        "--rm",
        "over-tls:1",
        "sh",
        "-c",
        "wc -c < /big.txt; head -n 1 /big.txt; tail -n 1 /big.txt",
    ]);
    let got: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(got, [big.len().to_string().as_str(), "0", "299999"]);
    let logs = b.docker(&["run", "-d", &b.image, "sh", "-c", "echo hello; sleep 1000"]);
    let id = logs.trim().to_owned();
    eventually_explained("the container's log", || {
        let out = b.docker(&["logs", &id]);
        if out.contains("hello") {
            Ok(())
        } else {
            Err(out)
        }
    });
    b.docker(&["rm", "-f", &id]);

    // images restarts with a certificate of another CA: the gateway refuses it and says why.
    for f in ["service-cert.pem", "service-key.pem"] {
        let tmp = live.join(format!("{f}.new"));
        std::fs::copy(format!("{other}/{f}"), &tmp).unwrap();
        std::fs::rename(&tmp, live.join(f)).unwrap();
    }
    e.signal("berth-images", Signal::SIGKILL);
    let why = eventually_explained("the gateway to refuse images' new certificate", || {
        let out = e.docker(&["images"]);
        let (o, err) = text(&out);
        if !out.status.success() && err.contains("unknown CA") {
            Ok(err)
        } else {
            Err(format!("{o}{err}"))
        }
    });
    assert!(
        why.contains(&format!("tcp://127.0.0.1:{images_port}")),
        "{why}"
    );
    assert!(!why.contains("transport error"), "{why}");
    // Back to a certificate of the engine's CA: served again.
    for f in ["service-cert.pem", "service-key.pem"] {
        let tmp = live.join(format!("{f}.new"));
        std::fs::copy(format!("{dir}/{f}"), &tmp).unwrap();
        std::fs::rename(&tmp, live.join(f)).unwrap();
    }
    e.signal("berth-images", Signal::SIGKILL);
    eventually_explained("images to be served again", || {
        let out = e.docker(&["images", "-q"]);
        let (o, err) = text(&out);
        if out.status.success() && !o.trim().is_empty() {
            Ok(())
        } else {
            Err(err)
        }
    });
}

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
