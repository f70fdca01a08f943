//! Published ports to containers with IPv6, through the real docker CLI on `--ipv6` user
//! networks: the kernel forwards them (an element of the engine's `ports6_any`/`ports6_ip`
//! map, so a client keeps its own source address, which a proxy would replace by the
//! gateway's), `[::1]` goes through the service's proxy task (the kernel cannot forward from
//! IPv6 loopback), `-p 8080:80` publishes both families and `-p [::]:…`/`-p [addr]:…` one, as
//! dockerd 28 shows them in `docker port` and `NetworkSettings.Ports`; the elements go on stop
//! and `rm -f` and come back from the journal after a SIGKILL of the network service. Traffic
//! only goes to loopback and between namespaces the engine made.

use std::process::Command;

use berth_testutil::{BusyboxEngine, eventually_explained};

fn host(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a host tool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The elements of a map of the engine's table, from `nft -j`, as `key => value` strings
/// (`tcp . 18480 => fd00:b37:2a::2 . 80`).
fn map_elements(table: &str, map: &str) -> Vec<String> {
    let (ok, text) = host(&["nft", "-j", "list", "map", "inet", table, map]);
    assert!(ok, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("nft -j");
    let concat = |v: &serde_json::Value| -> String {
        v["concat"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" . ")
            })
            .unwrap_or_default()
    };
    json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .flatten()
        .map(|e| format!("{} => {}", concat(&e[0]), concat(&e[1])))
        .collect()
}

/// An HTTP GET from container `from` to `[addr]:port` (busybox nc: its wget crashes in
/// glibc's NSS).
fn get_from(s: &BusyboxEngine, from: &str, addr: &str, port: u16) -> Result<(), String> {
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {addr} {port}");
    let (code, out, err) = s.status(&["exec", from, "sh", "-c", &get]);
    if code == 0 && out.lines().last() == Some("hello") {
        Ok(())
    } else {
        Err(format!("{out}{err}"))
    }
}

fn curl(url: &str) -> Result<(), String> {
    match host(&["curl", "-gs", "--max-time", "3", url]) {
        (true, out) if out.trim() == "hello" => Ok(()),
        (_, out) => Err(out),
    }
}

/// busybox httpd logging each client (`-vv`: `[addr]:port: url:/`) on stderr.
const HTTPD: &str =
    "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -vv -p 80 -h /www";

#[test]
fn ipv6_published_ports_are_forwarded_by_the_kernel() {
    if !berth_testutil::host_has_ipv6() {
        eprintln!("SKIPPED: this host has IPv6 disabled (net.ipv6.conf.all.disable_ipv6)");
        return;
    }
    let s = BusyboxEngine::new();
    let nft = s.engine.nft_table();
    for (name, subnet) in [("srv6", "fd00:b37:2a::/64"), ("cli6", "fd00:b37:2b::/64")] {
        s.docker(&["network", "create", "--ipv6", "--subnet", subnet, name]);
    }
    s.docker(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "srv6",
        "-p",
        "18480:80",
        &s.image,
        "sh",
        "-c",
        HTTPD,
    ]);
    s.sleeper("cli", &["--network", "cli6"]);
    let server6 = s.inspect("srv")["NetworkSettings"]["Networks"]["srv6"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(server6, "fd00:b37:2a::2");

    // Both families, on the same port, as dockerd 28 shows them.
    assert_eq!(
        s.docker(&["port", "srv"]),
        "80/tcp -> 0.0.0.0:18480\n80/tcp -> [::]:18480"
    );
    assert_eq!(
        s.inspect("srv")["NetworkSettings"]["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "18480"},
                           {"HostIp": "::", "HostPort": "18480"}])
    );
    let element = "tcp . 18480 => fd00:b37:2a::2 . 80".to_owned();
    assert!(
        map_elements(&nft, "ports6_any").contains(&element),
        "{:?}",
        map_elements(&nft, "ports6_any")
    );

    // A client on another network reaches the server at the host's address (the gateway of
    // the server's network) and the server sees the client's own address: DNAT, not a proxy
    // (whose connections come from the gateway).
    eventually_explained("the client through the host's IPv6 address", || {
        get_from(&s, "cli", "fd00:b37:2a::1", 18480)
    });
    let seen = |what: &str| {
        let (_, out, err) = s.status(&["logs", "srv"]);
        format!("{out}{err}").contains(what)
    };
    eventually_explained("the server to log the client's address", || {
        if seen("[fd00:b37:2b::2]:") {
            Ok(())
        } else {
            let (_, out, err) = s.status(&["logs", "srv"]);
            Err(format!("{out}{err}"))
        }
    });
    assert!(
        !seen("[fd00:b37:2a::1]:"),
        "no connection came from the gateway"
    );
    // [::1] cannot be forwarded by the kernel: the proxy task answers it; IPv4 as before.
    eventually_explained("[::1]:18480", || curl("http://[::1]:18480/"));
    eventually_explained("127.0.0.1:18480", || curl("http://127.0.0.1:18480/"));
    // Hairpin: the server reaches its own published port through its gateway.
    eventually_explained("hairpin", || get_from(&s, "srv", "fd00:b37:2a::1", 18480));

    // One family, or one address: [::] and an IPv6 host address are elements; [::1] only the
    // proxy's.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "one",
        "--network",
        "srv6",
        "-p",
        "[::]:18481:80",
        "-p",
        "[fd00:b37:2a::1]:18482:80",
        "-p",
        "[::1]:18483:80",
        &s.image,
        "sh",
        "-c",
        HTTPD,
    ]);
    let ports = s.docker(&["port", "one"]);
    let mut lines: Vec<&str> = ports.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "80/tcp -> [::1]:18483",
            "80/tcp -> [::]:18481",
            "80/tcp -> [fd00:b37:2a::1]:18482"
        ],
        "{ports}"
    );
    let bound = s.inspect("one")["NetworkSettings"]["Ports"]["80/tcp"].clone();
    assert_eq!(bound.as_array().map(Vec::len), Some(3), "{bound}");
    assert!(
        bound
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"HostIp": "::", "HostPort": "18481"})),
        "{bound}"
    );
    assert!(
        map_elements(&nft, "ports6_any").contains(&"tcp . 18481 => fd00:b37:2a::3 . 80".to_owned())
    );
    assert_eq!(
        map_elements(&nft, "ports6_ip"),
        vec!["fd00:b37:2a::1 . tcp . 18482 => fd00:b37:2a::3 . 80".to_owned()]
    );
    assert!(
        !map_elements(&nft, "ports_any")
            .iter()
            .any(|e| e.contains("18481")),
        "no IPv4 binding for [::]"
    );
    eventually_explained("the client to [addr]:18482", || {
        get_from(&s, "cli", "fd00:b37:2a::1", 18482)
    });
    eventually_explained("the client to [::]:18481", || {
        get_from(&s, "cli", "fd00:b37:2a::1", 18481)
    });
    eventually_explained("[::1]:18483", || curl("http://[::1]:18483/"));
    assert!(
        curl("http://127.0.0.1:18481/").is_err(),
        "[::] is IPv6 only"
    );

    // The journal against the kernel after a SIGKILL: a lost element comes back, a stray one
    // goes, and the ports are held again.
    let (ok, out) = host(&[
        "nft",
        "delete",
        "element",
        "inet",
        &nft,
        "ports6_any",
        "{ tcp . 18480 }",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = host(&[
        "nft",
        "add",
        "element",
        "inet",
        &nft,
        "ports6_any",
        "{ tcp . 18499 : fd00:b37:2a::99 . 80 }",
    ]);
    assert!(ok, "{out}");
    s.restart_network_service();
    let after = map_elements(&nft, "ports6_any");
    assert!(after.contains(&element), "{after:?}");
    assert!(!after.iter().any(|e| e.contains("18499")), "{after:?}");
    eventually_explained("the client after the restart", || {
        get_from(&s, "cli", "fd00:b37:2a::1", 18480)
    });
    eventually_explained("[::1]:18480 after the restart", || {
        curl("http://[::1]:18480/")
    });
    assert!(
        std::net::TcpListener::bind("[::]:18480").is_err(),
        "[::]:18480 is held again"
    );

    // A stop removes the elements and frees the ports; a start adds them again.
    s.docker(&["stop", "-t", "0", "srv"]);
    assert!(!map_elements(&nft, "ports6_any").contains(&element));
    assert!(std::net::TcpListener::bind("[::]:18480").is_ok());
    s.docker(&["start", "srv"]);
    let again = s.inspect("srv")["NetworkSettings"]["Networks"]["srv6"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_owned();
    let element = format!("tcp . 18480 => {again} . 80");
    assert!(
        map_elements(&nft, "ports6_any").contains(&element),
        "{:?}",
        map_elements(&nft, "ports6_any")
    );
    // Its IPv6 address came back with another MAC address (its IPv4 address, from which the
    // MAC comes, changed): the host's neighbour entry follows, or the host would keep sending
    // to the previous one (the address skips duplicate address detection).
    let ep = s.inspect("srv")["NetworkSettings"]["Networks"]["srv6"].clone();
    let mac = ep["MacAddress"].as_str().unwrap().to_owned();
    let net_id = s.inspect("srv6")["Id"].as_str().unwrap().to_owned();
    let bridge = format!("berth-{}", &net_id[..9]);
    let (_, neigh) = host(&["ip", "-6", "neigh", "show", &again, "dev", &bridge]);
    assert!(neigh.contains(&format!("lladdr {mac}")), "{neigh} ({ep})");
    eventually_explained("the client after a start", || {
        get_from(&s, "cli", "fd00:b37:2a::1", 18480)
    });

    // rm -f leaves nothing: no element, no held port.
    s.docker(&["rm", "-f", "srv", "one", "cli"]);
    assert_eq!(map_elements(&nft, "ports6_any"), Vec::<String>::new());
    assert_eq!(map_elements(&nft, "ports6_ip"), Vec::<String>::new());
    for port in [18480, 18481, 18482, 18483] {
        assert!(
            std::net::TcpListener::bind(("::", port)).is_ok(),
            "[::]:{port} is still held"
        );
    }
    for n in ["srv6", "cli6"] {
        s.docker(&["network", "rm", n]);
    }
}
