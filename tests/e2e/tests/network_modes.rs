//! `--internal` networks have no way out (no route, no forwarding, no host address but their
//! own gateway, no DNS forwarding from the host), `--network container:<id>` shares another
//! container's netns, and a docker-compose-style flow through docker-py 7.1 (networks
//! disconnected and connected again on created containers before their start). Traffic only
//! goes to namespaces the engine made and loopback.

use std::{net::UdpSocket, process::Command};

use berth_testutil::{BusyboxEngine, eventually_explained};

fn ip_of(s: &BusyboxEngine, name: &str, network: &str) -> String {
    s.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A DNS server on `addr` answering every A query with 10.9.8.7.
fn fake_upstream(addr: &str) {
    let sock = UdpSocket::bind(addr).expect("bind the fake upstream");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Some(end) = buf
                .get(12..n)
                .and_then(|q| q.iter().position(|b| *b == 0))
                .map(|p| 12 + p + 5)
            else {
                continue;
            };
            let qtype = u16::from_be_bytes([buf[end - 4], buf[end - 3]]);
            let mut out = buf[..end].to_vec();
            out[2] = 0x81;
            out[3] = 0x80;
            out[6..8].copy_from_slice(&u16::from(qtype == 1).to_be_bytes());
            out[8..12].fill(0);
            if qtype == 1 {
                out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 8, 7]);
            }
            let _ = sock.send_to(&out, from);
        }
    });
}

#[test]
fn internal_networks_have_no_way_out() {
    let s = BusyboxEngine::new();
    s.docker(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.251.0.0/24",
        "inet",
    ]);
    s.docker(&["network", "create", "--subnet", "10.253.0.0/24", "outnet"]);
    let upstream = format!("127.0.1.{}", 10 + std::process::id() % 200);
    fake_upstream(&format!("{upstream}:53"));
    s.sleeper(
        "i1",
        &[
            "--network",
            "inet",
            "--cap-add",
            "NET_ADMIN",
            "--dns",
            &upstream,
        ],
    );
    s.sleeper("i2", &["--network", "inet"]);
    s.sleeper("d1", &[]);
    let host_addr = s.inspect("bridge")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    let d1 = ip_of(&s, "d1", "bridge");

    // The peer and the network's own gateway answer; there is no default route.
    s.docker(&["exec", "i1", "ping", "-c1", "-W2", &ip_of(&s, "i2", "inet")]);
    s.docker(&["exec", "i1", "ping", "-c1", "-W2", "10.251.0.1"]);
    let route = s.docker(&["exec", "i1", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");
    // Even with a default route the container adds itself: no other host address, no other
    // network.
    s.docker(&[
        "exec",
        "i1",
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.251.0.1",
    ]);
    for target in [&host_addr, &d1] {
        let (code, out, _) = s.status(&["exec", "i1", "ping", "-c1", "-W1", target]);
        assert_ne!(code, 0, "{target} answered an internal container: {out}");
    }
    // Its resolver forwards nothing from the host's namespace...
    let (code, out, _) = s.status(&["exec", "i1", "nslookup", "far.example.test", "127.0.0.11"]);
    assert!(code != 0 || !out.contains("10.9.8.7"), "{out}");
    // ...until the container is on a network with a way out.
    s.docker(&["network", "connect", "outnet", "i1"]);
    eventually_explained("forwarding once connected to outnet", || {
        let (code, out, err) =
            s.status(&["exec", "i1", "nslookup", "far.example.test", "127.0.0.11"]);
        if code == 0 && out.contains("10.9.8.7") {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });

    s.docker(&["rm", "-f", "i1", "i2", "d1"]);
    s.docker(&["network", "rm", "inet", "outnet"]);
}

#[test]
fn container_network_mode_shares_the_netns() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "--subnet", "10.254.0.0/24", "cmnet"]);
    s.sleeper("web", &["--network", "cmnet"]);
    let ip = ip_of(&s, "web", "cmnet");
    let out = s.docker(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        &s.image,
        "sh",
        "-c",
        "ip addr; cat /etc/resolv.conf",
    ]);
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    let side = s.docker(&[
        "create",
        "--name",
        "side",
        "--network",
        "container:web",
        &s.image,
        "sleep",
        "1000",
    ]);
    assert_eq!(side.len(), 64);
    let c = s.inspect("side");
    assert_eq!(c["HostConfig"]["NetworkMode"], "container:web");
    assert_eq!(c["NetworkSettings"]["Networks"], serde_json::json!({}));
    let (_, err) = s.fails(&["network", "connect", "cmnet", "side"]);
    assert!(
        err.contains("container sharing network namespace with another container or host"),
        "{err}"
    );

    for (flags, want) in [
        (
            vec!["--hostname", "h"],
            "conflicting options: hostname and the network mode",
        ),
        (
            vec!["-p", "8080:80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            vec!["--dns", "10.0.0.1"],
            "conflicting options: dns and the network mode",
        ),
        (
            vec!["--add-host", "a:1.2.3.4"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--network", "container:web"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(&[&s.image, "true"]);
        let (_, err) = s.fails(&args);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    s.docker(&["stop", "-t", "0", "web"]);
    let (_, err) = s.fails(&["start", "side"]);
    assert!(
        err.contains("cannot join network of a non running container"),
        "{err}"
    );
    s.docker(&["rm", "-f", "web", "side"]);
    s.docker(&["network", "rm", "cmnet"]);
}

#[test]
fn docker_py_compose_flow() {
    let s = BusyboxEngine::new();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
api = c.api
image = sys.argv[2]
pool = docker.types.IPAMPool(subnet="10.252.0.0/24")
net = c.networks.create("pynet", driver="bridge", ipam=docker.types.IPAMConfig(pool_configs=[pool]))
ids = []
for name, aliases, ip in [("pya", ["alpha"], None), ("pyb", ["beta"], "10.252.0.40")]:
    nc = api.create_networking_config({"pynet": api.create_endpoint_config(aliases=aliases)})
    ct = api.create_container(image, ["sleep", "1000"], name=name, networking_config=nc,
                              host_config=api.create_host_config(network_mode="pynet"))
    assert "pynet" in api.inspect_container(ct["Id"])["NetworkSettings"]["Networks"]
    # docker-compose 1.29: every network disconnected and connected again, then the start.
    api.disconnect_container_from_network(ct["Id"], "pynet")
    api.connect_container_to_network(ct["Id"], "pynet", aliases=aliases, ipv4_address=ip)
    api.start(ct["Id"])
    ids.append(ct["Id"])
b = api.inspect_container(ids[1])["NetworkSettings"]["Networks"]["pynet"]
assert b["IPAddress"] == "10.252.0.40", b
def run(cid, *cmd):
    ex = api.exec_create(cid, list(cmd))
    out = api.exec_start(ex)
    return api.exec_inspect(ex["Id"])["ExitCode"], out
code, out = run(ids[0], "nslookup", "beta", "127.0.0.11")
assert code == 0 and b"10.252.0.40" in out, out
a_ip = api.inspect_container(ids[0])["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
code, out = run(ids[1], "nslookup", "alpha", "127.0.0.11")
assert code == 0 and a_ip.encode() in out, out
net.reload()
assert len(net.attrs["Containers"]) == 2, net.attrs
net.disconnect(ids[1])
code, out = run(ids[0], "nslookup", "beta", "127.0.0.11")
assert code != 0, out
for cid in ids:
    api.remove_container(cid, force=True)
net.remove()
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}
