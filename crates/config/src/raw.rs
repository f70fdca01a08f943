//! daemon.json as written, then validated into [`DaemonConfig`].

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use berth_types::ServiceName;
use serde::Deserialize;

use crate::{
    AddressPool, BerthConfig, CgroupDriver, ConfigError, DEFAULT_DATA_ROOT, DEFAULT_EXEC_ROOT,
    DaemonConfig, Host, Ipv4Cidr, LogLevel, ServiceAddress, ServiceEndpoint, ServiceTls, TlsFiles,
};

/// The keys Berth acts on.
const USED_KEYS: &[&str] = &[
    "hosts",
    "storage-driver",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "data-root",
    "exec-root",
    "registry-mirrors",
    "insecure-registries",
    "log-driver",
    "log-opts",
    "default-address-pools",
    "bip",
    "bridge",
    "mtu",
    "live-restore",
    "debug",
    "log-level",
    "metrics-addr",
    "labels",
    "seccomp-profile",
    "exec-opts",
    "berth",
];

/// Other keys of Docker's daemon.json: accepted so an existing file loads, not acted on yet.
const DOCKER_KEYS: &[&str] = &[
    "allow-nondistributable-artifacts",
    "authorization-plugins",
    "bip6",
    "builder",
    "cdi-spec-dirs",
    "cgroup-parent",
    "containerd",
    "containerd-namespace",
    "containerd-plugins-namespace",
    "default-cgroupns-mode",
    "default-gateway",
    "default-gateway-v6",
    "default-ipc-mode",
    "default-network-opts",
    "default-runtime",
    "default-shm-size",
    "default-ulimits",
    "dns",
    "dns-opts",
    "dns-search",
    "experimental",
    "features",
    "fixed-cidr",
    "fixed-cidr-v6",
    "group",
    "host-gateway-ip",
    "icc",
    "init",
    "init-path",
    "ip",
    "ip-forward",
    "ip-masq",
    "ip6tables",
    "iptables",
    "ipv6",
    "log-format",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "no-new-privileges",
    "node-generic-resources",
    "pidfile",
    "proxies",
    "raw-logs",
    "runtimes",
    "selinux-enabled",
    "shutdown-timeout",
    "storage-opts",
    "swarm-default-advertise-addr",
    "userland-proxy",
    "userland-proxy-path",
    "userns-remap",
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Raw {
    hosts: Option<Vec<String>>,
    storage_driver: Option<String>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    registry_mirrors: Option<Vec<String>>,
    insecure_registries: Option<Vec<String>>,
    log_driver: Option<String>,
    log_opts: Option<BTreeMap<String, String>>,
    default_address_pools: Option<Vec<RawPool>>,
    bip: Option<String>,
    bridge: Option<String>,
    mtu: Option<u32>,
    live_restore: Option<bool>,
    debug: Option<bool>,
    log_level: Option<String>,
    metrics_addr: Option<String>,
    labels: Option<Vec<String>>,
    seccomp_profile: Option<String>,
    exec_opts: Option<Vec<String>>,
    berth: Option<RawBerth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    base: String,
    size: u8,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawBerth {
    nats_url: Option<String>,
    otlp_endpoint: Option<String>,
    heartbeat_interval_ms: Option<u64>,
    services: Option<BTreeMap<String, RawEndpoint>>,
    tls: Option<RawServiceTls>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawEndpoint {
    address: Option<String>,
    metrics_addr: Option<String>,
    worker_threads: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// The most worker threads a service may be given.
const MAX_WORKER_THREADS: usize = 256;

pub(crate) fn parse(path: &Path, text: &str) -> Result<DaemonConfig, ConfigError> {
    let invalid = |key: &str, reason: String| ConfigError::InvalidValue {
        path: path.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let Some(object) = value.as_object() else {
        return Err(ConfigError::Syntax {
            path: path.to_owned(),
            reason: "the top level must be a JSON object".to_owned(),
        });
    };
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !USED_KEYS.contains(&k.as_str()) && !DOCKER_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ConfigError::UnknownKeys {
            path: path.to_owned(),
            keys: unknown,
        });
    }
    let ignored_keys = object
        .keys()
        .filter(|k| DOCKER_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();

    let raw: Raw = serde_path_to_error::deserialize(&value).map_err(|e| {
        let key = e.path().to_string();
        invalid(&key, e.into_inner().to_string())
    })?;

    let hosts = raw
        .hosts
        .unwrap_or_default()
        .iter()
        .map(|h| h.parse::<Host>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|r| invalid("hosts", r))?;

    let storage_driver = raw.storage_driver.unwrap_or_else(|| "overlay2".to_owned());
    if storage_driver != "overlay2" {
        return Err(invalid(
            "storage-driver",
            format!("{storage_driver:?} is not supported: Berth stores images with overlay2"),
        ));
    }

    let tlsverify = raw.tlsverify.unwrap_or(false);
    let tls = raw.tls.unwrap_or(false) || tlsverify;
    let tls_files = TlsFiles {
        ca: raw.tlscacert,
        cert: raw.tlscert,
        key: raw.tlskey,
    };
    let has_tcp = hosts.iter().any(|h| matches!(h, Host::Tcp { .. }));
    if tls && has_tcp {
        for (key, file) in [("tlscert", &tls_files.cert), ("tlskey", &tls_files.key)] {
            if file.is_none() {
                return Err(invalid(key, "TLS is on but no file is given".to_owned()));
            }
        }
        if tlsverify && tls_files.ca.is_none() {
            return Err(invalid(
                "tlscacert",
                "tlsverify is on but no CA is given to verify clients".to_owned(),
            ));
        }
    }

    let registry_mirrors = raw.registry_mirrors.unwrap_or_default();
    for m in &registry_mirrors {
        if !(m.starts_with("https://") || m.starts_with("http://")) || m.len() <= "https://".len() {
            return Err(invalid(
                "registry-mirrors",
                format!("invalid mirror: {m:?}: it must be an http:// or https:// URL"),
            ));
        }
    }
    let insecure_registries = raw.insecure_registries.unwrap_or_default();
    for r in &insecure_registries {
        if r.is_empty() || r.contains("://") || r.contains(char::is_whitespace) {
            return Err(invalid(
                "insecure-registries",
                format!("{r:?}: want host[:port] or a CIDR, without a scheme"),
            ));
        }
    }

    let log_driver = raw.log_driver.unwrap_or_else(|| "json-file".to_owned());
    if !["json-file", "none"].contains(&log_driver.as_str()) {
        return Err(invalid(
            "log-driver",
            format!("{log_driver:?} is not supported (json-file, none)"),
        ));
    }
    let log_opts = raw.log_opts.unwrap_or_default();
    for key in log_opts.keys() {
        if !["max-size", "max-file", "compress", "labels", "env", "tag"].contains(&key.as_str()) {
            return Err(invalid(
                "log-opts",
                format!("unknown log opt '{key}' for {log_driver} log driver"),
            ));
        }
    }

    let mut default_address_pools = Vec::new();
    for p in raw.default_address_pools.unwrap_or_default() {
        let base: Ipv4Cidr = p
            .base
            .parse()
            .map_err(|r| invalid("default-address-pools", r))?;
        if p.size < base.prefix || p.size > 32 {
            return Err(invalid(
                "default-address-pools",
                format!(
                    "size {} must be between the base's prefix /{} and /32",
                    p.size, base.prefix
                ),
            ));
        }
        default_address_pools.push(AddressPool { base, size: p.size });
    }

    let bip = raw
        .bip
        .map(|b| b.parse::<Ipv4Cidr>())
        .transpose()
        .map_err(|r| invalid("bip", r))?;

    let bridge = raw.bridge.filter(|b| !b.is_empty());
    if let Some(b) = &bridge
        && (b.len() > 15
            || b == "none"
            || !b
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
    {
        return Err(invalid(
            "bridge",
            format!("{b:?} is not an interface name (at most 15 letters, digits, '-', '_' or '.')"),
        ));
    }
    if let Some(m) = raw.mtu
        && !(68..=65535).contains(&m)
    {
        return Err(invalid("mtu", format!("{m} is not between 68 and 65535")));
    }

    let log_level = raw
        .log_level
        .map(|l| l.parse::<LogLevel>())
        .transpose()
        .map_err(|r| invalid("log-level", r))?
        .unwrap_or_default();

    let metrics_addr = raw
        .metrics_addr
        .map(|a| parse_socket_addr(&a))
        .transpose()
        .map_err(|r| invalid("metrics-addr", r))?;

    let seccomp_profile = crate::seccomp::parse(raw.seccomp_profile.as_deref())
        .map_err(|r| invalid("seccomp-profile", r))?;

    let cgroup_driver =
        exec_opts(&raw.exec_opts.unwrap_or_default()).map_err(|r| invalid("exec-opts", r))?;
    let berth = berth_section(raw.berth.unwrap_or_default(), &invalid)?;

    Ok(DaemonConfig {
        hosts,
        storage_driver,
        tls,
        tls_off_accepted: raw.tls == Some(false),
        tlsverify,
        tls_files,
        data_root: raw.data_root.unwrap_or_else(|| DEFAULT_DATA_ROOT.into()),
        exec_root: raw.exec_root.unwrap_or_else(|| DEFAULT_EXEC_ROOT.into()),
        registry_mirrors,
        insecure_registries,
        log_driver,
        log_opts,
        default_address_pools,
        bip,
        bridge,
        mtu: raw.mtu,
        live_restore: raw.live_restore.unwrap_or(false),
        debug: raw.debug.unwrap_or(false),
        log_level,
        metrics_addr,
        labels: raw.labels.unwrap_or_default(),
        seccomp_profile,
        cgroup_driver,
        berth,
        ignored_keys,
    })
}

/// `exec-opts` as dockerd reads them (`key=value`, the key case-insensitive), in its words;
/// the cgroup driver they choose (cgroupfs unless `native.cgroupdriver=systemd`).
fn exec_opts(opts: &[String]) -> Result<CgroupDriver, String> {
    let mut driver = CgroupDriver::Cgroupfs;
    for opt in opts {
        let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
        let (k, v) = (k.trim().to_lowercase(), v.trim());
        if !opt.contains('=') || k.is_empty() || v.is_empty() {
            return Err(format!(
                "invalid exec-opt ({opt}): must be formatted 'opt=value'"
            ));
        }
        match k.as_str() {
            "native.cgroupdriver" => {
                driver = match v {
                    "cgroupfs" => CgroupDriver::Cgroupfs,
                    "systemd" => CgroupDriver::Systemd,
                    "none" => {
                        return Err(format!(
                            "native.cgroupdriver option {v} is internally used and cannot be \
                             specified manually"
                        ));
                    }
                    _ => return Err(format!("native.cgroupdriver option {v} not supported")),
                }
            }
            "isolation" => {
                return Err(format!(
                    "invalid exec-opt ({opt}): option '{k}' is only supported on windows"
                ));
            }
            _ => return Err(format!("invalid exec-opt ({opt}): unknown option: '{k}'")),
        }
    }
    Ok(driver)
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an address:port (for example 127.0.0.1:9323)"))
}

fn berth_section(
    raw: RawBerth,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<BerthConfig, ConfigError> {
    if let Some(url) = &raw.nats_url
        && !(url.starts_with("nats://") || url.starts_with("tls://"))
    {
        return Err(invalid(
            "berth.nats-url",
            format!("{url:?}: want nats://host:port or tls://host:port"),
        ));
    }
    if let Some(ep) = &raw.otlp_endpoint
        && !(ep.starts_with("http://") || ep.starts_with("https://"))
    {
        return Err(invalid(
            "berth.otlp-endpoint",
            format!("{ep:?}: want an http:// or https:// URL"),
        ));
    }
    let heartbeat_interval = match raw.heartbeat_interval_ms {
        Some(0) => {
            return Err(invalid(
                "berth.heartbeat-interval-ms",
                "must be greater than 0".to_owned(),
            ));
        }
        Some(ms) => Duration::from_millis(ms),
        None => BerthConfig::default().heartbeat_interval,
    };
    let mut services = BTreeMap::new();
    for (name, ep) in raw.services.unwrap_or_default() {
        let key = format!("berth.services.{name}");
        let service: ServiceName = name.parse().map_err(|e| invalid(&key, format!("{e}")))?;
        let address = ep
            .address
            .map(|a| a.parse::<ServiceAddress>())
            .transpose()
            .map_err(|r| invalid(&format!("{key}.address"), r))?;
        let metrics_addr = ep
            .metrics_addr
            .map(|a| parse_socket_addr(&a))
            .transpose()
            .map_err(|r| invalid(&format!("{key}.metrics-addr"), r))?;
        if let Some(n) = ep.worker_threads
            && !(1..=MAX_WORKER_THREADS).contains(&n)
        {
            return Err(invalid(
                &format!("{key}.worker-threads"),
                format!("{n}: want 1 to {MAX_WORKER_THREADS}"),
            ));
        }
        services.insert(
            service,
            ServiceEndpoint {
                address,
                metrics_addr,
                worker_threads: ep.worker_threads,
            },
        );
    }
    let service_tls = raw.tls.map(|t| ServiceTls {
        ca: t.ca,
        cert: t.cert,
        key: t.key,
    });
    let needs_tls = services
        .values()
        .any(|e| matches!(e.address, Some(ServiceAddress::Tcp { .. })));
    if needs_tls && service_tls.is_none() {
        return Err(invalid(
            "berth.tls",
            "a service is reached over tcp://, which requires mutual TLS: set berth.tls {ca, cert, key}"
                .to_owned(),
        ));
    }
    Ok(BerthConfig {
        nats_url: raw.nats_url,
        otlp_endpoint: raw.otlp_endpoint,
        heartbeat_interval,
        services,
        service_tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<DaemonConfig, ConfigError> {
        parse(Path::new("/etc/berth/daemon.json"), text)
    }

    #[test]
    fn dockers_documented_example_loads_verbatim() {
        let cfg = parse_str(
            r#"{ "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "storage-driver": "overlay2",
  "tls": true, "tlsverify": true, "tlscacert": "/etc/docker/ca.pem",
  "tlscert": "/etc/docker/server-cert.pem", "tlskey": "/etc/docker/server-key.pem" }"#,
        )
        .unwrap();
        assert_eq!(cfg.hosts.len(), 2);
        assert!(cfg.tls && cfg.tlsverify);
        assert_eq!(
            cfg.tls_files.ca.as_deref(),
            Some(Path::new("/etc/docker/ca.pem"))
        );
        assert_eq!(cfg.storage_driver, "overlay2");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = parse_str("{}").unwrap();
        assert_eq!(cfg.data_root, Path::new(DEFAULT_DATA_ROOT));
        assert_eq!(cfg.exec_root, Path::new(DEFAULT_EXEC_ROOT));
        assert_eq!(
            cfg.api_hosts(),
            vec![Host::Unix("/run/berth/docker.sock".into())]
        );
        assert_eq!(
            cfg.service_address(ServiceName::Runtime).to_string(),
            "unix:///run/berth/runtime.sock"
        );
        assert_eq!(cfg.log_driver, "json-file");
        assert_eq!(cfg.log_level, LogLevel::Info);
    }

    #[test]
    fn every_listed_key_parses() {
        let cfg = parse_str(
            r#"{
              "data-root": "/srv/berth", "exec-root": "/run/b",
              "registry-mirrors": ["https://mirror.example"], "insecure-registries": ["127.0.0.1:5000", "10.0.0.0/8"],
              "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
              "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
              "bip": "172.30.0.1/16", "live-restore": true, "debug": true, "log-level": "warn",
              "metrics-addr": "127.0.0.1:9323", "labels": ["a=b"],
              "iptables": true, "mtu": 1400, "bridge": "br-test",
              "berth": {"nats-url": "nats://127.0.0.1:4333", "otlp-endpoint": "http://127.0.0.1:4317",
                        "heartbeat-interval-ms": 500,
                        "services": {"images": {"address": "unix:///tmp/i.sock", "metrics-addr": "127.0.0.1:9325"}}}
            }"#,
        )
        .unwrap();
        assert_eq!(cfg.data_root, Path::new("/srv/berth"));
        assert_eq!(cfg.default_address_pools[0].size, 24);
        assert_eq!(cfg.bip.unwrap().to_string(), "172.30.0.1/16");
        assert_eq!(cfg.bridge.as_deref(), Some("br-test"));
        assert_eq!(cfg.mtu, Some(1400));
        assert_eq!(
            cfg.metrics_addr(ServiceName::ApiGateway).unwrap().port(),
            9323
        );
        assert_eq!(cfg.metrics_addr(ServiceName::Images).unwrap().port(), 9325);
        assert_eq!(cfg.metrics_addr(ServiceName::Runtime), None);
        assert_eq!(cfg.nats_url(), "nats://127.0.0.1:4333");
        assert_eq!(cfg.berth.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(cfg.ignored_keys, vec!["iptables".to_owned()]);
        assert_eq!(
            cfg.service_address(ServiceName::Images).to_string(),
            "unix:///tmp/i.sock"
        );
    }

    #[test]
    fn exec_opts_choose_the_cgroup_driver_in_dockerds_words() {
        assert_eq!(
            parse_str("{}").unwrap().cgroup_driver,
            CgroupDriver::Cgroupfs
        );
        let driver = |opts: &str| {
            parse_str(&format!(r#"{{"exec-opts": [{opts}]}}"#)).map(|c| c.cgroup_driver)
        };
        assert_eq!(
            driver(r#""native.cgroupdriver=cgroupfs""#).unwrap(),
            CgroupDriver::Cgroupfs
        );
        assert_eq!(
            driver(r#"" Native.CgroupDriver = systemd ""#).unwrap(),
            CgroupDriver::Systemd
        );
        for (opts, want) in [
            (
                r#""native.cgroupdriver=lxc""#,
                "native.cgroupdriver option lxc not supported",
            ),
            (
                r#""native.cgroupdriver=none""#,
                "native.cgroupdriver option none is internally used",
            ),
            (
                r#""native.cgroupdriver""#,
                "invalid exec-opt (native.cgroupdriver): must be formatted 'opt=value'",
            ),
            (
                r#""colour=blue""#,
                "invalid exec-opt (colour=blue): unknown option: 'colour'",
            ),
        ] {
            let e = driver(opts).unwrap_err().to_string();
            assert!(
                e.contains("invalid value for \"exec-opts\"") && e.contains(want),
                "{opts}: {e}"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (r#"{"foo": 1}"#, "don't match any configuration option: foo"),
            // Removed from dockerd in 26.0, refused by dockerd 28 as unknown.
            (
                r#"{"oom-score-adjust": -500}"#,
                "don't match any configuration option: oom-score-adjust",
            ),
            (r#"{"debug": "yes"}"#, "invalid value for \"debug\""),
            (r#"{"hosts": ["fd://"]}"#, "invalid value for \"hosts\""),
            (
                r#"{"storage-driver": "btrfs"}"#,
                "invalid value for \"storage-driver\"",
            ),
            (r#"{"bip": "300.1.1.1/8"}"#, "invalid value for \"bip\""),
            (
                r#"{"log-level": "loud"}"#,
                "invalid value for \"log-level\"",
            ),
            (
                r#"{"metrics-addr": "nope"}"#,
                "invalid value for \"metrics-addr\"",
            ),
            (
                r#"{"log-opts": {"colour": "1"}}"#,
                "invalid value for \"log-opts\"",
            ),
            (
                r#"{"registry-mirrors": ["mirror.example"]}"#,
                "invalid value for \"registry-mirrors\"",
            ),
            (
                r#"{"default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]}"#,
                "invalid value for \"default-address-pools\"",
            ),
            (
                r#"{"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": true, "tlscert": "c", "tlskey": "k"}"#,
                "\"tlscacert\"",
            ),
            (
                r#"{"berth": {"colour": 1}}"#,
                "invalid value for \"berth.colour\"",
            ),
            (
                r#"{"berth": {"nats-url": "http://x"}}"#,
                "\"berth.nats-url\"",
            ),
            (
                r#"{"berth": {"services": {"dockerd": {}}}}"#,
                "\"berth.services.dockerd\"",
            ),
            (
                r#"{"berth": {"services": {"network": {"worker-threads": 0}}}}"#,
                "\"berth.services.network.worker-threads\"",
            ),
            (
                r#"{"berth": {"services": {"runtime": {"address": "tcp://10.0.0.2:7000"}}}}"#,
                "\"berth.tls\"",
            ),
            (
                r#"{"seccomp-profile": "/nonexistent/profile.json"}"#,
                "invalid value for \"seccomp-profile\": opening seccomp profile (/nonexistent/profile.json) failed",
            ),
            (r#"[1]"#, "must be a JSON object"),
            (r#"{"debug": tru"#, "not valid JSON"),
        ];
        for (text, want) in cases {
            let err = parse_str(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.starts_with("/etc/berth/daemon.json"), "{err}");
        }
    }
}
