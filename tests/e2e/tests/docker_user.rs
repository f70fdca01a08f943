//! Beside another engine whose forwarding policy drops (dockerd sets FORWARD to DROP in
//! iptables, and in ip6tables when its IPv6 is on), a Berth bridge gets the narrowest accept
//! in that engine's `DOCKER-USER` chain, in both families, and loses it with the network.
//!
//! Where no `DOCKER-USER` chain exists, the test makes one (not referenced from FORWARD, so it
//! changes no traffic) and removes it, with its table when the test made that too; a chain that
//! exists (a real dockerd) only gains and loses the rules of the test's own bridge.

use std::process::Command;

use berth_testutil::{BusyboxEngine, text};

const FAMILIES: [(&str, &str); 2] = [("iptables", "ip"), ("ip6tables", "ip6")];

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a host tool");
    (out.status.success(), text(&out).0)
}

/// The rules of `DOCKER-USER` in `family`, as `-S` prints them.
fn docker_user(family: &str) -> String {
    run(&[family, "-w", "-t", "filter", "-S", "DOCKER-USER"]).1
}

/// What the test made, undone on drop (also when an assertion fails).
struct Made {
    /// (family, nft family) whose chain the test made, and whether it made the table too.
    chains: Vec<(&'static str, &'static str, bool)>,
}

impl Made {
    fn ensure_chains() -> Made {
        let mut chains = Vec::new();
        for (family, nft) in FAMILIES {
            if run(&[family, "-w", "-t", "filter", "-n", "-L", "DOCKER-USER"]).0 {
                continue;
            }
            let table_existed = run(&["nft", "list", "table", nft, "filter"]).0;
            let (ok, out) = run(&[family, "-w", "-t", "filter", "-N", "DOCKER-USER"]);
            assert!(ok, "{family} -N DOCKER-USER: {out}");
            chains.push((family, nft, !table_existed));
        }
        Made { chains }
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for (family, nft, made_table) in &self.chains {
            run(&[family, "-w", "-t", "filter", "-F", "DOCKER-USER"]);
            run(&[family, "-w", "-t", "filter", "-X", "DOCKER-USER"]);
            if *made_table {
                run(&["nft", "delete", "table", nft, "filter"]);
            }
        }
    }
}

#[test]
fn a_berth_bridge_is_accepted_in_docker_user_of_both_families() {
    let made = Made::ensure_chains();
    let s = BusyboxEngine::new();
    let bridge = format!("btdu{}", std::process::id() % 100_000);
    s.docker(&[
        "network",
        "create",
        "--opt",
        &format!("com.docker.network.bridge.name={bridge}"),
        "du",
    ]);
    let accept = format!("-A DOCKER-USER -i {bridge} -j ACCEPT");
    let replies =
        format!("-A DOCKER-USER -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    let published = format!("-A DOCKER-USER -o {bridge} -m conntrack --ctstate DNAT -j ACCEPT");
    for (family, _) in FAMILIES {
        let rules = docker_user(family);
        for rule in [&accept, &replies, &published] {
            assert!(
                rules.contains(rule.as_str()),
                "{family}: {rule} in\n{rules}"
            );
        }
    }
    s.docker(&["network", "rm", "du"]);
    for (family, _) in FAMILIES {
        let rules = docker_user(family);
        assert!(
            !rules.contains(bridge.as_str()),
            "{family}: {bridge} left in\n{rules}"
        );
    }
    drop(s);
    drop(made);
}
