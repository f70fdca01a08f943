//! `GET /info`: the gateway's own facts plus each backend's part. A backend that does not
//! answer is named in `Warnings`, and `docker info` still succeeds.

use berth_proto::{
    images::v1 as images, network::v1 as network, runtime::v1 as runtime, volumes::v1 as volumes,
};
use berth_types::ServiceName;
use serde_json::{Value, json};

use crate::{api_version::ENGINE_VERSION, backends::Answer, host::HostFacts};

/// The backends' answers to one `/info`.
pub struct Parts {
    pub runtime: Answer<runtime::InfoResponse>,
    pub images: Answer<images::InfoResponse>,
    pub network: Answer<network::InfoResponse>,
    pub volumes: Answer<volumes::InfoResponse>,
}

/// Process-level figures of the gateway itself.
pub struct Local<'a> {
    pub host: &'a HostFacts,
    pub data_root: &'a str,
    pub debug: bool,
    pub labels: &'a [String],
    pub live_restore: bool,
    pub event_listeners: i64,
    pub tasks: usize,
    pub fds: usize,
    pub system_time: String,
    pub proxies: [String; 3],
    /// Whether the gateway is connected to NATS (events flow).
    pub bus_connected: bool,
}

fn down(service: ServiceName, status: &tonic::Status) -> String {
    format!(
        "WARNING: the {service} service is unavailable: {}",
        status.message()
    )
}

/// The answer if there is one, collecting its warnings, or a warning naming the service.
fn take<T>(
    service: ServiceName,
    answer: Answer<T>,
    own: fn(&T) -> &Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<T> {
    match answer {
        Ok(a) => {
            warnings.extend(own(&a).iter().cloned());
            Some(a)
        }
        Err(e) => {
            warnings.push(down(service, &e));
            None
        }
    }
}

pub fn compose(parts: Parts, local: Local<'_>) -> Value {
    let mut warnings: Vec<String> = Vec::new();
    let rt = take(
        ServiceName::Runtime,
        parts.runtime,
        |r| &r.warnings,
        &mut warnings,
    );
    let img = take(
        ServiceName::Images,
        parts.images,
        |i| &i.warnings,
        &mut warnings,
    );
    let net = take(
        ServiceName::Network,
        parts.network,
        |n| &n.warnings,
        &mut warnings,
    );
    let vol = take(
        ServiceName::Volumes,
        parts.volumes,
        |v| &v.warnings,
        &mut warnings,
    );
    if !local.bus_connected {
        warnings.push(
            "WARNING: the event bus (NATS) is unreachable: events are buffered until it returns"
                .to_owned(),
        );
    }
    let r = rt.clone().unwrap_or_default();
    let i = img.clone().unwrap_or_default();
    let n = net.clone().unwrap_or_default();
    let v = vol.clone().unwrap_or_default();

    let registry = i.registry_config.as_ref().map(|rc| {
        let index: serde_json::Map<String, Value> = rc
            .index_configs
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    json!({"Name": c.name, "Mirrors": c.mirrors, "Secure": c.secure, "Official": c.official}),
                )
            })
            .collect();
        json!({
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": rc.insecure_registry_cidrs,
            "IndexConfigs": index,
            "Mirrors": rc.mirrors,
        })
    });
    let driver_status: Vec<[String; 2]> = i
        .driver_status
        .iter()
        .map(|kv| [kv.key.clone(), kv.value.clone()])
        .collect();
    let h = local.host;
    json!({
        "ID": r.engine_id,
        "Containers": r.containers,
        "ContainersRunning": r.running,
        "ContainersPaused": r.paused,
        "ContainersStopped": r.stopped,
        "Images": i.images,
        "Driver": if img.is_some() { i.driver.as_str() } else { "" },
        "DriverStatus": driver_status,
        "Plugins": {
            "Volume": v.drivers,
            "Network": n.drivers,
            "Authorization": null,
            "Log": ["json-file", "none"],
        },
        "MemoryLimit": r.memory_limit,
        "SwapLimit": r.swap_limit,
        "KernelMemoryTCP": r.kernel_memory_tcp,
        "CpuCfsPeriod": r.cpu_cfs_period,
        "CpuCfsQuota": r.cpu_cfs_quota,
        "CPUShares": r.cpu_shares,
        "CPUSet": r.cpu_set,
        "PidsLimit": r.pids_limit,
        "IPv4Forwarding": n.ipv4_forwarding,
        "BridgeNfIptables": n.bridge_nf_iptables,
        "BridgeNfIp6tables": n.bridge_nf_ip6tables,
        "Debug": local.debug,
        "NFd": local.fds,
        "OomKillDisable": r.oom_kill_disable,
        "NGoroutines": local.tasks,
        "SystemTime": local.system_time,
        "LoggingDriver": if rt.is_some() { r.logging_driver.as_str() } else { "" },
        "CgroupDriver": r.cgroup_driver,
        "CgroupVersion": r.cgroup_version,
        "NEventsListener": local.event_listeners,
        "KernelVersion": h.kernel,
        "OperatingSystem": h.operating_system,
        "OSVersion": h.os_version,
        "OSType": "linux",
        "Architecture": h.arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry,
        "NCPU": h.ncpu,
        "MemTotal": h.mem_total,
        "GenericResources": null,
        "DockerRootDir": local.data_root,
        "HttpProxy": local.proxies[0],
        "HttpsProxy": local.proxies[1],
        "NoProxy": local.proxies[2],
        "Name": h.hostname,
        "Labels": local.labels,
        "ExperimentalBuild": false,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {"berth": {"path": "berth-runtime"}},
        "DefaultRuntime": if rt.is_some() { r.default_runtime.as_str() } else { "berth" },
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null,
        },
        "LiveRestoreEnabled": local.live_restore,
        "Isolation": "",
        "InitBinary": r.init_binary,
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": r.security_options,
        "Warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts {
            hostname: "h".to_owned(),
            kernel: "6.1.0".to_owned(),
            arch: "x86_64".to_owned(),
            operating_system: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            os_version: "12".to_owned(),
            ncpu: 2,
            mem_total: 1 << 30,
        }
    }

    fn local(h: &HostFacts) -> Local<'_> {
        Local {
            host: h,
            data_root: "/var/lib/berth",
            debug: false,
            labels: &[],
            live_restore: false,
            event_listeners: 0,
            tasks: 3,
            fds: 10,
            system_time: "2026-11-27T00:00:00.000000000Z".to_owned(),
            proxies: Default::default(),
            bus_connected: true,
        }
    }

    #[test]
    fn all_up() {
        let h = host();
        let v = compose(
            Parts {
                runtime: Ok(runtime::InfoResponse {
                    containers: 3,
                    running: 1,
                    stopped: 2,
                    cgroup_version: "1".to_owned(),
                    cgroup_driver: "cgroupfs".to_owned(),
                    engine_id: "id".to_owned(),
                    ..Default::default()
                }),
                images: Ok(images::InfoResponse {
                    images: 2,
                    driver: "overlay2".to_owned(),
                    driver_status: vec![images::KeyValue {
                        key: "Backing Filesystem".to_owned(),
                        value: "extfs".to_owned(),
                    }],
                    registry_config: Some(images::RegistryConfig {
                        insecure_registry_cidrs: vec!["127.0.0.0/8".to_owned()],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                network: Ok(network::InfoResponse::default()),
                volumes: Ok(volumes::InfoResponse {
                    drivers: vec!["local".to_owned()],
                    ..Default::default()
                }),
            },
            local(&h),
        );
        assert_eq!(v["Containers"], 3);
        assert_eq!(v["ContainersRunning"], 1);
        assert_eq!(v["Images"], 2);
        assert_eq!(v["Driver"], "overlay2");
        assert_eq!(v["DriverStatus"], json!([["Backing Filesystem", "extfs"]]));
        assert_eq!(v["CgroupVersion"], "1");
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(
            v["RegistryConfig"]["InsecureRegistryCIDRs"],
            json!(["127.0.0.0/8"])
        );
        assert_eq!(v["Plugins"]["Volume"], json!(["local"]));
        assert!(v["Warnings"].is_null());
    }

    #[test]
    fn a_service_down_is_a_warning() {
        let h = host();
        let v = compose(
            Parts {
                runtime: Err(tonic::Status::unavailable("connection refused")),
                images: Ok(images::InfoResponse::default()),
                network: Ok(network::InfoResponse::default()),
                volumes: Err(tonic::Status::unavailable("connection refused")),
            },
            local(&h),
        );
        let w: Vec<String> = serde_json::from_value(v["Warnings"].clone()).unwrap();
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("runtime service is unavailable"), "{w:?}");
        assert!(w[1].contains("volumes service is unavailable"), "{w:?}");
        assert_eq!(v["Containers"], 0);
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
    }

    #[test]
    fn nats_down_is_a_warning() {
        let h = host();
        let v = compose(
            Parts {
                runtime: Ok(runtime::InfoResponse::default()),
                images: Ok(images::InfoResponse::default()),
                network: Ok(network::InfoResponse::default()),
                volumes: Ok(volumes::InfoResponse::default()),
            },
            Local {
                bus_connected: false,
                ..local(&h)
            },
        );
        assert!(
            v["Warnings"][0]
                .as_str()
                .unwrap()
                .contains("event bus (NATS) is unreachable")
        );
    }
}
