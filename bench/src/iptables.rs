//! Undoing what dockerd in its default configuration (`--iptables`) adds to the host's
//! iptables: its `DOCKER*` chains and the rules that jump to them or name its bridge, and the
//! `FORWARD` policy it turns to `DROP`. What existed before the benchmark is left alone, and so
//! is anything else added meanwhile. (`iptables-save` and `iptables-restore` are the interface:
//! no library speaks both the legacy and the nf_tables backends.)

use std::{
    collections::BTreeMap,
    io::Write as _,
    process::{Command, Stdio},
};

use anyhow::{Context, ensure};

/// One table of an `iptables-save` dump.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Table {
    /// Chains and their policies (`-` for a user chain), in order.
    chains: Vec<(String, String)>,
    /// Rules as written (`-A CHAIN ...`).
    rules: Vec<String>,
}

impl Table {
    fn policy(&self, chain: &str) -> Option<&str> {
        self.chains
            .iter()
            .find(|(c, _)| c == chain)
            .map(|(_, p)| p.as_str())
    }
}

/// The tables of an `iptables-save` dump, by name.
fn parse(save: &str) -> BTreeMap<String, Table> {
    let mut tables = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in save.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            current = Some(name.to_owned());
            tables.entry(name.to_owned()).or_insert_with(Table::default);
            continue;
        }
        let Some(t) = current.as_ref().and_then(|c| tables.get_mut(c)) else {
            continue;
        };
        if let Some(chain) = line.strip_prefix(':') {
            let mut words = chain.split_whitespace();
            if let Some(name) = words.next() {
                let policy = words.next().unwrap_or("-").to_owned();
                t.chains.push((name.to_owned(), policy));
            }
        } else if line.starts_with("-A ") {
            t.rules.push(line.to_owned());
        } else if line == "COMMIT" {
            current = None;
        }
    }
    tables
}

/// Whether a rule is dockerd's: it names a `DOCKER*` chain (its own or as a target) or the
/// bridge it was given.
fn is_dockers(rule: &str, bridge: &str) -> bool {
    rule.split_whitespace()
        .any(|w| w.starts_with("DOCKER") || w == bridge)
}

/// The `iptables-restore --noflush` input that takes `after` back to `before` for what dockerd
/// (on `bridge`) added: its new rules in chains that existed before are deleted, the chains it
/// created are flushed and then deleted, and a built-in chain's policy it changed is set back.
/// Empty when there is nothing to undo.
pub(crate) fn undo(before: &str, after: &str, bridge: &str) -> String {
    let before = parse(before);
    let after = parse(after);
    let mut script = String::new();
    for (name, now) in &after {
        let was = before.get(name).cloned().unwrap_or_default();
        let new_chains: Vec<&str> = now
            .chains
            .iter()
            .filter(|(c, _)| was.policy(c).is_none() && c.starts_with("DOCKER"))
            .map(|(c, _)| c.as_str())
            .collect();
        let mut lines = Vec::new();
        // Rules added to chains that stay; a rule present twice after and once before is
        // deleted once.
        let mut kept = was.rules.clone();
        for rule in &now.rules {
            if let Some(i) = kept.iter().position(|r| r == rule) {
                kept.remove(i);
                continue;
            }
            let chain = rule.split_whitespace().nth(1).unwrap_or("");
            if new_chains.contains(&chain) || !is_dockers(rule, bridge) {
                continue;
            }
            lines.push(format!("-D {}", &rule[3..]));
        }
        for c in &new_chains {
            lines.push(format!("-F {c}"));
        }
        for c in &new_chains {
            lines.push(format!("-X {c}"));
        }
        for (c, policy) in &now.chains {
            if policy == "-" {
                continue;
            }
            // A table that did not exist before had every built-in chain at ACCEPT.
            let old = was.policy(c).unwrap_or("ACCEPT");
            if old != "-" && old != policy {
                lines.push(format!("-P {c} {old}"));
            }
        }
        if !lines.is_empty() {
            script += &format!("*{name}\n{}\nCOMMIT\n", lines.join("\n"));
        }
    }
    script
}

/// `iptables-save`'s output (rules and counters as dumped).
pub(crate) fn save() -> anyhow::Result<String> {
    let out = Command::new("iptables-save")
        .stdin(Stdio::null())
        .output()
        .context("running iptables-save")?;
    ensure!(out.status.success(), "iptables-save failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Feeds `script` to `iptables-restore --noflush`.
pub(crate) fn restore(script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running iptables-restore")?;
    child
        .stdin
        .take()
        .context("iptables-restore's stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "iptables-restore --noflush failed ({}): {}\n{script}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The tables of `after` that `before` did not have (on the nf_tables backend they stay, empty,
/// once created: `nft delete table ip <name>` removes them).
pub(crate) fn new_tables(before: &str, after: &str) -> Vec<String> {
    let before = parse(before);
    parse(after)
        .into_keys()
        .filter(|t| !before.contains_key(t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# Generated\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
                          :OUTPUT ACCEPT [0:0]\n:MINE - [0:0]\n-A INPUT -j MINE\nCOMMIT\n";

    const AFTER: &str = "*filter\n:INPUT ACCEPT [3:4]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :DOCKER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]\n:DOCKER-USER - [0:0]\n:MINE - [0:0]\n\
         -A INPUT -j MINE\n-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-ISOLATION-STAGE-1\n\
         -A FORWARD -o berthdk7 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A FORWARD -i other0 -j ACCEPT\n\
         -A DOCKER-USER -j RETURN\n-A DOCKER-ISOLATION-STAGE-1 -j RETURN\nCOMMIT\n\
         *nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
         -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
         -A POSTROUTING -s 10.254.7.0/24 ! -o berthdk7 -j MASQUERADE\n\
         -A DOCKER -i berthdk7 -j RETURN\nCOMMIT\n";

    #[test]
    fn undoes_dockerds_rules_chains_and_policy_only() {
        let script = undo(BEFORE, AFTER, "berthdk7");
        assert_eq!(
            script,
            "*filter\n\
             -D FORWARD -j DOCKER-USER\n\
             -D FORWARD -j DOCKER-ISOLATION-STAGE-1\n\
             -D FORWARD -o berthdk7 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -F DOCKER\n-F DOCKER-ISOLATION-STAGE-1\n-F DOCKER-USER\n\
             -X DOCKER\n-X DOCKER-ISOLATION-STAGE-1\n-X DOCKER-USER\n\
             -P FORWARD ACCEPT\nCOMMIT\n\
             *nat\n\
             -D PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
             -D POSTROUTING -s 10.254.7.0/24 ! -o berthdk7 -j MASQUERADE\n\
             -F DOCKER\n-X DOCKER\nCOMMIT\n"
        );
        assert_eq!(new_tables(BEFORE, AFTER), ["nat"]);
    }

    #[test]
    fn leaves_docker_chains_that_were_there_before() {
        // A host dockerd's chains and rules existed already: only the rule naming our bridge
        // goes.
        let before = "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n\
                      -A FORWARD -j DOCKER\n-A DOCKER -i docker0 -j RETURN\nCOMMIT\n";
        let after = "*filter\n:FORWARD DROP [0:0]\n:DOCKER - [0:0]\n\
                     -A FORWARD -j DOCKER\n-A FORWARD -j DOCKER\n-A DOCKER -i docker0 -j RETURN\n\
                     -A DOCKER -i berthdk7 -j RETURN\nCOMMIT\n";
        assert_eq!(
            undo(before, after, "berthdk7"),
            "*filter\n-D FORWARD -j DOCKER\n-D DOCKER -i berthdk7 -j RETURN\nCOMMIT\n"
        );
        assert_eq!(undo(before, before, "berthdk7"), "");
        assert!(new_tables(before, after).is_empty());
    }
}
