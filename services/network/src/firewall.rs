//! Packet rules: Berth's own nftables table, and the one accept rule per bridge another engine's
//! `DOCKER-USER` chain needs. The only place that runs `nft` and `iptables`.
//!
//! The table's rules never change with containers: networks and endpoints are set elements
//! (bridges, the pairs of bridges that may talk, the subnets to masquerade, each endpoint's
//! address on its bridge). The whole table is written once when the service starts (from its
//! store: that is the reconciliation), then every operation adds or deletes elements, in one
//! transaction, without reading the table back: a line to one long-lived `nft -i` child
//! ([`session`]), not a process per operation. Other tables are never touched.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

mod session;

use crate::{ipam::Ipv4Net, ipam6::Ipv6Net, ports::PortRule};

/// A network as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetRule {
    pub(crate) bridge: String,
    pub(crate) subnet: Ipv4Net,
    /// A network with IPv6: its IPv6 subnet, masqueraded as the IPv4 one (dockerd's default).
    pub(crate) subnet6: Option<Ipv6Net>,
    pub(crate) internal: bool,
}

/// An endpoint as the rules see it: its addresses on its bridge (the only sources its packets
/// may carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointRule {
    pub(crate) bridge: String,
    pub(crate) ip: Ipv4Addr,
    /// Its IPv6 address and its link-local ones (`--link-local-ip`).
    pub(crate) more: Vec<IpAddr>,
}

impl EndpointRule {
    /// The elements of `endpoints` and of `endpoints6`. IPv6 link-local sources (neighbour
    /// discovery) are never checked, so those addresses need none.
    fn keys(&self) -> (Vec<String>, Vec<String>) {
        let b = q(&self.bridge);
        let mut v4 = vec![format!("{} . {b}", self.ip)];
        let mut v6 = Vec::new();
        for a in &self.more {
            match a {
                IpAddr::V4(a) => v4.push(format!("{a} . {b}")),
                IpAddr::V6(a) if !a.is_unicast_link_local() => v6.push(format!("{a} . {b}")),
                IpAddr::V6(_) => {}
            }
        }
        (v4, v6)
    }
}

/// The table's name and the commands that change it.
#[derive(Debug, Clone)]
pub(crate) struct Firewall {
    table: String,
    /// Run `nft` and `iptables` (false in unit tests).
    live: bool,
    soon: Arc<Soon>,
    /// The long-lived `nft -i` that runs element changes.
    session: Arc<session::Session>,
}

/// How long the DOCKER-USER task waits before a round: the checks of a burst of attaches
/// become one round.
const DOCKER_USER_REST: Duration = Duration::from_secs(1);

/// The bridges whose DOCKER-USER accept a task of its own checks (off an attach's path).
#[derive(Debug, Default)]
struct Soon {
    bridges: Mutex<BTreeSet<String>>,
    wake: tokio::sync::Notify,
    task: OnceLock<()>,
    /// Held by a round and by [`Firewall::forget_in_docker_user`]: a bridge being removed
    /// gets no accept back.
    busy: tokio::sync::Mutex<()>,
}

fn q(name: &str) -> String {
    // Interface names are checked by the service (letters, digits, `-`, `_`, `.`).
    format!("\"{name}\"")
}

fn elements(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(" elements = {{ {} }};", items.join(", "))
    }
}

/// The element statements for one network (`add` or `delete`).
fn network_elements(table: &str, verb: &str, n: &NetRule) -> String {
    let mut out = String::new();
    let b = q(&n.bridge);
    let _ = writeln!(out, "{verb} element inet {table} bridges {{ {b} }}");
    let _ = writeln!(out, "{verb} element inet {table} same {{ {b} . {b} }}");
    if n.internal {
        let _ = writeln!(out, "{verb} element inet {table} internal {{ {b} }}");
    } else {
        let _ = writeln!(out, "{verb} element inet {table} masq {{ {} }}", n.subnet);
        if let Some(s6) = n.subnet6 {
            let _ = writeln!(out, "{verb} element inet {table} masq6 {{ {s6} }}");
        }
    }
    out
}

fn endpoint_element(table: &str, verb: &str, e: &EndpointRule) -> String {
    let (v4, v6) = e.keys();
    let mut out = format!(
        "{verb} element inet {table} endpoints {{ {} }}\n",
        v4.join(", ")
    );
    if !v6.is_empty() {
        let _ = writeln!(
            out,
            "{verb} element inet {table} endpoints6 {{ {} }}",
            v6.join(", ")
        );
    }
    out
}

/// The map and the key of a published port: `ports_any` (every local address) or `ports_ip`,
/// and their IPv6 twins `ports6_any` and `ports6_ip`, keyed alike.
fn port_key(p: &PortRule) -> (&'static str, String) {
    let (any, one) = if p.host_ip.is_ipv4() {
        ("ports_any", "ports_ip")
    } else {
        ("ports6_any", "ports6_ip")
    };
    if p.host_ip.is_unspecified() {
        (any, format!("{} . {}", p.protocol, p.host_port))
    } else {
        (
            one,
            format!("{} . {} . {}", p.host_ip, p.protocol, p.host_port),
        )
    }
}

/// The elements of each port map, by name.
fn port_maps(ports: &[PortRule]) -> [Vec<String>; 4] {
    let mut maps: [Vec<String>; 4] = Default::default();
    for p in ports {
        let i = match port_key(p).0 {
            "ports_any" => 0,
            "ports_ip" => 1,
            "ports6_any" => 2,
            _ => 3,
        };
        maps[i].push(port_element(p));
    }
    maps
}

fn port_element(p: &PortRule) -> String {
    format!("{} : {} . {}", port_key(p).1, p.target, p.container_port)
}

impl Firewall {
    pub(crate) fn new(table: impl Into<String>) -> Firewall {
        Firewall {
            table: table.into(),
            live: true,
            soon: Arc::default(),
            session: Arc::default(),
        }
    }

    #[cfg(test)]
    fn offline(table: &str) -> Firewall {
        Firewall {
            table: table.to_owned(),
            live: false,
            soon: Arc::default(),
            session: Arc::default(),
        }
    }

    /// The whole table, replacing whatever a previous run left: the reconciliation.
    pub(crate) fn ruleset(
        &self,
        nets: &[NetRule],
        eps: &[EndpointRule],
        ports: &[PortRule],
    ) -> String {
        let t = &self.table;
        let bridges: Vec<String> = nets.iter().map(|n| q(&n.bridge)).collect();
        let same: Vec<String> = nets
            .iter()
            .map(|n| format!("{} . {}", q(&n.bridge), q(&n.bridge)))
            .collect();
        let internal: Vec<String> = nets
            .iter()
            .filter(|n| n.internal)
            .map(|n| q(&n.bridge))
            .collect();
        let masq: Vec<String> = nets
            .iter()
            .filter(|n| !n.internal)
            .map(|n| n.subnet.to_string())
            .collect();
        let masq6: Vec<String> = nets
            .iter()
            .filter(|n| !n.internal)
            .filter_map(|n| n.subnet6.map(|s| s.to_string()))
            .collect();
        let (mut endpoints, mut endpoints6) = (Vec::new(), Vec::new());
        for e in eps {
            let (v4, v6) = e.keys();
            endpoints.extend(v4);
            endpoints6.extend(v6);
        }
        let [any, ip, any6, ip6] = port_maps(ports);
        // Published ports: traffic to a local address (from other hosts in prerouting, from
        // the host itself in output) is forwarded through the maps; what comes from loopback
        // (route_localnet on the bridges) or from a container (hairpin) is masqueraded so that
        // the reply comes back through the host; forwarded connections cross networks, never
        // into or out of an internal one.
        //
        // IPv6 alike, except what the kernel cannot forward: `::1` (no route_localnet) and
        // link-local sources stay with the service's proxy listener. Connections from a
        // container to its own network (hairpin; with br_netfilter they are bridged, with no
        // input interface in postrouting) are masqueraded; from another network they keep
        // their source (the reply is routed back through the host).
        let dnat = "\t\tfib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip\n\
                    \t\tfib daddr type local dnat ip to meta l4proto . th dport map @ports_any\n\
                    \t\tip6 daddr != ::1 ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip\n\
                    \t\tip6 daddr != ::1 ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6_any\n";
        format!(
            "add table inet {t}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
             \tset bridges {{ type ifname;{} }}\n\
             \tset same {{ type ifname . ifname;{} }}\n\
             \tset internal {{ type ifname;{} }}\n\
             \tset masq {{ type ipv4_addr; flags interval;{} }}\n\
             \tset masq6 {{ type ipv6_addr; flags interval;{} }}\n\
             \tset endpoints {{ type ipv4_addr . ifname;{} }}\n\
             \tset endpoints6 {{ type ipv6_addr . ifname;{} }}\n\
             \tmap ports_any {{ type inet_proto . inet_service : ipv4_addr . inet_service;{} }}\n\
             \tmap ports_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;{} }}\n\
             \tmap ports6_any {{ type inet_proto . inet_service : ipv6_addr . inet_service;{} }}\n\
             \tmap ports6_ip {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service;{} }}\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tiifname @bridges ip saddr . iifname != @endpoints drop\n\
             \t\tiifname @bridges ip6 saddr != {{ ::, fe80::/10 }} ip6 saddr . iifname != @endpoints6 drop\n\
             \t\tiifname @internal oifname != @internal drop\n\
             \t\toifname @internal iifname != @internal drop\n\
             \t\tct status dnat accept\n\
             \t\tiifname @bridges oifname @bridges iifname . oifname != @same drop\n\
             \t}}\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tiifname @internal fib daddr . iif type != {{ local, broadcast, multicast }} drop\n\
             \t}}\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr @masq oifname != @bridges masquerade\n\
             \t\tip6 saddr @masq6 oifname != @bridges masquerade\n\
             \t\tct status dnat ip saddr 127.0.0.0/8 oifname @bridges masquerade\n\
             \t\tct status dnat ip saddr @masq oifname @bridges masquerade\n\
             \t\tct status dnat ip6 saddr . oifname @endpoints6 masquerade\n\
             \t}}\n\
             \tchain prerouting {{\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             {dnat}\
             \t}}\n\
             \tchain output {{\n\
             \t\ttype nat hook output priority -100; policy accept;\n\
             {dnat}\
             \t}}\n\
             }}\n",
            elements(&bridges),
            elements(&same),
            elements(&internal),
            elements(&masq),
            elements(&masq6),
            elements(&endpoints),
            elements(&endpoints6),
            elements(&any),
            elements(&ip),
            elements(&any6),
            elements(&ip6),
        )
    }

    /// Writes the whole table (at start).
    pub(crate) async fn reset(
        &self,
        nets: &[NetRule],
        eps: &[EndpointRule],
        ports: &[PortRule],
    ) -> anyhow::Result<()> {
        self.nft(&self.ruleset(nets, eps, ports)).await
    }

    /// Removes the table (at a clean stop with no endpoint left).
    pub(crate) async fn remove_table(&self) -> anyhow::Result<()> {
        let t = &self.table;
        self.nft(&format!("add table inet {t}\ndelete table inet {t}\n"))
            .await
    }

    pub(crate) fn add_network_text(&self, n: &NetRule) -> String {
        network_elements(&self.table, "add", n)
    }

    /// Deleting is idempotent: each element is added first, in the same transaction.
    pub(crate) fn remove_network_text(&self, n: &NetRule) -> String {
        network_elements(&self.table, "add", n) + &network_elements(&self.table, "delete", n)
    }

    pub(crate) fn add_endpoint_text(&self, e: &EndpointRule) -> String {
        endpoint_element(&self.table, "add", e)
    }

    pub(crate) fn remove_endpoint_text(&self, e: &EndpointRule) -> String {
        endpoint_element(&self.table, "add", e) + &endpoint_element(&self.table, "delete", e)
    }

    pub(crate) fn add_port_text(&self, p: &PortRule) -> String {
        let (map, _) = port_key(p);
        format!(
            "add element inet {} {map} {{ {} }}\n",
            self.table,
            port_element(p)
        )
    }

    pub(crate) fn remove_port_text(&self, p: &PortRule) -> String {
        let (map, key) = port_key(p);
        format!(
            "{}delete element inet {} {map} {{ {key} }}\n",
            self.add_port_text(p),
            self.table
        )
    }

    /// Runs one transaction: element changes through the long-lived `nft -i`
    /// ([`session`]), anything else (the whole table) with `nft -f -`.
    pub(crate) async fn nft(&self, text: &str) -> anyhow::Result<()> {
        if !self.live || text.is_empty() {
            return Ok(());
        }
        if session::fits(text) {
            match self.session.run(text).await {
                Ok(()) => return Ok(()),
                Err(session::Failed::Refused(e)) => anyhow::bail!("nft: {e}\n{text}"),
                // Element changes are idempotent: run again by a process of its own.
                Err(session::Failed::Session(e)) => {
                    tracing::warn!(error = %e, "nft -i failed; running nft -f -");
                }
            }
        }
        let out = run_with_stdin("nft", &["-f", "-"], text).await?;
        if !out.status.success() {
            anyhow::bail!(
                "nft: {}\n{text}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Where another engine's iptables rules drop forwarded traffic by default (dockerd sets
    /// the FORWARD policy to DROP, and with IPv6 on it does the same in ip6tables), adds the
    /// narrowest accept for `bridge` to `DOCKER-USER`, the chain dockerd leaves to users:
    /// traffic from the bridge, and replies to it. In each of iptables and ip6tables; nothing
    /// where that chain does not exist.
    pub(crate) async fn allow_in_docker_user(&self, bridge: &str) {
        if !self.live {
            return;
        }
        for family in docker_user_families().await {
            for rule in docker_user_rules(bridge) {
                if !docker_user(family, "-C", &rule).await
                    && !docker_user(family, "-I", &rule).await
                {
                    tracing::warn!(
                        bridge,
                        family,
                        "could not add an accept rule to DOCKER-USER"
                    );
                }
            }
        }
    }

    /// [`Firewall::allow_in_docker_user`] for `bridge` without waiting for it (an attach's
    /// path: dockerd may have made the chain since the bridge came up). A task of its own
    /// checks every bridge asked for, [`DOCKER_USER_REST`] after the first ask of a round.
    pub(crate) fn allow_in_docker_user_soon(&self, bridge: &str) {
        if !self.live {
            return;
        }
        lock(&self.soon.bridges).insert(bridge.to_owned());
        self.soon.task.get_or_init(|| {
            let fw = self.clone();
            tokio::spawn(async move {
                loop {
                    fw.soon.wake.notified().await;
                    // After the attach that asked (iptables takes no CPU from it), and
                    // once for a burst of them.
                    tokio::time::sleep(DOCKER_USER_REST).await;
                    let _busy = fw.soon.busy.lock().await;
                    let bridges = std::mem::take(&mut *lock(&fw.soon.bridges));
                    for b in bridges {
                        fw.allow_in_docker_user(&b).await;
                    }
                }
            });
        });
        self.soon.wake.notify_one();
    }

    /// Removes what [`Firewall::allow_in_docker_user`] added for `bridge`.
    pub(crate) async fn forget_in_docker_user(&self, bridge: &str) {
        let _busy = self.soon.busy.lock().await;
        lock(&self.soon.bridges).remove(bridge);
        if !self.live {
            return;
        }
        for family in docker_user_families().await {
            for rule in docker_user_rules(bridge) {
                while docker_user(family, "-D", &rule).await {}
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn docker_user_rules(bridge: &str) -> [Vec<String>; 3] {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    [
        s(&["-i", bridge, "-j", "ACCEPT"]),
        s(&[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ]),
        // Connections to published ports.
        s(&[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "DNAT",
            "-j",
            "ACCEPT",
        ]),
    ]
}

/// The rule tables another engine's forwarding policy lives in: IPv4 and IPv6.
const XTABLES: [&str; 2] = ["iptables", "ip6tables"];

/// The families (of [`XTABLES`]) that have a `DOCKER-USER` chain.
async fn docker_user_families() -> Vec<&'static str> {
    let mut found = Vec::new();
    for family in XTABLES {
        if xtables(family, &["-w", "-t", "filter", "-n", "-L", "DOCKER-USER"]).await {
            found.push(family);
        }
    }
    found
}

/// `<family> -t filter <op> DOCKER-USER <rule>` (`-C` check, `-I` insert, `-D` delete);
/// whether it succeeded.
async fn docker_user(family: &str, op: &str, rule: &[String]) -> bool {
    let args: Vec<&str> = ["-w", "-t", "filter", op, "DOCKER-USER"]
        .into_iter()
        .chain(rule.iter().map(String::as_str))
        .collect();
    xtables(family, &args).await
}

/// Runs the host's `iptables` or `ip6tables`; whether it succeeded (false when it is not
/// installed).
async fn xtables(family: &str, args: &[&str]) -> bool {
    tokio::process::Command::new(family)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn run_with_stdin(
    program: &str,
    args: &[&str],
    input: &str,
) -> anyhow::Result<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("running {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).await?;
    }
    Ok(child.wait_with_output().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets() -> Vec<NetRule> {
        vec![
            NetRule {
                bridge: "berth0".to_owned(),
                subnet: "172.18.0.0/16".parse().unwrap(),
                subnet6: Some("fd00:18::/64".parse().unwrap()),
                internal: false,
            },
            NetRule {
                bridge: "berth-abc".to_owned(),
                subnet: "10.5.0.0/24".parse().unwrap(),
                subnet6: Some("fd00:5::/64".parse().unwrap()),
                internal: true,
            },
        ]
    }

    #[test]
    fn the_table_has_fixed_rules_and_one_element_per_object() {
        let fw = Firewall::offline("berth");
        let eps = [EndpointRule {
            bridge: "berth0".to_owned(),
            ip: "172.18.0.2".parse().unwrap(),
            more: vec![
                "fd00:18::2".parse().unwrap(),
                "fe80::2".parse().unwrap(),
                "169.254.0.2".parse().unwrap(),
            ],
        }];
        let text = fw.ruleset(&nets(), &eps, &[]);
        assert!(text.starts_with("add table inet berth\ndelete table inet berth\n"));
        assert!(
            text.contains("set bridges { type ifname; elements = { \"berth0\", \"berth-abc\" }; }")
        );
        assert!(
            text.contains("elements = { \"berth0\" . \"berth0\", \"berth-abc\" . \"berth-abc\" }")
        );
        assert!(text.contains("set internal { type ifname; elements = { \"berth-abc\" }; }"));
        assert!(text.contains("flags interval; elements = { 172.18.0.0/16 }; }"));
        assert!(text.contains(
            "set endpoints { type ipv4_addr . ifname; elements = { 172.18.0.2 . \"berth0\", \
             169.254.0.2 . \"berth0\" }; }"
        ));
        // IPv6 sources are checked as the IPv4 ones (link-local ones, for neighbour
        // discovery, are not).
        assert!(text.contains(
            "set endpoints6 { type ipv6_addr . ifname; elements = { fd00:18::2 . \"berth0\" }; }"
        ));
        assert!(text.contains(
            "iifname @bridges ip6 saddr != { ::, fe80::/10 } ip6 saddr . iifname != @endpoints6 drop"
        ));
        assert!(text.contains("ip saddr @masq oifname != @bridges masquerade"));
        // IPv6 subnets are masqueraded as dockerd does (also unique local ones), never an
        // internal network's.
        assert!(text.contains(
            "set masq6 { type ipv6_addr; flags interval; elements = { fd00:18::/64 }; }"
        ));
        assert!(text.contains("ip6 saddr @masq6 oifname != @bridges masquerade"));
        // An internal network reaches the host only at its own bridge's address.
        assert!(text.contains(
            "iifname @internal fib daddr . iif type != { local, broadcast, multicast } drop"
        ));
        // The rules are the same whatever the containers.
        let empty = fw.ruleset(&[], &[], &[]);
        let rules = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("set ") && !l.contains("map ports"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(rules(&text), rules(&empty));
        assert!(empty.contains("set endpoints { type ipv4_addr . ifname; }"));
    }

    #[test]
    fn operations_are_element_changes_only() {
        let fw = Firewall::offline("berth_t");
        let mut e = EndpointRule {
            bridge: "berth0".to_owned(),
            ip: "172.18.0.9".parse().unwrap(),
            more: Vec::new(),
        };
        assert_eq!(
            fw.add_endpoint_text(&e),
            "add element inet berth_t endpoints { 172.18.0.9 . \"berth0\" }\n"
        );
        e.more.push("fd00::9".parse().unwrap());
        assert_eq!(
            fw.add_endpoint_text(&e),
            "add element inet berth_t endpoints { 172.18.0.9 . \"berth0\" }\n\
             add element inet berth_t endpoints6 { fd00::9 . \"berth0\" }\n"
        );
        let rm = fw.remove_endpoint_text(&e);
        assert_eq!(rm.lines().count(), 4);
        assert!(rm.lines().nth(2).unwrap().starts_with("delete element"));
        let add = fw.add_network_text(&nets()[0]);
        assert!(add.contains("add element inet berth_t masq { 172.18.0.0/16 }"));
        assert!(add.contains("add element inet berth_t masq6 { fd00:18::/64 }"));
        assert!(!add.contains("internal"));
        let rm = fw.remove_network_text(&nets()[1]);
        assert!(rm.contains("delete element inet berth_t internal { \"berth-abc\" }"));
        assert!(rm.lines().all(|l| l.contains(" element ")));
        assert!(!rm.contains("masq6"));
    }

    #[test]
    fn published_ports_are_map_elements() {
        let fw = Firewall::offline("berth_t");
        let any = PortRule {
            host_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
            protocol: "tcp".to_owned(),
            host_port: 18080,
            target: "172.18.0.2".parse().unwrap(),
            container_port: 80,
        };
        let one = PortRule {
            host_ip: "127.0.0.1".parse().unwrap(),
            protocol: "udp".to_owned(),
            ..any.clone()
        };
        assert_eq!(
            fw.add_port_text(&any),
            "add element inet berth_t ports_any { tcp . 18080 : 172.18.0.2 . 80 }\n"
        );
        let rm = fw.remove_port_text(&one);
        assert!(rm.ends_with("delete element inet berth_t ports_ip { 127.0.0.1 . udp . 18080 }\n"));
        let text = fw.ruleset(&nets(), &[], &[any, one]);
        assert!(text.contains("elements = { tcp . 18080 : 172.18.0.2 . 80 }"));
        assert!(text.contains("elements = { 127.0.0.1 . udp . 18080 : 172.18.0.2 . 80 }"));
    }

    #[test]
    fn ipv6_published_ports_are_elements_of_their_own_maps() {
        let fw = Firewall::offline("berth_t");
        let any = PortRule {
            host_ip: std::net::Ipv6Addr::UNSPECIFIED.into(),
            protocol: "tcp".to_owned(),
            host_port: 18080,
            target: "fd00:18::2".parse().unwrap(),
            container_port: 80,
        };
        let one = PortRule {
            host_ip: "fd00:18::1".parse().unwrap(),
            protocol: "udp".to_owned(),
            host_port: 5353,
            container_port: 53,
            ..any.clone()
        };
        let v4 = PortRule {
            host_ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
            target: "172.18.0.2".parse().unwrap(),
            ..any.clone()
        };
        assert_eq!(
            fw.add_port_text(&any),
            "add element inet berth_t ports6_any { tcp . 18080 : fd00:18::2 . 80 }\n"
        );
        assert_eq!(
            fw.add_port_text(&one),
            "add element inet berth_t ports6_ip { fd00:18::1 . udp . 5353 : fd00:18::2 . 53 }\n"
        );
        // Removal is idempotent (added, then deleted, in one transaction) and by key.
        assert_eq!(
            fw.remove_port_text(&any),
            "add element inet berth_t ports6_any { tcp . 18080 : fd00:18::2 . 80 }\n\
             delete element inet berth_t ports6_any { tcp . 18080 }\n"
        );
        assert!(
            fw.remove_port_text(&one)
                .ends_with("delete element inet berth_t ports6_ip { fd00:18::1 . udp . 5353 }\n")
        );
        // The same host port in both families: one element in each family's map.
        let text = fw.ruleset(&nets(), &[], &[v4, any, one]);
        assert!(text.contains(
            "map ports_any { type inet_proto . inet_service : ipv4_addr . inet_service; \
             elements = { tcp . 18080 : 172.18.0.2 . 80 }; }"
        ));
        assert!(text.contains(
            "map ports6_any { type inet_proto . inet_service : ipv6_addr . inet_service; \
             elements = { tcp . 18080 : fd00:18::2 . 80 }; }"
        ));
        assert!(text.contains(
            "map ports6_ip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . \
             inet_service; elements = { fd00:18::1 . udp . 5353 : fd00:18::2 . 53 }; }"
        ));
        // The fixed rules: DNAT from both hooks except from ::1 and link-local sources (the
        // proxy's), and masquerade only within one bridge (hairpin), so that a client from
        // another network keeps its address.
        let dnat6 = "ip6 daddr != ::1 ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to \
                     meta l4proto . th dport map @ports6_any";
        assert_eq!(text.matches(dnat6).count(), 2, "{text}");
        assert_eq!(text.matches("map @ports6_ip").count(), 2, "{text}");
        assert!(text.contains("ct status dnat ip6 saddr . oifname @endpoints6 masquerade"));
        assert!(text.contains("ct status dnat accept"));
        let empty = fw.ruleset(&[], &[], &[]);
        assert!(empty.contains(
            "map ports6_any { type inet_proto . inet_service : ipv6_addr . inet_service; }"
        ));
    }
}
