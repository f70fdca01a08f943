//! Legacy links (`--link name:alias`) on the default bridge: the lines dockerd adds to the
//! linking container's /etc/hosts (`ip\talias hostname name`). On user-defined networks a
//! link is a name the embedded DNS server answers instead (see `dns`).

use berth_proto::network::v1 as pb;

use super::Networks;
use crate::NetworkError;

/// The /etc/hosts line of one link to `child` (its endpoint on the default bridge): the
/// alias, the child's hostname, and its name when the alias differs, as dockerd writes it.
pub(crate) fn hosts_line(alias: &str, child: &pb::Endpoint) -> String {
    let mut names = vec![alias];
    if !child.hostname.is_empty() {
        names.push(&child.hostname);
    }
    if alias != child.container_name {
        names.push(&child.container_name);
    }
    format!("{}\t{}\n", child.ipv4_address, names.join(" "))
}

impl Networks {
    /// The /etc/hosts lines of the links asked on endpoints of the default bridge
    /// (`endpoints[i]` was plugged for `wants[i]`). A linked container must be on it.
    pub(super) fn link_hosts(
        &self,
        endpoints: &[pb::Endpoint],
        wants: &[pb::EndpointRequest],
    ) -> Result<String, NetworkError> {
        let mut out = String::new();
        for (ep, want) in endpoints.iter().zip(wants) {
            if want.links.is_empty() || !self.find(&ep.network_id)?.predefined {
                continue;
            }
            let peers = self.store.network_endpoints(&ep.network_id)?;
            for link in &want.links {
                let (name, alias) = link.split_once(':').unwrap_or((link, link));
                let child = peers
                    .iter()
                    .find(|p| p.container_name == name)
                    .ok_or_else(|| {
                        NetworkError::invalid(format!(
                            "Cannot link to /{name}, as it does not belong to the default network"
                        ))
                    })?;
                out.push_str(&hosts_line(alias, child));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_lines_name_the_alias_hostname_and_name() {
        let child = pb::Endpoint {
            container_name: "db".to_owned(),
            hostname: "0123456789ab".to_owned(),
            ipv4_address: "172.17.0.2".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            hosts_line("alias", &child),
            "172.17.0.2\talias 0123456789ab db\n"
        );
        assert_eq!(hosts_line("db", &child), "172.17.0.2\tdb 0123456789ab\n");
    }
}
