//! `docker network connect` and `disconnect`: a running container gets (or loses) the endpoint
//! at once, through the network service, and its /etc/hosts and /etc/resolv.conf are rewritten
//! in place (a bind mount pins their inode); a created or stopped one has its list of networks
//! changed for its next start. Either way the list is in the record (`NetworkSpec.endpoints`).

use berth_proto::{network::v1 as netpb, runtime::v1 as pb};

use crate::{
    container::Container, container_error::ContainerError, lifecycle::Containers, network::endpoint,
};

/// The networks a container joins at its start, in order: its recorded list, else its mode
/// (a container made before the list was kept). A container sharing another's netns has none.
pub(crate) fn networks_of(spec: &pb::ContainerSpec) -> Vec<pb::EndpointSpec> {
    let net = spec.network.clone().unwrap_or_default();
    if !net.endpoints.is_empty() || net.endpoints_listed {
        return net.endpoints;
    }
    match net.mode.as_str() {
        m if m.starts_with("container:") => Vec::new(),
        "" => vec![pb::EndpointSpec {
            network: "bridge".to_owned(),
            ..Default::default()
        }],
        m => vec![pb::EndpointSpec {
            network: m.to_owned(),
            ..Default::default()
        }],
    }
}

/// The /etc/hosts line of an address, as the network service writes the container's own.
fn hosts_line(spec: &pb::ContainerSpec, ip: &str) -> String {
    let names = if spec.domainname.is_empty() {
        spec.hostname.clone()
    } else {
        format!("{}.{} {}", spec.hostname, spec.domainname, spec.hostname)
    };
    format!("{ip}\t{names}\n")
}

/// Whether the container's network mode lets it join any bridge network: no dockerd refusal
/// of [`check_mode`] applies to a bridge network, whatever its name.
fn mode_allows_bridges(c: &Container) -> bool {
    let mode = c.network_mode();
    mode != "host"
        && !mode.starts_with("container:")
        && !networks_of(&c.spec).iter().any(|e| e.network == "none")
}

/// dockerd's refusals of a connect that the container's network mode forbids.
fn check_mode(c: &Container, n: &netpb::NetworkRecord) -> Result<(), ContainerError> {
    let mode = c.network_mode();
    if n.driver == "host" && mode != "host" {
        return Err(ContainerError::invalid(
            "cannot connect container to host network - container must be created in host network mode",
        ));
    }
    if mode == "host" || mode.starts_with("container:") {
        return Err(ContainerError::invalid(
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ));
    }
    let current = networks_of(&c.spec);
    if !current.is_empty()
        && (n.driver == "null" || current.iter().any(|e| e.network == "none"))
        && !current.iter().any(|e| e.network == n.name)
    {
        return Err(ContainerError::invalid(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        ));
    }
    Ok(())
}

impl Containers {
    fn net_client(&self) -> netpb::network_client::NetworkClient<berth_service::Channel> {
        netpb::network_client::NetworkClient::new(self.network.clone())
    }

    /// Rewrites one of the container's etc files in place (its inode stays: it is bind-mounted).
    pub(crate) fn rewrite_etc(&self, id: &str, file: &str, f: impl FnOnce(String) -> String) {
        let path = self.bundle(id).join("etc").join(file);
        let Ok(old) = std::fs::read_to_string(&path) else {
            return;
        };
        if let Err(e) = std::fs::write(&path, f(old)) {
            tracing::warn!(error = %e, id, file, "rewriting an etc file");
        }
    }

    /// docker network connect.
    pub(crate) async fn network_connect(
        &self,
        req: &pb::ConnectRequest,
    ) -> Result<(), ContainerError> {
        let want = req.endpoint.clone().unwrap_or_default();
        let t0 = std::time::Instant::now();
        let _guard = self.lock.lock().await;
        let locked = t0.elapsed();
        let mut c = self.find(&req.id)?;
        let check = netpb::EndpointRequest {
            network: want.network.clone(),
            aliases: want.aliases.clone(),
            ipv4_address: want.ipv4_address.clone(),
            mac_address: want.mac_address.clone(),
            ipv6_address: want.ipv6_address.clone(),
            links: want.links.clone(),
            gw_priority: want.gw_priority,
            link_local_ips: want.link_local_ips.clone(),
            driver_opts: want.driver_opts.clone(),
        };
        let mut list = networks_of(&c.spec);
        // A running container whose mode allows any bridge network is plugged in at once:
        // the network service checks the endpoint and the network as it plugs it. Only when
        // that fails is the network asked for, to answer with dockerd's refusal if there is
        // one (a host or none network); a created or stopped one always asks.
        let name = if c.state.running() && mode_allows_bridges(&c) {
            let plugged = self.plug_running(&mut c, check.clone()).await;
            match plugged {
                Ok(name) => name,
                Err(e) => {
                    let n = self.checked_network(check).await?;
                    check_mode(&c, &n)?;
                    return Err(e);
                }
            }
        } else {
            let n = self.checked_network(check.clone()).await?;
            check_mode(&c, &n)?;
            if list.iter().any(|e| e.network == n.name) {
                if c.state.running() {
                    return Err(ContainerError::new(
                        berth_types::ErrorKind::Forbidden,
                        format!(
                            "endpoint with name {} already exists in network {}",
                            c.short_name(),
                            n.name
                        ),
                    ));
                }
                // dockerd keeps the first configuration of a network it already lists.
                return Ok(());
            }
            if c.state.running() {
                self.plug_running(
                    &mut c,
                    netpb::EndpointRequest {
                        network: n.id.clone(),
                        ..check
                    },
                )
                .await?;
            }
            n.name
        };
        let plugged = t0.elapsed();
        if !list.iter().any(|e| e.network == name) {
            list.push(pb::EndpointSpec {
                network: name,
                ..want
            });
        }
        let net = c.spec.network.get_or_insert_with(Default::default);
        net.endpoints = list;
        net.endpoints_listed = true;
        self.store.put(&c)?;
        self.bump(&c.id);
        tracing::debug!(
            id = c.id,
            "network connect: lock {locked:?}, connect+etc {plugged:?}, stored {:?} (since the \
             start)",
            t0.elapsed()
        );
        Ok(())
    }

    /// The network an endpoint `want` would join, its settings checked.
    async fn checked_network(
        &self,
        want: netpb::EndpointRequest,
    ) -> Result<netpb::NetworkRecord, ContainerError> {
        Ok(self
            .net_client()
            .check_endpoint(want)
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner())
    }

    /// Plugs the running container `c` into the network of `want`: the endpoint made by the
    /// network service, its address added to /etc/hosts, the embedded DNS server's
    /// resolv.conf written, the endpoint added to `c`'s state. The network's name.
    async fn plug_running(
        &self,
        c: &mut Container,
        want: netpb::EndpointRequest,
    ) -> Result<String, ContainerError> {
        let net = c.spec.network.clone().unwrap_or_default();
        let r = self
            .net_client()
            .connect_container(netpb::ConnectRequest {
                container_id: c.id.clone(),
                container_name: c.short_name().to_owned(),
                netns_path: self.netns_path(&c.id).display().to_string(),
                endpoint: Some(want),
                dns: net.dns,
                dns_search: net.dns_search,
                dns_options: net.dns_options,
                hostname: c.spec.hostname.clone(),
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner();
        let ep = r.endpoint.unwrap_or_default();
        let mut line = hosts_line(&c.spec, &ep.ipv4_address);
        if !ep.ipv6_address.is_empty() {
            line += &hosts_line(&c.spec, &ep.ipv6_address);
        }
        self.rewrite_etc(&c.id, "hosts", |old| old + &line);
        if !r.resolv_conf.is_empty() {
            self.rewrite_etc(&c.id, "resolv.conf", |_| r.resolv_conf.clone());
        }
        let name = ep.network_name.clone();
        c.network
            .get_or_insert_with(Default::default)
            .endpoints
            .push(endpoint(ep));
        Ok(name)
    }

    /// docker network disconnect.
    pub(crate) async fn network_disconnect(
        &self,
        req: &pb::DisconnectRequest,
    ) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let mut c = match self.find(&req.id) {
            Ok(c) => c,
            // dockerd's ForceEndpointDelete: a stale endpoint of a container that is gone.
            Err(e) if req.force => {
                let deleted = self
                    .net_client()
                    .disconnect_container(netpb::DisconnectRequest {
                        container_id: req.id.clone(),
                        network: req.network.clone(),
                        netns_path: String::new(),
                    })
                    .await;
                return deleted.map(|_| ()).map_err(|_| e);
            }
            Err(e) => return Err(e),
        };
        let found = self
            .net_client()
            .inspect_network(netpb::NetworkRef {
                id: req.network.clone(),
            })
            .await;
        let (name, driver) = match found {
            Ok(info) => {
                let n = info.into_inner().network.unwrap_or_default();
                (n.name, n.driver)
            }
            // A network removed meanwhile is forgotten by force, running or not (dockerd).
            Err(_) if req.force => (req.network.clone(), String::new()),
            Err(e) => return Err(ContainerError::upstream(&e)),
        };
        let removed = driver.is_empty();
        if c.network_mode() == "host" && driver == "host" {
            return Err(ContainerError::invalid(
                "cannot disconnect container from host network - container was created in host network mode",
            ));
        }
        let mut list = networks_of(&c.spec);
        let listed = list.iter().position(|e| e.network == name);
        if c.state.running() && removed {
            let state = c.network.get_or_insert_with(Default::default);
            state.endpoints.retain(|e| e.network_name != name);
            if listed.is_none() {
                return Err(ContainerError::Internal(anyhow::anyhow!(
                    "container {} is not connected to the network {name}",
                    c.id
                )));
            }
        } else if c.state.running() {
            let state = c.network.get_or_insert_with(Default::default);
            let Some(pos) = state.endpoints.iter().position(|e| e.network_name == name) else {
                return Err(ContainerError::Internal(anyhow::anyhow!(
                    "container {} is not connected to network {name}",
                    c.id
                )));
            };
            self.net_client()
                .disconnect_container(netpb::DisconnectRequest {
                    container_id: c.id.clone(),
                    network: name.clone(),
                    netns_path: self.netns_path(&c.id).display().to_string(),
                })
                .await
                .map_err(|e| ContainerError::upstream(&e))?;
            let gone = state.endpoints.remove(pos);
            let prefix = format!("{}\t", gone.ipv4_address);
            let prefix6 = format!("{}\t", gone.ipv6_address);
            self.rewrite_etc(&c.id, "hosts", |old| {
                old.lines()
                    .filter(|l| {
                        !l.starts_with(&prefix)
                            && (gone.ipv6_address.is_empty() || !l.starts_with(&prefix6))
                    })
                    .map(|l| format!("{l}\n"))
                    .collect()
            });
        } else if listed.is_none() {
            return Err(ContainerError::Internal(anyhow::anyhow!(
                "container {} is not connected to the network {name}",
                c.id
            )));
        }
        if let Some(pos) = listed {
            list.remove(pos);
        }
        let net = c.spec.network.get_or_insert_with(Default::default);
        net.endpoints = list;
        net.endpoints_listed = true;
        self.store.put(&c)?;
        self.bump(&c.id);
        Ok(())
    }

    /// After docker rename: the names DNS answers for the container follow.
    pub(crate) async fn network_rename(&self, c: &mut Container, old: &str) {
        let req = netpb::RenameContainerRequest {
            container_id: c.id.clone(),
            name: c.short_name().to_owned(),
        };
        if let Err(e) = self.net_client().rename_container(req).await {
            tracing::warn!(error = %e, id = c.id, "renaming the container's endpoints");
        }
        let new = c.short_name().to_owned();
        if let Some(state) = c.network.as_mut() {
            for e in &mut state.endpoints {
                for n in &mut e.dns_names {
                    if n == old {
                        n.clone_from(&new);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_mode_that_takes_any_bridge_network_skips_the_check() {
        let c = |mode: &str, eps: &[&str]| {
            let mut c = crate::container::tests::sample('a', "c");
            c.spec.network = Some(pb::NetworkSpec {
                mode: mode.to_owned(),
                endpoints: eps
                    .iter()
                    .map(|n| pb::EndpointSpec {
                        network: (*n).to_owned(),
                        ..Default::default()
                    })
                    .collect(),
                endpoints_listed: !eps.is_empty(),
                ..Default::default()
            });
            c
        };
        assert!(mode_allows_bridges(&c("", &[])));
        assert!(mode_allows_bridges(&c("mynet", &["mynet", "other"])));
        assert!(!mode_allows_bridges(&c("host", &[])));
        assert!(!mode_allows_bridges(&c("container:abc", &[])));
        assert!(!mode_allows_bridges(&c("none", &[])));
        assert!(!mode_allows_bridges(&c("bridge", &["none"])));
    }

    #[test]
    fn the_list_of_networks_falls_back_to_the_mode() {
        let spec = |mode: &str, eps: Vec<pb::EndpointSpec>| pb::ContainerSpec {
            network: Some(pb::NetworkSpec {
                mode: mode.to_owned(),
                endpoints: eps,
                ..Default::default()
            }),
            ..Default::default()
        };
        let names = |s: pb::ContainerSpec| {
            networks_of(&s)
                .into_iter()
                .map(|e| e.network)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(spec("mynet", vec![])), ["mynet"]);
        assert_eq!(names(spec("", vec![])), ["bridge"]);
        assert!(names(spec("container:abc", vec![])).is_empty());
        let two = vec![
            pb::EndpointSpec {
                network: "b".to_owned(),
                ..Default::default()
            },
            pb::EndpointSpec {
                network: "a".to_owned(),
                ..Default::default()
            },
        ];
        assert_eq!(names(spec("b", two)), ["b", "a"]);
        let mut none = spec("mynet", vec![]);
        none.network.as_mut().unwrap().endpoints_listed = true;
        assert!(names(none).is_empty());
        let s = pb::ContainerSpec {
            hostname: "web".to_owned(),
            domainname: "example.org".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            hosts_line(&s, "10.0.0.3"),
            "10.0.0.3\tweb.example.org web\n"
        );
    }
}
