//! Legacy links (`--link name:alias`): checked at create (the linked container must exist;
//! its name is recorded), and at a start on the default bridge the environment variables
//! dockerd gives the linking container (`ALIAS_PORT_80_TCP=tcp://172.17.0.2:80`,
//! `ALIAS_NAME=/me/alias`, `ALIAS_ENV_<VAR>`...). The network service writes the /etc/hosts
//! lines (default bridge) or answers the alias in DNS (user-defined networks).

use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

/// `name:alias` as recorded.
fn split(link: &str) -> (&str, &str) {
    link.split_once(':').unwrap_or((link, link))
}

/// `hosts` with the address of every line whose first name is `alias` replaced by `ip` (an
/// IPv4 line by an IPv4 address), as dockerd's `UpdateHostsEntry` rewrites a linking
/// container's file when the linked one starts with a new address.
pub(crate) fn update_hosts(hosts: &str, alias: &str, ip: &str) -> String {
    let v6 = ip.contains(':');
    hosts
        .split_inclusive('\n')
        .map(|line| {
            let mut f = line.split_whitespace();
            match (f.next(), f.next()) {
                (Some(old), Some(first)) if first == alias && old.contains(':') == v6 => {
                    line.replacen(old, ip, 1)
                }
                _ => line.to_owned(),
            }
        })
        .collect()
}

/// The environment of one link as dockerd's `Link.ToEnv` builds it: `path` is the link's
/// full name (`/me/alias`), `ip` the linked container's address on the default bridge,
/// `env` and `exposed` (`80/tcp`) its configuration.
pub(crate) fn link_env(path: &str, ip: &str, env: &[String], exposed: &[String]) -> Vec<String> {
    let alias = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .to_ascii_uppercase()
        .replace('-', "_");
    let mut ports: Vec<(u16, String)> = exposed
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((port.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    // The lowest port, tcp before udp on the same number, is the default one.
    ports.sort_by(|a, b| a.0.cmp(&b.0).then((b.1 == "tcp").cmp(&(a.1 == "tcp"))));
    let mut out = Vec::new();
    if let Some((port, proto)) = ports.first() {
        out.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
    }
    // Runs of consecutive ports of one protocol also get _START and _END variables.
    let mut i = 0;
    while i < ports.len() {
        let (first, proto) = &ports[i];
        let mut j = i;
        while j + 1 < ports.len()
            && ports[j + 1].1 == *proto
            && u32::from(ports[j + 1].0) == u32::from(ports[j].0) + 1
        {
            j += 1;
        }
        if j > i {
            let up = proto.to_ascii_uppercase();
            let last = ports[j].0;
            let key = format!("{alias}_PORT_{first}_{up}");
            out.push(format!("{key}_START={proto}://{ip}:{first}"));
            out.push(format!("{key}_ADDR={ip}"));
            out.push(format!("{key}_PROTO={proto}"));
            out.push(format!("{key}_PORT_START={first}"));
            out.push(format!("{key}_END={proto}://{ip}:{last}"));
            out.push(format!("{key}_PORT_END={last}"));
        }
        i = j + 1;
    }
    for (port, proto) in &ports {
        let key = format!("{alias}_PORT_{port}_{}", proto.to_ascii_uppercase());
        out.push(format!("{key}={proto}://{ip}:{port}"));
        out.push(format!("{key}_ADDR={ip}"));
        out.push(format!("{key}_PORT={port}"));
        out.push(format!("{key}_PROTO={proto}"));
    }
    out.push(format!("{alias}_NAME={path}"));
    for v in env {
        if let Some((k, val)) = v.split_once('=')
            && k != "HOME"
            && k != "PATH"
        {
            out.push(format!("{alias}_ENV_{k}={val}"));
        }
    }
    out
}

impl Containers {
    /// At create: every linked container exists (dockerd's error otherwise), recorded by its
    /// name; links and the host network do not go together.
    pub(crate) fn resolve_links(&self, spec: &mut pb::ContainerSpec) -> Result<(), ContainerError> {
        let Some(net) = spec
            .network
            .as_mut()
            .filter(|n| !n.links.is_empty() || n.endpoints.iter().any(|e| !e.links.is_empty()))
        else {
            return Ok(());
        };
        if net.mode == "host" {
            return Err(ContainerError::invalid(
                "conflicting options: host type networking can't be used with links. This \
                 would result in undefined behavior",
            ));
        }
        let ep_links = net.endpoints.iter_mut().flat_map(|e| e.links.iter_mut());
        for link in net.links.iter_mut().chain(ep_links) {
            let (name, alias) = split(link);
            let child = self.find(name).map_err(|e| {
                ContainerError::invalid(format!("could not get container for {name}: {e}"))
            })?;
            *link = format!("{}:{alias}", child.short_name());
        }
        Ok(())
    }

    /// After `c` started on the default bridge: the running containers that link to it there
    /// get its new address in their /etc/hosts (dockerd's legacy-link update).
    pub(crate) fn refresh_link_parents(&self, c: &Container) {
        let Some(ep) = c
            .network
            .as_ref()
            .and_then(|n| n.endpoints.iter().find(|e| e.network_name == "bridge"))
        else {
            return;
        };
        let Ok(all) = self.store.all_shared() else {
            return;
        };
        for p in all.iter().filter(|p| p.state.running() && p.id != c.id) {
            let links = p
                .spec
                .network
                .as_ref()
                .map(|n| n.links.as_slice())
                .unwrap_or_default();
            if links.is_empty() || p.network_mode() != "bridge" {
                continue;
            }
            for (_, alias) in links
                .iter()
                .map(|l| split(l))
                .filter(|(name, _)| *name == c.short_name())
            {
                for ip in [&ep.ipv4_address, &ep.ipv6_address] {
                    if !ip.is_empty() {
                        self.rewrite_etc(&p.id, "hosts", |old| update_hosts(&old, alias, ip));
                    }
                }
            }
        }
    }

    /// At a start on the default bridge: every linked container runs there; the variables of
    /// its links. Elsewhere none (links are DNS names on user-defined networks).
    pub(crate) fn links_env(&self, c: &Container) -> Result<Vec<String>, ContainerError> {
        let links = c
            .spec
            .network
            .as_ref()
            .map(|n| n.links.as_slice())
            .unwrap_or_default();
        if links.is_empty() || c.network_mode() != "bridge" {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for link in links {
            let (name, alias) = split(link);
            let path = format!("/{}/{alias}", c.short_name());
            // A removed container is no longer linked (dockerd drops it from its link index).
            let Ok(child) = self.find(name) else {
                continue;
            };
            if !child.state.running() {
                return Err(ContainerError::new(
                    ErrorKind::Internal,
                    format!("Cannot link to a non running container: /{name} AS {path}"),
                ));
            }
            let ip = child
                .network
                .as_ref()
                .and_then(|n| n.endpoints.iter().find(|e| e.network_name == "bridge"))
                .map(|e| e.ipv4_address.clone())
                .ok_or_else(|| {
                    ContainerError::new(
                        ErrorKind::Internal,
                        format!(
                            "container {} not attached to default bridge network",
                            child.id
                        ),
                    )
                })?;
            let exposed = child
                .spec
                .network
                .as_ref()
                .map(|n| n.exposed_ports.clone())
                .unwrap_or_default();
            out.extend(link_env(&path, &ip, &child.process().env, &exposed));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn a_linked_containers_new_address_replaces_its_lines() {
        let hosts = "127.0.0.1\tlocalhost\n172.17.0.3\tstore dbhost db\n\
                     fd00::3\tstore dbhost db\n172.17.0.4\tother store\n";
        assert_eq!(
            update_hosts(hosts, "store", "172.17.0.9"),
            "127.0.0.1\tlocalhost\n172.17.0.9\tstore dbhost db\n\
             fd00::3\tstore dbhost db\n172.17.0.4\tother store\n"
        );
        assert_eq!(
            update_hosts(hosts, "store", "fd00::9"),
            hosts.replace("fd00::3", "fd00::9")
        );
        assert_eq!(update_hosts(hosts, "nosuch", "10.0.0.1"), hosts);
    }

    #[test]
    fn link_variables_as_dockerd_sets_them() {
        let env = link_env(
            "/me/my-db",
            "172.17.0.2",
            &s(&["PATH=/bin", "HOME=/root", "PASSWORD=x=y"]),
            &s(&["80/tcp", "53/udp"]),
        );
        assert_eq!(
            env,
            s(&[
                "MY_DB_PORT=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.2:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_80_TCP=tcp://172.17.0.2:80",
                "MY_DB_PORT_80_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_80_TCP_PORT=80",
                "MY_DB_PORT_80_TCP_PROTO=tcp",
                "MY_DB_NAME=/me/my-db",
                "MY_DB_ENV_PASSWORD=x=y",
            ])
        );
        let ranged = link_env(
            "/a/r",
            "10.0.0.2",
            &[],
            &s(&["8000/tcp", "8001/tcp", "53/udp", "53/tcp"]),
        );
        assert_eq!(ranged[0], "R_PORT=tcp://10.0.0.2:53");
        assert!(ranged.contains(&"R_PORT_8000_TCP_START=tcp://10.0.0.2:8000".to_owned()));
        assert!(ranged.contains(&"R_PORT_8000_TCP_END=tcp://10.0.0.2:8001".to_owned()));
        assert!(ranged.contains(&"R_PORT_8000_TCP_PORT_END=8001".to_owned()));
        assert!(!ranged.iter().any(|v| v.starts_with("R_PORT_53_TCP_START")));
        assert_eq!(link_env("/a/b", "ip", &[], &[]), s(&["B_NAME=/a/b"]));
    }
}
