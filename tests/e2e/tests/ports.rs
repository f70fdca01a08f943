//! Published ports through the real docker CLI: `-p`, `-p ip:host:container`, `-p container`,
//! `-P`, ranges; reached on 127.0.0.1, from another "host" (a network namespace the test makes,
//! joined to the host by a veth pair), and from the container itself (hairpin); `docker port`,
//! `docker ps`, inspect; a port already taken fails the start with Docker's message; nothing
//! is left after `rm -f` (no map element, no socket holding the port). Traffic only goes to
//! loopback and to namespaces the test or the engine made.

use std::process::Command;

use berth_testutil::{BusyboxEngine, eventually_explained, text};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a host tool");
    let (o, e) = text(&out);
    (out.status.success(), format!("{o}{e}"))
}

/// A network namespace joined to the host by a veth pair: the "other host", at `peer`, that
/// reaches the host at `host`. Removed on drop.
struct OtherHost {
    ns: String,
    link: String,
    host: String,
}

impl OtherHost {
    fn new() -> OtherHost {
        let tag = std::process::id() % 10_000;
        let ns = format!("bt-ports-{tag}");
        let link = format!("btp{tag}h");
        let peer = format!("btp{tag}p");
        // 10.234.x.0/30 with x from the pid, so that parallel runs do not collide.
        let x = tag % 250;
        let host = format!("10.234.{x}.1");
        let other = format!("10.234.{x}.2");
        let o = OtherHost {
            ns: ns.clone(),
            link: link.clone(),
            host: host.clone(),
        };
        for cmd in [
            vec!["ip", "netns", "add", &ns],
            vec![
                "ip", "link", "add", &link, "type", "veth", "peer", "name", &peer, "netns", &ns,
            ],
            vec!["ip", "addr", "add", &format!("{host}/30"), "dev", &link],
            vec!["ip", "link", "set", &link, "up"],
            vec![
                "ip",
                "netns",
                "exec",
                &ns,
                "ip",
                "addr",
                "add",
                &format!("{other}/30"),
                "dev",
                &peer,
            ],
            vec!["ip", "netns", "exec", &ns, "ip", "link", "set", &peer, "up"],
            vec!["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"],
        ] {
            let (ok, out) = run(&cmd);
            assert!(ok, "{cmd:?}: {out}");
        }
        o
    }

    fn curl(&self, port: &str) -> (bool, String) {
        let url = format!("http://{}:{port}/", self.host);
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "curl",
            "-s",
            "--max-time",
            "3",
            &url,
        ])
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.link]);
        let _ = run(&["ip", "netns", "del", &self.ns]);
    }
}

fn curl(url: &str) -> (bool, String) {
    run(&["curl", "-gs", "--max-time", "3", url])
}

/// Retries until `f` answers `hello` (httpd takes a moment to listen).
fn answers(what: &str, f: impl Fn() -> (bool, String)) {
    eventually_explained(what, || match f() {
        (true, out) if out.trim() == "hello" => Ok(()),
        (_, out) => Err(out),
    });
}

/// The elements of a map of the engine's table (empty when it has none).
fn map_elements(table: &str, map: &str) -> String {
    let (_, text) = run(&["nft", "list", "map", "inet", table, map]);
    text.split_once("elements =")
        .map(|(_, e)| e.split('}').next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default()
}

const HTTPD: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn published_ports_forward_and_leave_nothing() {
    let s = BusyboxEngine::new();
    let nft = s.engine.nft_table();
    let other = OtherHost::new();

    s.docker(&[
        "run", "-d", "--name", "web", "-p", "18080:80", &s.image, "sh", "-c", HTTPD,
    ]);
    answers("127.0.0.1:18080", || curl("http://127.0.0.1:18080/"));
    answers("the other host", || other.curl("18080"));
    // Hairpin: the container reaches its own published port through the host.
    let gateway = s.inspect("web")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    // busybox's wget looks the service up through glibc's NSS and crashes: nc instead.
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gateway} 18080");
    answers("hairpin", || {
        let (code, out, err) = s.status(&["exec", "web", "sh", "-c", &get]);
        let body = out.lines().last().unwrap_or_default().to_owned();
        (
            code == 0,
            if body == "hello" {
                body
            } else {
                format!("{out}{err}")
            },
        )
    });

    // IPv6 clients through the service's proxy task, as dockerd 28 lists them.
    assert_eq!(
        s.docker(&["port", "web"]),
        "80/tcp -> 0.0.0.0:18080\n80/tcp -> [::]:18080"
    );
    answers("[::1]:18080", || curl("http://[::1]:18080/"));
    let ps = s.docker(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains("web 0.0.0.0:18080->80/tcp"), "{ps}");
    let c = s.inspect("web");
    assert_eq!(
        c["NetworkSettings"]["Ports"]["80/tcp"],
        serde_json::json!([{"HostIp": "0.0.0.0", "HostPort": "18080"},
                           {"HostIp": "::", "HostPort": "18080"}])
    );
    assert_eq!(
        c["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "18080"
    );
    assert!(map_elements(&nft, "ports_any").contains("tcp . 18080"));

    // Taken: the start fails with Docker's message, the first container keeps its port.
    let (_, err) = s.fails(&[
        "run", "-d", "--name", "web2", "-p", "18080:80", &s.image, "sleep", "100",
    ]);
    assert!(
        err.contains("Bind for 0.0.0.0:18080 failed: port is already allocated"),
        "{err}"
    );
    answers("127.0.0.1:18080 after the conflict", || {
        curl("http://127.0.0.1:18080/")
    });
    s.docker(&["rm", "-f", "web2"]);

    // Random host ports (-p 80, -P with an exposed port), a host address and a range.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "rnd",
        "-p",
        "80",
        "-P",
        "--expose",
        "81",
        "-p",
        "127.0.0.1:18090-18092:80",
        &s.image,
        "sh",
        "-c",
        HTTPD,
    ]);
    let ports = s.docker(&["port", "rnd"]);
    assert!(ports.contains("80/tcp -> 127.0.0.1:18090"), "{ports}");
    assert!(ports.contains("81/tcp -> 0.0.0.0:"), "{ports}");
    let random = s.docker(&["port", "rnd", "80"]);
    let random = random
        .lines()
        .find_map(|l| l.strip_prefix("0.0.0.0:"))
        .unwrap_or_else(|| panic!("{random}"))
        .to_owned();
    assert!(random.parse::<u16>().unwrap() >= 1024, "{random}");
    answers("the random port", || {
        curl(&format!("http://127.0.0.1:{random}/"))
    });
    answers("the range on 127.0.0.1", || curl("http://127.0.0.1:18090/"));
    assert!(map_elements(&nft, "ports_ip").contains("127.0.0.1 . tcp . 18090"));

    // The network service killed: the kernel keeps forwarding, and the restarted service
    // holds the ports again.
    s.restart_network_service();
    answers(
        "127.0.0.1:18080 after the network service restarted",
        || curl("http://127.0.0.1:18080/"),
    );
    eventually_explained(
        "18080 reserved again",
        || match std::net::TcpListener::bind("0.0.0.0:18080") {
            Ok(_) => Err("18080 is free".to_owned()),
            Err(_) => Ok(()),
        },
    );

    // A stop releases the ports; a start takes them again.
    s.docker(&["stop", "-t", "0", "web"]);
    assert!(std::net::TcpListener::bind("[::]:18080").is_ok());
    assert_eq!(s.docker(&["port", "web"]), "");
    s.docker(&["start", "web"]);
    answers("127.0.0.1:18080 after a restart", || {
        curl("http://127.0.0.1:18080/")
    });

    s.docker(&["rm", "-f", "web", "rnd"]);
    assert_eq!(map_elements(&nft, "ports_any"), "");
    assert_eq!(map_elements(&nft, "ports_ip"), "");
    for port in [18080, 18090, random.parse().unwrap()] {
        assert!(
            std::net::TcpListener::bind(("::", port)).is_ok(),
            "port {port} is still held"
        );
    }
    let (ok, _) = curl("http://127.0.0.1:18080/");
    assert!(!ok, "18080 still answers");
}
