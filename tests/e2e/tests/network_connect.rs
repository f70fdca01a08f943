//! `docker network connect` and `disconnect` through the real docker CLI: hot on a running
//! container (a second interface, `--alias`, `--ip`, DNS answers, /etc/hosts, events), recorded
//! on created and stopped ones for their next start; fixed addresses (`--ip`,
//! `--mac-address`) and dockerd's refusals; addresses never handed out twice across a restart
//! of the network service; `--internal` networks with no way out; `docker rename` in DNS;
//! `--network container:<id>`. Traffic only goes to namespaces the engine made and loopback.

use std::process::Command;

use berth_testutil::{BusyboxEngine, eventually, eventually_explained, unix_now};

fn ip_of(s: &BusyboxEngine, name: &str, network: &str) -> String {
    s.inspect(name)["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The links enslaved to `bridge` on the host.
fn ports_of(bridge: &str) -> usize {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn bridge_of(s: &BusyboxEngine, network: &str) -> String {
    let id = s.inspect(network)["Id"].as_str().unwrap().to_owned();
    format!("berth-{}", &id[..9])
}

/// What `nslookup name` in `from` prints (None: not resolved).
fn lookup(s: &BusyboxEngine, from: &str, name: &str) -> Option<String> {
    let (code, out, _) = s.status(&["exec", from, "nslookup", name, "127.0.0.11"]);
    (code == 0).then_some(out)
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let s = BusyboxEngine::new();
    let start = unix_now();
    s.docker(&["network", "create", "--subnet", "10.245.0.0/24", "cn1"]);
    s.docker(&["network", "create", "--subnet", "10.246.0.0/24", "cn2"]);
    s.sleeper("c1", &["--network", "cn1"]);
    s.sleeper("c2", &["--network", "cn2", "--hostname", "c2host"]);
    let c1_id = s.inspect("c1")["Id"].as_str().unwrap().to_owned();
    let ip2 = ip_of(&s, "c2", "cn2");
    assert!(lookup(&s, "c2", "c1").is_none(), "c1 is not on cn2 yet");

    // Hot: eth1 with the fixed address, the alias, DNS, /etc/hosts.
    s.docker(&[
        "network",
        "connect",
        "--alias",
        "web",
        "--ip",
        "10.246.0.50",
        "cn2",
        "c1",
    ]);
    let c1 = s.inspect("c1");
    let ep = &c1["NetworkSettings"]["Networks"]["cn2"];
    assert_eq!(ep["IPAddress"], "10.246.0.50", "{ep}");
    assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.246.0.50", "{ep}");
    assert_eq!(ep["Aliases"], serde_json::json!(["web"]));
    assert_eq!(ep["NetworkID"], s.inspect("cn2")["Id"]);
    assert!(
        c1["NetworkSettings"]["Networks"]["cn1"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.245.0."),
        "{c1}"
    );
    let addr = s.docker(&["exec", "c1", "ip", "addr", "show", "eth1"]);
    assert!(addr.contains("inet 10.246.0.50/24"), "{addr}");
    let hosts = s.docker(&["exec", "c1", "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.246.0.50\t"), "{hosts}");
    for name in ["c1", "web", "c1.cn2"] {
        let out = lookup(&s, "c2", name).unwrap_or_default();
        assert!(out.contains("10.246.0.50"), "{name}: {out}");
    }
    // Its hostname is one of its names (dockerd's DNSNames).
    for name in ["c2", "c2host"] {
        let out = lookup(&s, "c1", name).unwrap_or_default();
        assert!(out.contains(&ip2), "{name}: {out}");
    }
    let names = s.inspect("c2")["NetworkSettings"]["Networks"]["cn2"]["DNSNames"].clone();
    assert_eq!(
        names[names.as_array().unwrap().len() - 1],
        "c2host",
        "{names}"
    );
    s.docker(&["exec", "c1", "ping", "-c1", "-W2", &ip2]);
    let cn2 = s.inspect("cn2");
    assert_eq!(cn2["Containers"].as_object().unwrap().len(), 2, "{cn2}");
    assert_eq!(ports_of(&bridge_of(&s, "cn2")), 2);

    // dockerd's refusals.
    let (_, err) = s.fails(&["network", "connect", "cn2", "c1"]);
    assert!(
        err.contains("endpoint with name c1 already exists in network cn2"),
        "{err}"
    );
    let (_, err) = s.fails(&["network", "connect", "host", "c1"]);
    assert!(
        err.contains("container must be created in host network mode"),
        "{err}"
    );
    let (_, err) = s.fails(&["network", "connect", "nosuch", "c1"]);
    assert!(err.contains("network nosuch not found"), "{err}");
    let (_, err) = s.fails(&["network", "connect", "cn2", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let (_, err) = s.fails(&["network", "connect", "--ip", "10.246.0.50", "cn2", "c2"]);
    assert!(err.contains("already exists"), "{err}");
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "cn2",
        "--ip",
        "10.246.0.50",
        &s.image,
        "true",
    ]);
    assert!(err.contains("Address already in use"), "{err}");

    // Disconnect: the interface, the names and the hosts line go.
    s.docker(&["network", "disconnect", "cn2", "c1"]);
    let (code, out, _) = s.status(&["exec", "c1", "ip", "addr", "show", "eth1"]);
    assert_ne!(code, 0, "{out}");
    assert!(lookup(&s, "c2", "c1").is_none(), "c1 still resolves on cn2");
    assert!(
        lookup(&s, "c2", "web").is_none(),
        "web still resolves on cn2"
    );
    let hosts = s.docker(&["exec", "c1", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("10.246.0.50"), "{hosts}");
    assert!(s.inspect("c1")["NetworkSettings"]["Networks"]["cn2"].is_null());
    assert_eq!(ports_of(&bridge_of(&s, "cn2")), 1);
    let (_, err) = s.fails(&["network", "disconnect", "cn2", "c1"]);
    assert!(err.contains("is not connected to network cn2"), "{err}");
    // The address is free again.
    s.docker(&[
        "run",
        "--rm",
        "--network",
        "cn2",
        "--ip",
        "10.246.0.50",
        &s.image,
        "true",
    ]);

    // A container on the default bridge gets the embedded DNS server with its first
    // user-defined network.
    s.sleeper("b1", &[]);
    s.docker(&["network", "connect", "cn2", "b1"]);
    let resolv = s.docker(&["exec", "b1", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    let out = lookup(&s, "b1", "c2").unwrap_or_default();
    assert!(out.contains(&ip2), "{out}");
    // Its default route leaves with the bridge for the network left.
    s.docker(&["network", "disconnect", "bridge", "b1"]);
    let route = s.docker(&["exec", "b1", "ip", "route"]);
    assert!(route.contains("default via 10.246.0.1"), "{route}");
    s.docker(&["exec", "b1", "ping", "-c1", "-W2", &ip2]);

    let events = format!("connect cn2 {c1_id}");
    eventually("the connect and disconnect events", || {
        let out = s.docker(&[
            "events",
            "--since",
            &start.to_string(),
            "--until",
            &(unix_now() + 1).to_string(),
            "--filter",
            "type=network",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}} {{.Actor.Attributes.type}}",
        ]);
        (out.contains(&format!("{events} bridge"))
            && out.contains(&format!("disconnect cn2 {c1_id} bridge")))
        .then_some(())
    });

    s.docker(&["rm", "-f", "c1", "c2", "b1"]);
    assert_eq!(ports_of(&bridge_of(&s, "cn2")), 0);
    s.docker(&["network", "rm", "cn1", "cn2"]);
}

#[test]
fn fixed_addresses_and_their_refusals() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "--subnet", "10.248.0.0/24", "fx"]);
    s.docker(&["network", "create", "picked"]);
    s.sleeper(
        "f1",
        &[
            "--network",
            "fx",
            "--ip",
            "10.248.0.77",
            "--mac-address",
            "02:42:aa:bb:cc:dd",
        ],
    );
    let f1 = s.inspect("f1");
    let ep = &f1["NetworkSettings"]["Networks"]["fx"];
    assert_eq!(ep["IPAddress"], "10.248.0.77");
    assert_eq!(ep["MacAddress"], "02:42:aa:bb:cc:dd");
    let mac = s.docker(&["exec", "f1", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(mac, "02:42:aa:bb:cc:dd");
    // A fixed address is kept across a restart.
    s.docker(&["restart", "-t", "0", "f1"]);
    assert_eq!(ip_of(&s, "f1", "fx"), "10.248.0.77");

    for (args, want) in [
        (
            vec!["--ip", "10.248.0.9"],
            "user specified IP address is supported on user defined networks only",
        ),
        (
            vec!["--network", "picked", "--ip", "10.248.0.9"],
            "user specified IP address is supported only when connecting to networks with user configured subnets",
        ),
        (
            vec!["--network", "fx", "--ip", "10.9.9.9"],
            "no configured subnet contains IP address 10.9.9.9",
        ),
        (
            vec!["--network", "fx", "--ip6", "fd00::9"],
            "network fx does not have IPv6 enabled (--ipv6)",
        ),
        (
            vec!["--network", "fx", "--ip", "10.248.0.1"],
            "Address already in use",
        ),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend_from_slice(&args);
        cmd.extend_from_slice(&[&s.image, "true"]);
        let (_, err) = s.fails(&cmd);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    s.docker(&["rm", "-f", "f1"]);
    s.docker(&["network", "rm", "fx", "picked"]);
}

#[test]
fn created_and_stopped_containers_keep_their_connections() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "--subnet", "10.249.0.0/24", "kn1"]);
    s.docker(&["network", "create", "--subnet", "10.250.0.0/24", "kn2"]);
    // docker-compose 1.29: created, then every network disconnected and connected again.
    s.docker(&[
        "create",
        "--name",
        "k1",
        "--network",
        "kn1",
        &s.image,
        "sleep",
        "1000",
    ]);
    let k1 = s.inspect("k1");
    assert!(k1["NetworkSettings"]["Networks"]["kn1"].is_object(), "{k1}");
    s.docker(&["network", "disconnect", "kn1", "k1"]);
    assert!(s.inspect("k1")["NetworkSettings"]["Networks"]["kn1"].is_null());
    let (_, err) = s.fails(&["network", "disconnect", "kn1", "k1"]);
    assert!(err.contains("is not connected to the network kn1"), "{err}");
    s.docker(&["network", "connect", "--alias", "alpha", "kn1", "k1"]);
    s.docker(&["network", "connect", "--ip", "10.250.0.60", "kn2", "k1"]);
    // Again on a created container: dockerd keeps the first settings.
    s.docker(&["network", "connect", "kn2", "k1"]);
    let nets = s.inspect("k1")["NetworkSettings"]["Networks"].clone();
    assert_eq!(nets["kn1"]["IPAddress"], "", "{nets}");
    assert_eq!(nets["kn1"]["Aliases"], serde_json::json!(["alpha"]));
    assert_eq!(nets["kn2"]["IPAMConfig"]["IPv4Address"], "10.250.0.60");
    s.docker(&["start", "k1"]);
    assert!(ip_of(&s, "k1", "kn1").starts_with("10.249.0."));
    assert_eq!(ip_of(&s, "k1", "kn2"), "10.250.0.60");
    let addr = s.docker(&["exec", "k1", "ip", "addr"]);
    assert!(
        addr.contains("eth1") && addr.contains("10.250.0.60"),
        "{addr}"
    );
    s.sleeper("k2", &["--network", "kn1"]);
    let out = lookup(&s, "k2", "alpha").unwrap_or_default();
    assert!(out.contains(&ip_of(&s, "k1", "kn1")), "{out}");

    // Stopped: disconnected from kn2 for its next start.
    s.docker(&["stop", "-t", "0", "k1"]);
    s.docker(&["network", "disconnect", "kn2", "k1"]);
    s.docker(&["start", "k1"]);
    let nets = s.inspect("k1")["NetworkSettings"]["Networks"].clone();
    assert!(nets["kn2"].is_null(), "{nets}");
    let (code, _, _) = s.status(&["exec", "k1", "ip", "addr", "show", "eth1"]);
    assert_ne!(code, 0, "eth1 remains");

    // Addresses stay unique across a restart of the network service (connected endpoints).
    s.docker(&["network", "connect", "kn2", "k2"]);
    s.engine.kill_and_await_restart("berth-network");
    eventually_explained("the network service answers again", || {
        let (code, out, err) = s.status(&["network", "inspect", "kn2"]);
        if code == 0 {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });
    s.sleeper("k3", &["--network", "kn2"]);
    s.docker(&["network", "connect", "kn1", "k3"]);
    let taken = [
        ip_of(&s, "k2", "kn2"),
        ip_of(&s, "k1", "kn1"),
        ip_of(&s, "k2", "kn1"),
    ];
    let (k3a, k3b) = (ip_of(&s, "k3", "kn2"), ip_of(&s, "k3", "kn1"));
    assert!(
        !taken.contains(&k3a) && !taken.contains(&k3b),
        "{taken:?} {k3a} {k3b}"
    );
    let out = lookup(&s, "k3", "k2").unwrap_or_default();
    assert!(out.contains(&taken[0]), "{out}");

    // docker rename: DNS answers the new name, no longer the old one.
    s.docker(&["rename", "k2", "k2new"]);
    let out = lookup(&s, "k3", "k2new").unwrap_or_default();
    assert!(out.contains(&taken[0]), "{out}");
    assert!(
        lookup(&s, "k3", "k2").is_none(),
        "the old name still resolves"
    );

    // docker run with two --network flags: both, the first one's first.
    s.sleeper("k4", &["--network", "kn2", "--network", "kn1"]);
    let addr = s.docker(&["exec", "k4", "ip", "addr"]);
    let (a, b) = (ip_of(&s, "k4", "kn2"), ip_of(&s, "k4", "kn1"));
    assert!(
        a.starts_with("10.250.0.") && b.starts_with("10.249.0."),
        "{a} {b}"
    );
    assert!(
        addr.contains(&format!("inet {a}/24")) && addr.contains(&format!("inet {b}/24")),
        "{addr}"
    );
    let eth0 = s.docker(&["exec", "k4", "ip", "addr", "show", "eth0"]);
    assert!(eth0.contains(&a), "{eth0}");
    // A container on none joins no other network.
    s.docker(&[
        "create",
        "--name",
        "k5",
        "--network",
        "none",
        &s.image,
        "true",
    ]);
    let (_, err) = s.fails(&["network", "connect", "kn1", "k5"]);
    assert!(
        err.contains("one of the networks in private (none) mode"),
        "{err}"
    );

    s.docker(&["rm", "-f", "k1", "k2new", "k3", "k4", "k5"]);
    s.docker(&["network", "rm", "kn1", "kn2"]);
}

#[test]
fn forced_disconnect_forgets_a_removed_network_and_endpoint_options_by_api_version() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "--subnet", "10.247.0.0/24", "gone"]);
    s.docker(&["create", "--name", "f1", &s.image, "sleep", "1000"]);
    s.docker(&["network", "connect", "gone", "f1"]);
    // A stopped container holds no endpoint: the network can be removed under it.
    s.docker(&["network", "rm", "gone"]);
    let (_, err) = s.fails(&["network", "disconnect", "gone", "f1"]);
    assert!(err.contains("network gone not found"), "{err}");
    s.docker(&["network", "disconnect", "--force", "gone", "f1"]);
    let nets = s.inspect("f1")["NetworkSettings"]["Networks"].clone();
    assert!(nets.get("gone").is_none(), "{nets}");
    s.docker(&["start", "f1"]);
    // Neither a container nor an endpoint by that name: dockerd's error.
    let (_, err) = s.fails(&["network", "disconnect", "--force", "bridge", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // Driver options the bridge driver does not know are refused by name, never dropped.
    s.docker(&["network", "create", "opts"]);
    let (_, err) = s.fails(&[
        "network",
        "connect",
        "--driver-opt",
        "com.example=1",
        "opts",
        "f1",
    ]);
    assert!(
        err.contains("--driver-opt com.example is not supported by Berth"),
        "{err}"
    );
    // --gw-priority (API 1.48) through the API as a client sends it; before 1.48 a create
    // resets it, as dockerd's router does.
    let script = r#"
import sys, docker
c = docker.APIClient(base_url=sys.argv[1], version="1.48")
r = c._post_json(c._url("/networks/{0}/connect", "opts"),
                 data={"Container": "f1", "EndpointConfig": {"GwPriority": 5}})
assert r.status_code == 200, r.text
ep = c.inspect_container("f1")["NetworkSettings"]["Networks"]["opts"]
assert ep["GwPriority"] == 5, ep
for version, want in (("1.48", 7), ("1.47", 0)):
    c = docker.APIClient(base_url=sys.argv[1], version=version)
    body = {"Image": sys.argv[2], "Cmd": ["true"], "HostConfig": {"NetworkMode": "opts"},
            "NetworkingConfig": {"EndpointsConfig": {"opts": {"GwPriority": 7}}}}
    r = c._post_json(c._url("/containers/create"), data=body)
    assert r.status_code == 201, r.text
    cid = r.json()["Id"]
    ep = c.inspect_container(cid)["NetworkSettings"]["Networks"]["opts"]
    assert ep["GwPriority"] == want, (version, ep)
    c.remove_container(cid)
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success() && o.contains("ok"), "{o}{e}");
    s.docker(&["rm", "-f", "f1"]);
    s.docker(&["network", "rm", "opts"]);
}

/// An endpoint the network service holds for a container the runtime does not know (a
/// stale one, as after a crash between the two services): it keeps `docker network rm` from
/// removing the network (dockerd's error), until `docker network disconnect
/// --force` removes it by the container's name; then the network and its bridge go.
#[test]
fn a_stale_endpoint_blocks_network_rm_until_a_forced_disconnect() {
    use berth_proto::network::v1 as netpb;
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "stale"]);
    let id = s.inspect("stale")["Id"].as_str().unwrap().to_owned();
    let bridge = format!("berth-{}", &id[..9]);
    // A running container lends its netns; the endpoint is made for a container ID nobody
    // has, directly through the network service.
    s.docker(&["run", "-d", "--name", "host1", &s.image, "sleep", "1000"]);
    let netns = s.inspect("host1")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let socket = s.engine.run_root.join("network.sock");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let address: berth_config::ServiceAddress =
            format!("unix://{}", socket.display()).parse().unwrap();
        let ch = berth_service::channel(&address, None).unwrap();
        let mut net = netpb::network_client::NetworkClient::new(ch);
        net.attach(netpb::AttachRequest {
            container_id: "f".repeat(64),
            container_name: "ghost".to_owned(),
            netns_path: netns.clone(),
            endpoints: vec![netpb::EndpointRequest {
                network: "stale".to_owned(),
                // Beside host1's own eth0.
                driver_opts: [(
                    "com.docker.network.endpoint.ifname".to_owned(),
                    "ghost0".to_owned(),
                )]
                .into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("attach");
    });
    let (_, err) = s.fails(&["network", "rm", "stale"]);
    assert!(err.contains("has active endpoints"), "{err}");
    s.docker(&["network", "disconnect", "--force", "stale", "ghost"]);
    let members = s.inspect("stale")["Containers"].clone();
    assert!(
        members.as_object().is_none_or(|m| m.is_empty()),
        "{members}"
    );
    s.docker(&["network", "rm", "stale"]);
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip");
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&bridge),
        "the bridge {bridge} is gone"
    );
    let inside = s.docker(&["exec", "host1", "ip", "-o", "link", "show"]);
    assert!(!inside.contains("ghost0"), "the veth went too: {inside}");
    s.docker(&["rm", "-f", "host1"]);
}
