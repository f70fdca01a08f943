//! Kernel settings the network service depends on, read from `/proc/sys` (or a fixture tree).

use std::path::{Path, PathBuf};

pub(crate) struct Sysctl {
    root: PathBuf,
}

impl Sysctl {
    pub(crate) fn host() -> Sysctl {
        Sysctl::at("/proc/sys")
    }

    pub(crate) fn at(root: impl AsRef<Path>) -> Sysctl {
        Sysctl {
            root: root.as_ref().to_owned(),
        }
    }

    /// `Some(true)` for "1", `Some(false)` for "0", `None` when the key does not exist (a
    /// module not loaded, for instance).
    pub(crate) fn flag(&self, key: &str) -> Option<bool> {
        let text = std::fs::read_to_string(self.root.join(key.replace('.', "/"))).ok()?;
        Some(text.trim() == "1")
    }
}

/// Turns IPv6 forwarding on for a network with IPv6, as dockerd does (`net.ipv6.conf.default.
/// forwarding` and `all.forwarding`; like dockerd, no interface's `accept_ra` is changed: a
/// host that takes its own IPv6 route from router advertisements needs `accept_ra=2` on its
/// uplink then).
pub(crate) fn ipv6_forwarding_on() {
    for key in [
        "/proc/sys/net/ipv6/conf/default/forwarding",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ] {
        write_if_different(key, "1");
    }
}

/// A bridge takes no router advertisement (dockerd's `setupDefaultSysctl`): its addresses
/// are the service's.
pub(crate) fn bridge_accept_ra_off(bridge: &str) {
    write_if_different(&format!("/proc/sys/net/ipv6/conf/{bridge}/accept_ra"), "0");
}

fn write_if_different(key: &str, value: &str) {
    if std::fs::read_to_string(key).is_ok_and(|v| v.trim() != value)
        && let Err(e) = std::fs::write(key, value)
    {
        tracing::warn!(error = %e, key, "could not set a sysctl");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_from_a_fixture() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net/ipv4")).unwrap();
        std::fs::write(dir.path().join("net/ipv4/ip_forward"), "1\n").unwrap();
        let s = Sysctl::at(dir.path());
        assert_eq!(s.flag("net.ipv4.ip_forward"), Some(true));
        assert_eq!(s.flag("net.bridge.bridge-nf-call-iptables"), None);
    }
}
