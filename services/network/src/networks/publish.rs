//! Publishing a container's ports: host ports bound and held, DNAT elements added.

use berth_proto::network::v1 as pb;

use super::{
    Networks, kernel,
    rules::{port_rules, proxy_target},
};
use crate::{
    NetworkError,
    ports::{self, Holder},
};

impl Networks {
    /// Binds the host ports the request asks for and forwards them to `ep`: the sockets held,
    /// the ports recorded on the endpoint, the map elements added in one transaction. A repeated
    /// Attach keeps what the first one published.
    pub(super) async fn publish(
        &self,
        req: &pb::AttachRequest,
        ep: &mut pb::Endpoint,
    ) -> Result<Vec<pb::PublishedPort>, NetworkError> {
        if !ep.ports.is_empty() {
            return Ok(ep.ports.clone());
        }
        let mut fds = Vec::new();
        let mut published = Vec::new();
        for p in &req.ports {
            let (fd, port) = ports::bind_request(p).map_err(|e| match e {
                NetworkError::Client(_, msg) => NetworkError::Client(
                    berth_types::ErrorKind::Internal,
                    format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {msg}",
                        req.container_name, ep.endpoint_id
                    ),
                ),
                other => other,
            })?;
            fds.push(Holder::Socket(fd));
            // Every address: IPv6 clients too, through a proxy task (to the container's IPv6
            // address when it has one).
            if port.host_ip == "0.0.0.0" && port.protocol == "tcp" {
                let to = proxy_target(ep, port.container_port)
                    .ok_or_else(|| NetworkError::Store(anyhow::anyhow!("bad endpoint address")))?;
                let host_port = u16::try_from(port.host_port).unwrap_or_default();
                let v6 = pb::PublishedPort {
                    host_ip: "::".to_owned(),
                    ..port.clone()
                };
                published.push(port);
                if let Some(proxy) = ports::proxy_v6(host_port, to)? {
                    fds.push(Holder::Proxy(proxy));
                    published.push(v6);
                }
            } else {
                published.push(port);
            }
        }
        // Hairpin: with br_netfilter, a connection from the container to its own published
        // port is DNATed on the bridge and sent back out of the port it came in through.
        let hairpin = format!("/sys/class/net/{}/brport/hairpin_mode", ep.host_interface);
        if let Err(e) = std::fs::write(&hairpin, "1") {
            tracing::warn!(error = %e, link = ep.host_interface, "could not turn hairpin mode on");
        }
        ep.ports = published.clone();
        self.store.update_endpoint(ep)?;
        let text: String = port_rules(ep)
            .iter()
            .map(|r| self.fw.add_port_text(r))
            .collect();
        self.fw.nft(&text).await.map_err(kernel)?;
        self.held.keep(&req.container_id, fds);
        Ok(published)
    }
}
