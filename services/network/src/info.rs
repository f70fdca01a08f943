//! The network service's part of `/info`.

use std::sync::Arc;

use berth_proto::network::v1 as pb;

use crate::{NetworkError, store::Store, sysctl::Sysctl};

/// The network drivers Berth provides.
const DRIVERS: [&str; 3] = ["bridge", "host", "null"];

pub(crate) struct Network {
    store: Arc<Store>,
    sysctl: Sysctl,
}

impl Network {
    pub(crate) fn new(store: Arc<Store>, sysctl: Sysctl) -> Network {
        Network { store, sysctl }
    }

    pub(crate) fn info(&self) -> Result<pb::InfoResponse, NetworkError> {
        let forwarding = self.sysctl.flag("net.ipv4.ip_forward").unwrap_or(false);
        let nf4 = self.sysctl.flag("net.bridge.bridge-nf-call-iptables");
        let nf6 = self.sysctl.flag("net.bridge.bridge-nf-call-ip6tables");
        let mut warnings = Vec::new();
        if !forwarding {
            warnings.push("WARNING: IPv4 forwarding is disabled".to_owned());
        }
        if nf4 == Some(false) {
            warnings.push("WARNING: bridge-nf-call-iptables is disabled".to_owned());
        }
        if nf6 == Some(false) {
            warnings.push("WARNING: bridge-nf-call-ip6tables is disabled".to_owned());
        }
        Ok(pb::InfoResponse {
            networks: self.store.count()?,
            drivers: DRIVERS.iter().map(|d| (*d).to_owned()).collect(),
            ipv4_forwarding: forwarding,
            bridge_nf_iptables: nf4.unwrap_or(false),
            bridge_nf_ip6tables: nf6.unwrap_or(false),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_about_disabled_forwarding() {
        let data = tempfile::tempdir().unwrap();
        let proc = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(proc.path().join("net/ipv4")).unwrap();
        std::fs::create_dir_all(proc.path().join("net/bridge")).unwrap();
        std::fs::write(proc.path().join("net/ipv4/ip_forward"), "0\n").unwrap();
        std::fs::write(
            proc.path().join("net/bridge/bridge-nf-call-iptables"),
            "1\n",
        )
        .unwrap();
        let n = Network::new(
            Arc::new(Store::open(data.path()).unwrap()),
            Sysctl::at(proc.path()),
        );
        let info = n.info().unwrap();
        assert!(!info.ipv4_forwarding && info.bridge_nf_iptables);
        assert_eq!(
            info.warnings,
            vec!["WARNING: IPv4 forwarding is disabled".to_owned()]
        );
        assert_eq!(info.networks, 0);
    }
}
