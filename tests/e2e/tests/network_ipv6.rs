//! IPv6 on user-defined bridge networks through the real docker CLI: `docker network create
//! --ipv6 --subnet fd00:...::/64` (and without a subnet: a unique local /64), addresses on the
//! containers' interfaces and the bridge, the default IPv6 route, `--ip6` on run and connect,
//! inspect as dockerd fills it, traffic between two containers by IPv6 address, AAAA answers of
//! the embedded DNS server, the masquerade element of the subnet, isolation between networks,
//! and dockerd's refusals. Traffic only goes between namespaces the engine made.

use std::process::Command;

use berth_testutil::{BusyboxEngine, eventually_explained};

fn v6_of(s: &BusyboxEngine, name: &str, network: &str) -> String {
    s.inspect(name)["NetworkSettings"]["Networks"][network]["GlobalIPv6Address"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn bridge_of(s: &BusyboxEngine, network: &str) -> String {
    let id = s.inspect(network)["Id"].as_str().unwrap().to_owned();
    format!("berth-{}", &id[..9])
}

fn host(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a host tool");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ipv6_networks_give_addresses_routes_dns_and_isolation() {
    if !berth_testutil::host_has_ipv6() {
        eprintln!("SKIPPED: this host has IPv6 disabled (net.ipv6.conf.all.disable_ipv6)");
        return;
    }
    let s = BusyboxEngine::new();
    s.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b37:6::/64",
        "v6a",
    ]);
    let net = s.inspect("v6a");
    assert_eq!(net["EnableIPv6"], true, "{net}");
    let config = net["IPAM"]["Config"].as_array().unwrap().clone();
    assert_eq!(config.len(), 2, "an IPv4 subnet is picked too: {net}");
    assert!(
        !config[0]["Subnet"].as_str().unwrap().contains(':'),
        "{net}"
    );
    assert_eq!(config[1]["Subnet"], "fd00:b37:6::/64", "{net}");
    assert_eq!(config[1]["Gateway"], "fd00:b37:6::1", "{net}");
    let bridge = bridge_of(&s, "v6a");
    let addrs = host(&["ip", "-6", "addr", "show", "dev", &bridge]);
    assert!(addrs.contains("inet6 fd00:b37:6::1/64"), "{addrs}");

    s.sleeper("c1", &["--network", "v6a"]);
    s.sleeper("c2", &["--network", "v6a", "--ip6", "fd00:b37:6::99"]);
    let c1 = s.inspect("c1");
    let ep = &c1["NetworkSettings"]["Networks"]["v6a"];
    assert_eq!(ep["GlobalIPv6Address"], "fd00:b37:6::2", "{ep}");
    assert_eq!(ep["GlobalIPv6PrefixLen"], 64, "{ep}");
    assert_eq!(ep["IPv6Gateway"], "fd00:b37:6::1", "{ep}");
    assert!(ep["IPAMConfig"].is_null(), "nothing was fixed: {ep}");
    let ep2 = &s.inspect("c2")["NetworkSettings"]["Networks"]["v6a"];
    assert_eq!(ep2["IPAMConfig"]["IPv6Address"], "fd00:b37:6::99", "{ep2}");
    assert_eq!(ep2["GlobalIPv6Address"], "fd00:b37:6::99", "{ep2}");
    let members = s.inspect("v6a")["Containers"].clone();
    let c2_id = s.inspect("c2")["Id"].as_str().unwrap().to_owned();
    assert_eq!(
        members[&c2_id]["IPv6Address"], "fd00:b37:6::99/64",
        "{members}"
    );

    // Inside: the address, the default IPv6 route, /etc/hosts.
    let a = s.docker(&["exec", "c1", "ip", "-6", "addr", "show", "eth0"]);
    assert!(a.contains("inet6 fd00:b37:6::2/64"), "{a}");
    let r = s.docker(&["exec", "c1", "ip", "-6", "route"]);
    assert!(r.contains("default via fd00:b37:6::1"), "{r}");
    let hosts = s.docker(&["exec", "c1", "cat", "/etc/hosts"]);
    assert!(hosts.contains("fd00:b37:6::2\t"), "{hosts}");

    // Traffic by IPv6 address, both ways, and to the gateway.
    s.docker(&["exec", "c1", "ping", "-6", "-c1", "-W2", "fd00:b37:6::99"]);
    s.docker(&["exec", "c2", "ping", "-6", "-c1", "-W2", "fd00:b37:6::2"]);
    s.docker(&["exec", "c1", "ping", "-6", "-c1", "-W2", "fd00:b37:6::1"]);

    // The embedded DNS server answers AAAA (and still A).
    let out = s.docker(&["exec", "c1", "nslookup", "-type=aaaa", "c2", "127.0.0.11"]);
    assert!(out.contains("fd00:b37:6::99"), "{out}");
    let out = s.docker(&["exec", "c1", "nslookup", "-type=a", "c2", "127.0.0.11"]);
    assert!(!out.contains("fd00:b37:6::99"), "{out}");

    // The subnet is masqueraded (dockerd's default, unique local addresses too).
    let table = host(&["nft", "list", "table", "inet", &s.engine.nft_table()]);
    assert!(table.contains("fd00:b37:6::/64"), "{table}");

    // Isolation: a container on another IPv6 network cannot reach them; once connected with
    // a fixed --ip6 it can.
    s.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b37:7::/64",
        "v6b",
    ]);
    s.sleeper("c3", &["--network", "v6b"]);
    assert_eq!(v6_of(&s, "c3", "v6b"), "fd00:b37:7::2");
    let (code, _, _) = s.status(&["exec", "c3", "ping", "-6", "-c1", "-W1", "fd00:b37:6::2"]);
    assert_ne!(code, 0, "networks are isolated for IPv6 too");
    s.docker(&["network", "connect", "--ip6", "fd00:b37:6::42", "v6a", "c3"]);
    assert_eq!(v6_of(&s, "c3", "v6a"), "fd00:b37:6::42");
    let a = s.docker(&["exec", "c3", "ip", "-6", "addr", "show", "eth1"]);
    assert!(a.contains("inet6 fd00:b37:6::42/64"), "{a}");
    let hosts = s.docker(&["exec", "c3", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("fd00:b37:6::42\t"),
        "a hot connect adds the line: {hosts}"
    );
    eventually_explained("c3 to reach c1 once connected", || {
        let (code, out, err) =
            s.status(&["exec", "c3", "ping", "-6", "-c1", "-W1", "fd00:b37:6::2"]);
        if code == 0 {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });

    s.docker(&["network", "disconnect", "v6a", "c3"]);
    let hosts = s.docker(&["exec", "c3", "cat", "/etc/hosts"]);
    assert!(
        !hosts.contains("fd00:b37:6::42"),
        "a disconnect removes it: {hosts}"
    );

    // Without a subnet: a unique local /64.
    s.docker(&["network", "create", "--ipv6", "v6auto"]);
    let auto = s.inspect("v6auto");
    let sub = auto["IPAM"]["Config"][1]["Subnet"]
        .as_str()
        .unwrap_or_default();
    assert!(sub.starts_with("fd") && sub.ends_with("::/64"), "{auto}");

    // dockerd's refusals.
    let (_, err) = s.fails(&["network", "create", "--subnet", "fd00:b37:8::/64", "nov6"]);
    assert!(err.contains("IPv6 is not enabled"), "{err}");
    let (_, err) = s.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b37:6:0:1::/80",
        "overlap",
    ]);
    assert!(err.contains("Pool overlaps"), "{err}");
    s.docker(&["network", "create", "v4only"]);
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "v4only",
        "--ip6",
        "fd00::5",
        &s.image,
        "true",
    ]);
    assert!(err.contains("does not have IPv6 enabled"), "{err}");
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "v6auto",
        "--ip6",
        "fd00::5",
        &s.image,
        "true",
    ]);
    assert!(err.contains("user configured subnets"), "{err}");
    let (_, err) = s.fails(&[
        "run",
        "--rm",
        "--network",
        "v6a",
        "--ip6",
        "fd00:b37:6::99",
        &s.image,
        "true",
    ]);
    assert!(err.contains("Address already in use"), "{err}");

    // Nothing left: the networks and their bridges go.
    s.docker(&["rm", "-f", "c1", "c2", "c3"]);
    for n in ["v6a", "v6b", "v6auto", "v4only"] {
        s.docker(&["network", "rm", n]);
    }
    assert!(
        !host(&["ip", "-o", "link", "show"]).contains(&bridge),
        "the bridge {bridge} is gone"
    );
    let table = host(&["nft", "list", "table", "inet", &s.engine.nft_table()]);
    assert!(!table.contains("fd00:b37:"), "{table}");
}

#[test]
fn ipv6_ip_range_and_source_addresses() {
    if !berth_testutil::host_has_ipv6() {
        eprintln!("SKIPPED: this host has IPv6 disabled (net.ipv6.conf.all.disable_ipv6)");
        return;
    }
    let s = BusyboxEngine::new();
    // Dynamic addresses come from --ip-range only; a fixed one may lie outside it.
    s.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b37:9::/64",
        "--ip-range",
        "fd00:b37:9::100/120",
        "v6r",
    ]);
    let net = s.inspect("v6r");
    assert_eq!(
        net["IPAM"]["Config"][1]["IPRange"], "fd00:b37:9::100/120",
        "{net}"
    );
    // (No duplicate address detection, so that an address added inside is usable at once.)
    s.sleeper(
                "r1",
        &[
            "--network",
            "name=v6r,driver-opt=com.docker.network.endpoint.sysctls=net.ipv6.conf.IFNAME.accept_dad=0",
            "--cap-add",
            "NET_ADMIN",
        ],
    );
    s.sleeper("r2", &["--network", "v6r", "--ip6", "fd00:b37:9::5"]);
    assert_eq!(v6_of(&s, "r1", "v6r"), "fd00:b37:9::100");
    let (_, err) = s.fails(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b37:a::/64",
        "--ip-range",
        "fd00:b37:b::/80",
        "v6bad",
    ]);
    assert!(err.contains("no matching subnet for range"), "{err}");

    // A container's IPv6 packets carry its own address, as its IPv4 ones: another source is
    // dropped where they are forwarded (with br_netfilter, also between two containers on
    // one bridge).
    s.docker(&["exec", "r1", "ping", "-6", "-c1", "-W2", "fd00:b37:9::5"]);
    let bridged = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
        .is_ok_and(|v| v.trim() == "1");
    s.docker(&[
        "exec",
        "r1",
        "ip",
        "-6",
        "addr",
        "add",
        "fd00:b37:9::77/64",
        "dev",
        "eth0",
    ]);
    let addrs = s.docker(&["exec", "r1", "ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(!addrs.contains("tentative"), "{addrs}");
    let (code, out, _) = s.status(&[
        "exec",
        "r1",
        "ping",
        "-6",
        "-c1",
        "-W2",
        "-I",
        "fd00:b37:9::77",
        "fd00:b37:9::5",
    ]);
    if bridged {
        assert_ne!(code, 0, "a spoofed source is dropped: {out}");
    }
    let table = host(&["nft", "list", "table", "inet", &s.engine.nft_table()]);
    assert!(table.contains("fd00:b37:9::100 . \""), "{table}");

    // A port published by a container with IPv6 reaches its IPv6 address from [::1] (the
    // server listens there only), as dockerd's userland proxy connects.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "web6",
        "--network",
        "v6r",
        "--ip6",
        "fd00:b37:9::80",
        "-p",
        "80",
        &s.image,
        "sh",
        "-c",
        "echo hi6 > /tmp/i && httpd -f -p [fd00:b37:9::80]:80 -h /tmp",
    ]);
    let port = s
        .docker(&["port", "web6", "80/tcp"])
        .lines()
        .find(|l| l.starts_with("[::]:"))
        .map(|l| l.trim_start_matches("[::]:").to_owned())
        .expect("a [::] binding");
    let url = format!("http://[::1]:{port}/i");
    eventually_explained("the published port answers on [::1]", || {
        let out = Command::new("curl")
            .args(["-sS", "-g", "--max-time", "2", &url])
            .output()
            .expect("curl");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.trim() == "hi6" {
            Ok(())
        } else {
            Err(format!("{body}{}", String::from_utf8_lossy(&out.stderr)))
        }
    });
    s.docker(&["rm", "-f", "web6"]);
    s.docker(&["rm", "-f", "r1", "r2"]);
    s.docker(&["network", "rm", "v6r"]);
    let table = host(&["nft", "list", "table", "inet", &s.engine.nft_table()]);
    assert!(!table.contains("fd00:b37:9"), "{table}");
}
