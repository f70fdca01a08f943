use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use berth_types::ServiceName;

use crate::{Host, Ipv4Cidr, SeccompProfile, ServiceAddress};

/// The validated configuration. Every field has a value; defaults are applied by the parser.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub hosts: Vec<Host>,
    pub storage_driver: String,
    pub tls: bool,
    /// `"tls": false` written out: the operator accepts a TCP host without TLS on an address
    /// other hosts reach.
    pub tls_off_accepted: bool,
    pub tlsverify: bool,
    pub tls_files: TlsFiles,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    pub default_address_pools: Vec<AddressPool>,
    pub bip: Option<Ipv4Cidr>,
    /// The default bridge network's interface (Docker's `bridge`); None: `berth0`.
    pub bridge: Option<String>,
    /// The MTU of the bridges and container interfaces; None: 1500.
    pub mtu: Option<u32>,
    pub live_restore: bool,
    pub debug: bool,
    pub log_level: LogLevel,
    pub metrics_addr: Option<SocketAddr>,
    pub labels: Vec<String>,
    /// `seccomp-profile`: the profile of containers that name none.
    pub seccomp_profile: SeccompProfile,
    /// `exec-opts` `native.cgroupdriver`.
    pub cgroup_driver: CgroupDriver,
    pub berth: BerthConfig,
    /// Docker keys that were present and are accepted, but that Berth does not act on yet.
    pub ignored_keys: Vec<String>,
}

/// How container cgroups are made: directly in cgroupfs, or as transient systemd scopes
/// (which the runtime refuses where systemd does not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupDriver {
    #[default]
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

/// `tlscacert`, `tlscert`, `tlskey`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// One entry of `default-address-pools`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressPool {
    pub base: Ipv4Cidr,
    pub size: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// The tracing filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Fatal => "error",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "fatal" => Ok(LogLevel::Fatal),
            other => Err(format!(
                "unable to parse logging level: {other} (want debug, info, warn, error or fatal)"
            )),
        }
    }
}

/// The `berth` section: what Docker's keys do not cover.
#[derive(Debug, Clone, PartialEq)]
pub struct BerthConfig {
    /// NATS URL. `None`: `berth up` starts its own nats-server; services fall back to the
    /// default local URL.
    pub nats_url: Option<String>,
    /// OTLP/gRPC endpoint for traces; none means no export.
    pub otlp_endpoint: Option<String>,
    /// How often each service publishes its heartbeat.
    pub heartbeat_interval: Duration,
    /// Per-service address overrides.
    pub services: BTreeMap<ServiceName, ServiceEndpoint>,
    /// mTLS material for services reached over TCP.
    pub service_tls: Option<ServiceTls>,
}

impl Default for BerthConfig {
    fn default() -> Self {
        BerthConfig {
            nats_url: None,
            otlp_endpoint: None,
            heartbeat_interval: Duration::from_secs(2),
            services: BTreeMap::new(),
            service_tls: None,
        }
    }
}

/// `berth.services.<name>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceEndpoint {
    /// Where the service's gRPC server listens and where others reach it.
    pub address: Option<ServiceAddress>,
    /// Where its Prometheus `/metrics` is served. None: an ephemeral port on 127.0.0.1.
    pub metrics_addr: Option<SocketAddr>,
    /// Its tokio worker threads (1: everything on the main thread). None: sized to the
    /// service's load ([`DaemonConfig::worker_threads`]).
    pub worker_threads: Option<usize>,
}

/// `berth.tls`: CA, certificate and key used for gRPC between services over TCP (mutual TLS).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The NATS URL services use when none is configured.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

impl DaemonConfig {
    /// The service's own directory under the data root.
    pub fn service_data_dir(&self, service: ServiceName) -> PathBuf {
        self.data_root.join(service.as_str())
    }

    /// The gRPC address of a service: configured, or `<exec-root>/<service>.sock`.
    pub fn service_address(&self, service: ServiceName) -> ServiceAddress {
        self.berth
            .services
            .get(&service)
            .and_then(|e| e.address.clone())
            .unwrap_or_else(|| ServiceAddress::Unix(self.default_socket(service)))
    }

    fn default_socket(&self, service: ServiceName) -> PathBuf {
        self.exec_root.join(format!("{}.sock", service.as_str()))
    }

    /// Where the service serves `/metrics`. The gateway also honours Docker's `metrics-addr`.
    pub fn metrics_addr(&self, service: ServiceName) -> Option<SocketAddr> {
        let own = self
            .berth
            .services
            .get(&service)
            .and_then(|e| e.metrics_addr);
        match service {
            ServiceName::ApiGateway => own.or(self.metrics_addr),
            _ => own,
        }
    }

    /// The tokio worker threads of a service: configured, or sized to its load. The gateway,
    /// runtime and images serve the hot paths (API calls, container starts, pulls) with one
    /// worker per core; network and volumes answer a few calls per container and idle
    /// otherwise, on the main thread alone.
    pub fn worker_threads(&self, service: ServiceName) -> usize {
        let configured = self
            .berth
            .services
            .get(&service)
            .and_then(|e| e.worker_threads);
        configured.unwrap_or_else(|| match service {
            ServiceName::Network | ServiceName::Volumes => 1,
            _ => std::thread::available_parallelism().map_or(2, |n| n.get()),
        })
    }

    pub fn nats_url(&self) -> &str {
        self.berth.nats_url.as_deref().unwrap_or(DEFAULT_NATS_URL)
    }

    /// The Docker API listeners: `hosts`, or `<exec-root>/docker.sock` when none is set.
    pub fn api_hosts(&self) -> Vec<Host> {
        if self.hosts.is_empty() {
            vec![Host::Unix(self.exec_root.join("docker.sock"))]
        } else {
            self.hosts.clone()
        }
    }

    /// The directory that holds per-service run-time files (pid files, metrics addresses).
    pub fn run_dir(&self) -> &Path {
        &self.exec_root
    }

    /// Where the gateway hands a large upload (a build context) to a service on the same host
    /// as a file instead of as gRPC messages: `<exec-root>/spool`.
    pub fn spool_dir(&self) -> PathBuf {
        self.exec_root.join("spool")
    }
}
