//! DNS as dockerd wires it, through the real docker CLI: containers on a user-defined network
//! resolve each other (name, `--network-alias`) through the embedded server at 127.0.0.11,
//! which forwards other names to the container's upstreams (here `--dns` pointing at a server
//! the test runs on loopback, dialled from the host's namespace); `--dns-search`,
//! `--dns-option` and `--add-host` land in the container's files; the default bridge has no
//! embedded server. Busybox's `nslookup` is used (its `wget`/`ping` by name crash in glibc).

use std::net::UdpSocket;

use berth_testutil::{BusyboxEngine, eventually_explained};

/// A DNS server on `addr` that answers every A query with `answer`, AAAA with no record.
fn fake_upstream(addr: &str, answer: [u8; 4]) {
    let sock = UdpSocket::bind(addr).expect("bind the fake upstream");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            // The question ends after its name (0-terminated) and 4 bytes of type and class.
            let Some(end) = buf[12..n].iter().position(|b| *b == 0).map(|p| 12 + p + 5) else {
                continue;
            };
            let qtype = u16::from_be_bytes([buf[end - 4], buf[end - 3]]);
            let mut out = buf[..end].to_vec();
            out[2] = 0x81; // response, recursion desired
            out[3] = 0x80; // recursion available, no error
            out[6..8].copy_from_slice(&u16::from(qtype == 1).to_be_bytes());
            out[8..12].fill(0);
            if qtype == 1 {
                out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                out.extend_from_slice(&answer);
            }
            let _ = sock.send_to(&out, from);
        }
    });
}

#[test]
fn user_networks_resolve_names_and_forward_the_rest() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "--subnet", "10.236.0.0/24", "dnsnet"]);
    s.docker(&[
        "run",
        "-d",
        "--name",
        "d1",
        "--network",
        "dnsnet",
        "--network-alias",
        "db",
        &s.image,
        "sleep",
        "1000",
    ]);
    s.docker(&[
        "run",
        "-d",
        "--name",
        "d2",
        "--network",
        "dnsnet",
        &s.image,
        "sleep",
        "1000",
    ]);
    let ip1 = s.inspect("d1")["NetworkSettings"]["Networks"]["dnsnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let d1 = s.inspect("d1");
    let ep = &d1["NetworkSettings"]["Networks"]["dnsnet"];
    assert_eq!(ep["Aliases"], serde_json::json!(["db"]));
    let short = &d1["Id"].as_str().unwrap()[..12];
    assert_eq!(ep["DNSNames"], serde_json::json!(["d1", "db", short]));
    let resolv = s.docker(&["exec", "d2", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    assert!(resolv.contains("options ndots:0"), "{resolv}");
    for name in ["d1", "db", "d1.dnsnet"] {
        let out = s.docker(&["exec", "d2", "nslookup", name, "127.0.0.11"]);
        assert!(out.contains(&ip1), "{name}: {out}");
    }
    s.docker(&["exec", "d2", "ping", "-c1", "-W2", &ip1]);
    // The network service killed: its restart serves the names again.
    s.engine.kill_and_await_restart("berth-network");
    eventually_explained("d1 resolved after the restart", || {
        let (code, out, err) = s.status(&["exec", "d2", "nslookup", "d1", "127.0.0.11"]);
        if code == 0 && out.contains(&ip1) {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });
    // Unknown here: d3 runs on the default bridge.
    s.docker(&["run", "-d", "--name", "d3", &s.image, "sleep", "1000"]);
    let (code, out, err) = s.status(&["exec", "d2", "nslookup", "d3", "127.0.0.11"]);
    assert_ne!(code, 0, "{out}{err}");
    let resolv = s.docker(&["exec", "d3", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains("127.0.0.11"), "{resolv}");

    // Other names go to the upstreams: --dns on loopback, reached from the host's namespace.
    let upstream = format!("127.0.0.{}", 100 + std::process::id() % 100);
    fake_upstream(&format!("{upstream}:53"), [10, 9, 8, 7]);
    let out = s.docker(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        "--dns",
        &upstream,
        "--dns-search",
        "example.org",
        "--dns-option",
        "timeout:2",
        &s.image,
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup far.example.test 127.0.0.11",
    ]);
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.contains("search example.org"), "{out}");
    assert!(out.contains("options ndots:0 timeout:2"), "{out}");
    assert!(out.contains("10.9.8.7"), "{out}");

    // --add-host, with host-gateway; --dns on the default bridge replaces the servers.
    let out = s.docker(&[
        "run",
        "--rm",
        "--add-host",
        "h:1.2.3.4",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.1.1.1",
        &s.image,
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(out.contains("1.2.3.4\th"), "{out}");
    let gateway = s.inspect("bridge")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(out.contains(&format!("{gateway}\tgw")), "{out}");
    assert!(out.contains("nameserver 10.1.1.1"), "{out}");
    let hc = &s.inspect("d1")["HostConfig"];
    assert_eq!(hc["Dns"], serde_json::json!([]));

    let (_, err) = s.fails(&["run", "--rm", "--network-alias", "x", &s.image, "true"]);
    assert!(err.contains("network-scoped alias"), "{err}");

    s.docker(&["rm", "-f", "d1", "d2", "d3"]);
    s.docker(&["network", "rm", "dnsnet"]);
}
