//! `RegistryConfig` for `/info`, from `registry-mirrors` and `insecure-registries`, the way
//! dockerd presents it.

use berth_config::DaemonConfig;
use berth_proto::images::v1 as pb;

/// CIDRs always treated as insecure (loopback), as dockerd does.
const LOOPBACK_CIDRS: [&str; 2] = ["::1/128", "127.0.0.0/8"];

fn is_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(addr, prefix)| {
        addr.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok()
    })
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

pub(crate) fn registry_config(cfg: &DaemonConfig) -> pb::RegistryConfig {
    let mirrors: Vec<String> = cfg.registry_mirrors.iter().map(|m| with_slash(m)).collect();
    let mut cidrs: Vec<String> = LOOPBACK_CIDRS.iter().map(|s| (*s).to_owned()).collect();
    let mut index_configs = vec![pb::IndexConfig {
        name: "docker.io".to_owned(),
        mirrors: mirrors.clone(),
        secure: true,
        official: true,
    }];
    for r in &cfg.insecure_registries {
        if is_cidr(r) {
            if !cidrs.contains(r) {
                cidrs.push(r.clone());
            }
        } else {
            index_configs.push(pb::IndexConfig {
                name: r.clone(),
                mirrors: Vec::new(),
                secure: false,
                official: false,
            });
        }
    }
    pb::RegistryConfig {
        insecure_registry_cidrs: cidrs,
        index_configs,
        mirrors,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn mirrors_and_insecure_registries() {
        let cfg = DaemonConfig::parse(
            Path::new("daemon.json"),
            r#"{"registry-mirrors": ["https://mirror.example"],
                "insecure-registries": ["10.0.0.0/8", "127.0.0.1:5000"]}"#,
        )
        .unwrap();
        let rc = registry_config(&cfg);
        assert_eq!(
            rc.insecure_registry_cidrs,
            ["::1/128", "127.0.0.0/8", "10.0.0.0/8"]
        );
        assert_eq!(rc.mirrors, ["https://mirror.example/"]);
        assert_eq!(rc.index_configs.len(), 2);
        assert!(rc.index_configs[0].official && rc.index_configs[0].secure);
        assert_eq!(rc.index_configs[0].mirrors, ["https://mirror.example/"]);
        assert_eq!(rc.index_configs[1].name, "127.0.0.1:5000");
        assert!(!rc.index_configs[1].secure);
    }
}
