//! An endpoint's own settings through the real docker CLI: `--gw-priority` choosing the
//! container's default gateway (at run, on a hot connect and disconnect, the IPv6 route chosen
//! as dockerd 28 does), `--link-local-ip` addresses on the interface and in inspect, and the
//! bridge driver's endpoint `--driver-opt`s (interface sysctls and name), with dockerd's
//! refusals. Traffic stays inside namespaces the engine made.

use berth_testutil::BusyboxEngine;

/// The `default via ...` line of the container's IPv4 (`-4`) or IPv6 (`-6`) routes.
fn default_route(s: &BusyboxEngine, name: &str, family: &str) -> String {
    let routes = s.docker(&["exec", name, "ip", family, "route"]);
    routes
        .lines()
        .filter(|l| l.starts_with("default"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn endpoint(s: &BusyboxEngine, name: &str, network: &str) -> serde_json::Value {
    s.inspect(name)["NetworkSettings"]["Networks"][network].clone()
}

fn gateway(s: &BusyboxEngine, name: &str, network: &str, key: &str) -> String {
    endpoint(s, name, network)[key]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn gw_priority_chooses_the_default_gateway() {
    let s = BusyboxEngine::new();
    for n in ["gwa", "gwc", "gwd"] {
        s.docker(&["network", "create", n]);
    }
    // Equal priorities would give the route to gwa (by name, and first); 5 wins.
    s.sleeper(
        "p1",
        &[
            "--network",
            "name=gwa",
            "--network",
            "name=gwc,gw-priority=5",
        ],
    );
    let gw_a = gateway(&s, "p1", "gwa", "Gateway");
    let gw_c = gateway(&s, "p1", "gwc", "Gateway");
    let route = default_route(&s, "p1", "-4");
    assert!(
        route.contains(&format!("via {gw_c} ")),
        "gwc ({gw_c}) has the highest priority: {route}"
    );
    assert_eq!(route.lines().count(), 1, "{route}");
    assert_eq!(endpoint(&s, "p1", "gwc")["GwPriority"], 5);
    assert_eq!(endpoint(&s, "p1", "gwa")["GwPriority"], 0);

    // A hot connect with a higher priority takes the route; its disconnect gives it back.
    s.docker(&["network", "connect", "--gw-priority", "10", "gwd", "p1"]);
    let gw_d = gateway(&s, "p1", "gwd", "Gateway");
    let route = default_route(&s, "p1", "-4");
    assert!(route.contains(&format!("via {gw_d} ")), "{route}");
    assert_eq!(route.lines().count(), 1, "{route}");
    s.docker(&["network", "disconnect", "gwd", "p1"]);
    let route = default_route(&s, "p1", "-4");
    assert!(route.contains(&format!("via {gw_c} ")), "{route}");
    // Losing the gateway network hands the route to the next one.
    s.docker(&["network", "disconnect", "gwc", "p1"]);
    let route = default_route(&s, "p1", "-4");
    assert!(route.contains(&format!("via {gw_a} ")), "{route}");

    // A lower priority than the default's leaves the route where it is.
    s.docker(&["network", "connect", "--gw-priority", "-1", "gwd", "p1"]);
    let route = default_route(&s, "p1", "-4");
    assert!(route.contains(&format!("via {gw_a} ")), "{route}");
    // The choice holds across a restart.
    s.docker(&["restart", "-t", "0", "p1"]);
    let route = default_route(&s, "p1", "-4");
    assert!(route.contains(&format!("via {gw_a} ")), "{route}");

    s.docker(&["rm", "-f", "p1"]);
    for n in ["gwa", "gwc", "gwd"] {
        s.docker(&["network", "rm", n]);
    }
}

#[test]
fn ipv6_default_route_is_chosen_as_dockerd_28_does() {
    if !berth_testutil::host_has_ipv6() {
        eprintln!("SKIPPED: this host has IPv6 disabled (net.ipv6.conf.all.disable_ipv6)");
        return;
    }
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "g4"]);
    s.docker(&["network", "create", "--ipv6", "g6"]);
    // g4 comes first by name and priority, but dockerd 28 gives both routes to the first
    // dual-stack endpoint.
    s.sleeper(
        "q1",
        &["--network", "name=g4,gw-priority=5", "--network", "name=g6"],
    );
    let gw6_4 = gateway(&s, "q1", "g6", "Gateway");
    let gw6_6 = gateway(&s, "q1", "g6", "IPv6Gateway");
    let route = default_route(&s, "q1", "-4");
    assert!(route.contains(&format!("via {gw6_4} ")), "{route}");
    let route6 = default_route(&s, "q1", "-6");
    assert!(route6.contains(&format!("via {gw6_6} ")), "{route6}");

    // A container on the IPv4-only network gains the IPv6 route on a connect.
    s.sleeper("q2", &["--network", "g4"]);
    assert_eq!(default_route(&s, "q2", "-6"), "");
    s.docker(&["network", "connect", "g6", "q2"]);
    let route6 = default_route(&s, "q2", "-6");
    assert!(route6.contains(&format!("via {gw6_6} ")), "{route6}");
    s.docker(&["network", "disconnect", "g6", "q2"]);
    let gw4 = gateway(&s, "q2", "g4", "Gateway");
    let route = default_route(&s, "q2", "-4");
    assert!(route.contains(&format!("via {gw4} ")), "{route}");

    s.docker(&["rm", "-f", "q1", "q2"]);
    for n in ["g4", "g6"] {
        s.docker(&["network", "rm", n]);
    }
}

#[test]
fn link_local_ips_and_driver_options() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "ll"]);
    let v6 = berth_testutil::host_has_ipv6();
    let mut extra = vec!["--network", "ll", "--link-local-ip", "169.254.8.9"];
    if v6 {
        extra.extend_from_slice(&["--link-local-ip", "fe80::8:9"]);
    }
    s.sleeper("l1", &extra);
    let addrs = s.docker(&["exec", "l1", "ip", "addr", "show", "eth0"]);
    assert!(addrs.contains("inet 169.254.8.9/16"), "{addrs}");
    if v6 {
        assert!(addrs.contains("inet6 fe80::8:9/64"), "{addrs}");
    }
    let ep = endpoint(&s, "l1", "ll");
    assert_eq!(ep["IPAMConfig"]["LinkLocalIPs"][0], "169.254.8.9", "{ep}");
    // On a hot connect too.
    s.docker(&["network", "create", "ll2"]);
    s.docker(&[
        "network",
        "connect",
        "--link-local-ip",
        "169.254.9.10",
        "ll2",
        "l1",
    ]);
    let addrs = s.docker(&["exec", "l1", "ip", "addr", "show", "eth1"]);
    assert!(addrs.contains("inet 169.254.9.10/16"), "{addrs}");
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "ll",
        "--link-local-ip",
        "10.9.8.7",
        &s.image,
        "true",
    ]);
    assert!(
        err.contains("invalid link local IP address: 10.9.8.7"),
        "{err}"
    );

    // Interface sysctls and name, as the bridge driver takes them.
    s.sleeper(
                "d1",
        &[
            "--network",
            "name=ll,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1",
            "--network",
            "name=ll2,driver-opt=com.docker.network.endpoint.ifname=foo0",
        ],
    );
    let v = s.docker(&[
        "exec",
        "d1",
        "cat",
        "/proc/sys/net/ipv4/conf/eth0/log_martians",
    ]);
    assert_eq!(v, "1");
    let v = s.docker(&[
        "exec",
        "d1",
        "cat",
        "/proc/sys/net/ipv4/conf/foo0/log_martians",
    ]);
    assert_eq!(v, "0", "only the endpoint that asked");
    let ep = endpoint(&s, "d1", "ll2");
    assert_eq!(
        ep["DriverOpts"]["com.docker.network.endpoint.ifname"], "foo0",
        "{ep}"
    );
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "name=ll,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.eth0.log_martians=1",
        &s.image,
        "true",
    ]);
    assert!(
        err.contains("unrecognised network interface sysctl"),
        "{err}"
    );
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "name=ll,driver-opt=com.example.x=1",
        &s.image,
        "true",
    ]);
    assert!(err.contains("--driver-opt com.example.x"), "{err}");

    s.docker(&["rm", "-f", "l1", "d1"]);
    for n in ["ll", "ll2"] {
        s.docker(&["network", "rm", n]);
    }
}
