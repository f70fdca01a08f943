//! Networks through the real docker CLI: the default bridge gives `docker run` an address,
//! containers reach each other and the host's bridge address, user-defined networks are made,
//! listed, inspected, isolated and removed, and nothing is left behind (links, netns files,
//! nftables elements, the bridge and the table once the engine stops). Traffic only goes to
//! namespaces the engine made.

use std::process::Command;

use berth_testutil::{BusyboxEngine, EngineOptions, eventually, text, unix_now};

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a host tool");
    text(&out).0
}

/// The links enslaved to `bridge` on the host.
fn ports_of(bridge: &str) -> Vec<String> {
    sh(&["ip", "-o", "link", "show", "master", bridge])
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_owned()))
        .collect()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn table(table: &str) -> String {
    sh(&["nft", "list", "table", "inet", table])
}

/// The elements of the `endpoints` set of the engine's table.
fn endpoint_elements(t: &str) -> String {
    let text = table(t);
    let Some(start) = text.find("set endpoints") else {
        return String::new();
    };
    let rest = &text[start..];
    let end = rest.find('}').unwrap_or(rest.len());
    rest[..end]
        .split_once("elements =")
        .map(|(_, e)| e.trim().to_owned())
        .unwrap_or_default()
}

fn ip_of(s: &BusyboxEngine, name: &str, network: &str) -> String {
    let c = s.inspect(name);
    c["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_default_bridge_works_and_leaves_nothing() {
    let s = BusyboxEngine::new();
    let bridge = s.engine.bridge.clone();
    let nft = s.engine.nft_table();
    assert!(link_exists(&bridge), "the default bridge {bridge} exists");

    let net = s.inspect("bridge");
    assert_eq!(net["Driver"], "bridge");
    let subnet = net["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateway = net["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix: String = subnet.split('.').take(2).collect::<Vec<_>>().join(".");

    // docker run: eth0 with an address in the bridge's subnet, no warning.
    let (code, out, err) = s.status(&["run", "--rm", &s.image, "ip", "addr"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("eth0"), "{out}");
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(!err.contains("WARNING"), "{err}");
    let route = s.docker(&["run", "--rm", &s.image, "ip", "route"]);
    assert!(route.contains(&format!("default via {gateway}")), "{route}");

    // Two containers reach each other and the host's bridge address.
    s.docker(&["run", "-d", "--name", "ca", &s.image, "sleep", "1000"]);
    s.docker(&["run", "-d", "--name", "cb", &s.image, "sleep", "1000"]);
    let ip_b = ip_of(&s, "cb", "bridge");
    assert!(ip_b.starts_with(&format!("{prefix}.")), "{ip_b}");
    s.docker(&["exec", "ca", "ping", "-c1", "-W2", &ip_b]);
    s.docker(&["exec", "cb", "ping", "-c1", "-W2", &gateway]);

    // Inspect shows the endpoint as dockerd does.
    let a = s.inspect("ca");
    let ns = &a["NetworkSettings"];
    let ep = &ns["Networks"]["bridge"];
    assert_eq!(ep["Gateway"], gateway.as_str());
    assert_eq!(ep["NetworkID"], net["Id"]);
    assert_eq!(ep["EndpointID"].as_str().unwrap().len(), 64);
    assert_eq!(
        ep["IPPrefixLen"],
        subnet.split('/').nth(1).unwrap().parse::<u64>().unwrap()
    );
    let ip_a = ep["IPAddress"].as_str().unwrap().to_owned();
    let octets: Vec<u8> = ip_a.split('.').map(|o| o.parse().unwrap()).collect();
    assert_eq!(
        ep["MacAddress"],
        format!(
            "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3]
        )
    );
    assert_eq!(ns["IPAddress"], ip_a.as_str());
    assert_eq!(ns["Gateway"], gateway.as_str());
    let sandbox = ns["SandboxKey"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&sandbox).exists(), "{sandbox}");
    let hosts = s.docker(&["exec", "ca", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&ip_a), "{hosts}");
    assert_eq!(ports_of(&bridge).len(), 2);
    let elements = endpoint_elements(&nft);
    assert!(
        elements.contains(&ip_a) && elements.contains(&ip_b),
        "{elements}"
    );
    let ps = s.docker(&["ps", "--format", "{{.Names}} {{.Networks}}"]);
    assert!(ps.contains("ca bridge"), "{ps}");

    // A stop releases the endpoint; a start gets one again.
    s.docker(&["stop", "-t", "0", "cb"]);
    assert!(endpoint_elements(&nft).find(&ip_b).is_none());
    assert_eq!(ip_of(&s, "cb", "bridge"), "");
    s.docker(&["start", "cb"]);
    let ip_b = ip_of(&s, "cb", "bridge");
    s.docker(&["exec", "ca", "ping", "-c1", "-W2", &ip_b]);

    // docker info stays clean.
    let (code, _, err) = s.status(&["info"]);
    assert_eq!(code, 0);
    assert!(!err.contains("WARNING"), "{err}");

    s.docker(&["rm", "-f", "ca", "cb"]);
    assert!(
        !std::path::Path::new(&sandbox).exists(),
        "{sandbox} remains"
    );
    assert!(ports_of(&bridge).is_empty(), "{:?}", ports_of(&bridge));
    assert_eq!(endpoint_elements(&nft), "");
    assert!(
        std::fs::read_dir(s.engine.run_root.join("netns"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    let mut s = s;
    assert!(s.engine.stop(), "the engine stops");
    assert!(
        !link_exists(&bridge),
        "{bridge} remains after the engine stopped"
    );
    assert!(
        !sh(&["nft", "list", "tables"]).contains(&nft),
        "the table {nft} remains"
    );
}

#[test]
fn user_networks_round_trip_and_are_isolated() {
    let s = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            config: Some(serde_json::json!({"bip": "10.231.0.1/24"})),
            ..Default::default()
        },
    );
    let start = unix_now();
    let nft = s.engine.nft_table();
    let id = s.docker(&[
        "network",
        "create",
        "--subnet",
        "10.232.0.0/24",
        "--gateway",
        "10.232.0.254",
        "--label",
        "k=v",
        "mynet",
    ]);
    assert_eq!(id.len(), 64, "{id}");
    let (_, err) = s.fails(&["network", "create", "mynet"]);
    assert!(
        err.contains("network with name mynet already exists"),
        "{err}"
    );

    let ls = s.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    for want in [
        "bridge bridge local",
        "host host local",
        "none null local",
        "mynet bridge local",
    ] {
        assert!(ls.contains(want), "{want}: {ls}");
    }
    let custom = s.docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "type=custom",
        "--no-trunc",
    ]);
    assert_eq!(custom, id);
    let by_label = s.docker(&[
        "network",
        "ls",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(by_label, "mynet");

    let n = s.inspect("mynet");
    assert_eq!(n["Id"], id.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], "10.232.0.0/24");
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], "10.232.0.254");
    assert_eq!(n["Labels"]["k"], "v");
    let bridge = s.docker(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
        "bridge",
    ]);
    assert_eq!(bridge, s.engine.bridge);
    let default = s.inspect("bridge");
    assert_eq!(default["IPAM"]["Config"][0]["Subnet"], "10.231.0.0/24");

    // Two containers on mynet reach each other; one on the default bridge cannot reach them.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "m1",
        "--network",
        "mynet",
        &s.image,
        "sleep",
        "1000",
    ]);
    s.docker(&[
        "run",
        "-d",
        "--name",
        "m2",
        "--network",
        &id[..12],
        &s.image,
        "sleep",
        "1000",
    ]);
    s.docker(&["run", "-d", "--name", "d1", &s.image, "sleep", "1000"]);
    let m2 = ip_of(&s, "m2", "mynet");
    assert!(m2.starts_with("10.232.0."), "{m2}");
    assert_eq!(s.inspect("m2")["HostConfig"]["NetworkMode"], "mynet");
    s.docker(&["exec", "m1", "ping", "-c1", "-W2", &m2]);
    s.docker(&["exec", "m1", "ping", "-c1", "-W2", "10.232.0.254"]);
    let (code, _, _) = s.status(&["exec", "d1", "ping", "-c1", "-W2", &m2]);
    assert_ne!(code, 0, "the default bridge reached a container on mynet");
    let inspect = s.inspect("mynet");
    assert_eq!(inspect["Containers"].as_object().unwrap().len(), 2);
    let mybridge = format!("berth-{}", &id[..9]);
    assert_eq!(ports_of(&mybridge).len(), 2);

    // In use: not removed.
    let (_, err) = s.fails(&["network", "rm", "mynet"]);
    assert!(err.contains("has active endpoints"), "{err}");
    let (_, err) = s.fails(&["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined network"), "{err}");
    let (_, err) = s.fails(&["run", "--rm", "--network", "nosuch", &s.image, "true"]);
    assert!(err.contains("network nosuch not found"), "{err}");

    s.docker(&["rm", "-f", "m1", "m2", "d1"]);
    assert!(ports_of(&mybridge).is_empty());
    s.docker(&["network", "rm", "mynet"]);
    assert!(!link_exists(&mybridge), "{mybridge} remains");
    assert!(!table(&nft).contains("10.232.0.0/24"), "{}", table(&nft));
    let (_, err) = s.fails(&["network", "inspect", "mynet"]);
    assert!(err.contains("network mynet not found"), "{err}");

    // Prune removes unused user networks only.
    s.docker(&["network", "create", "spare"]);
    let pruned = s.docker(&["network", "prune", "-f"]);
    assert!(pruned.contains("spare"), "{pruned}");
    let ls = s.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ls.lines().count(), 3, "{ls}");

    let wanted = [
        "create mynet",
        "connect mynet",
        "disconnect mynet",
        "destroy mynet",
        "destroy spare",
    ];
    eventually("the network events", || {
        let events = s.docker(&[
            "events",
            "--since",
            &start.to_string(),
            "--until",
            &(unix_now() + 1).to_string(),
            "--filter",
            "type=network",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ]);
        wanted.iter().all(|w| events.contains(w)).then_some(())
    });
}
