//! The container spec: what this runtime honors, the image's defaults merged under a request,
//! and the settings derived from it (the log).

use std::collections::HashMap;

use berth_proto::{images::v1 as images, runtime::v1 as pb};

use crate::container_error::ContainerError;

/// The parts of an image's config that a container inherits.
pub(crate) type ImageDefaults = images::ImageConfig;

/// The argv a container runs: the entrypoint then the cmd, as Docker combines the request's
/// and the image's (a request's entrypoint drops the image's cmd).
fn argv(p: &mut pb::Process, image: &ImageDefaults) -> Vec<String> {
    let req_entry = p.entrypoint.clone().map(|l| l.values);
    let req_cmd = p.cmd.clone().map(|l| l.values).filter(|c| !c.is_empty());
    let entrypoint = req_entry
        .clone()
        .or_else(|| image.entrypoint.clone().map(|l| l.values))
        .unwrap_or_default();
    let cmd = match (req_cmd, &req_entry) {
        (Some(c), _) => c,
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone().map(|l| l.values).unwrap_or_default(),
    };
    let out = entrypoint.iter().chain(&cmd).cloned().collect();
    p.entrypoint = (!entrypoint.is_empty()).then_some(pb::StringList { values: entrypoint });
    p.cmd = Some(pb::StringList { values: cmd });
    out
}

/// The image's env, with the request's entries replacing those with the same key.
pub(crate) fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut out: Vec<String> = image
        .iter()
        .filter(|e| !request.iter().any(|r| key(r) == key(e)))
        .cloned()
        .collect();
    out.extend(request.iter().cloned());
    out
}

fn or_default(value: &mut String, default: &str) {
    if value.is_empty() {
        *value = default.to_owned();
    }
}

/// The effective spec: the image's defaults merged under the request. Returns the argv.
pub(crate) fn merge_image(
    spec: &mut pb::ContainerSpec,
    image: &ImageDefaults,
    hostname: &str,
    log_driver: &str,
    log_opts: &HashMap<String, String>,
) -> Result<Vec<String>, ContainerError> {
    let mut p = spec.process.take().unwrap_or_default();
    let argv = argv(&mut p, image);
    if argv.first().is_none_or(String::is_empty) {
        return Err(ContainerError::invalid("No command specified"));
    }
    p.env = merge_env(&image.env, &p.env);
    or_default(&mut p.working_dir, &image.working_dir);
    or_default(&mut p.user, &image.user);
    if p.shell.is_empty() {
        p.shell = image.shell.clone().map(|l| l.values).unwrap_or_default();
    }
    spec.process = Some(p);
    let mut labels = image.labels.clone();
    labels.extend(std::mem::take(&mut spec.labels));
    spec.labels = labels;
    or_default(&mut spec.hostname, hostname);
    or_default(&mut spec.stop_signal, &image.stop_signal);
    if !spec.stop_signal.is_empty() {
        crate::lifecycle::parse_signal(&spec.stop_signal)?;
    }
    let net = spec.network.get_or_insert_with(Default::default);
    or_default(&mut net.mode, "bridge");
    for port in &image.exposed_ports {
        if !net.exposed_ports.contains(port) {
            net.exposed_ports.push(port.clone());
        }
    }
    net.exposed_ports.sort();
    // The request's anonymous volumes (Config.Volumes) and the image's, as dockerd merges them.
    spec.image_volumes.extend(image.volumes.iter().cloned());
    spec.image_volumes.sort();
    spec.image_volumes.dedup();
    if let Some(h) = &image.healthcheck {
        merge_health(spec.health_check.get_or_insert_with(Default::default), h);
    }
    let log = spec.log.get_or_insert_with(Default::default);
    if log.driver.is_empty() {
        log.driver = log_driver.to_owned();
        if log.options.is_empty() {
            log.options = log_opts.clone();
        }
    }
    Ok(argv)
}

/// The image's HEALTHCHECK under the request's, field by field: what the request leaves
/// unset (an empty test, a zero duration or retries) is the image's (moby `merge`).
fn merge_health(req: &mut pb::HealthCheck, image: &images::HealthConfig) {
    if req.test.is_empty() {
        req.test = image.test.clone();
    }
    for (mine, theirs) in [
        (&mut req.interval, image.interval),
        (&mut req.timeout, image.timeout),
        (&mut req.start_period, image.start_period),
        (&mut req.start_interval, image.start_interval),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
    if req.retries == 0 {
        req.retries = i32::try_from(image.retries).unwrap_or(i32::MAX);
    }
}

/// The json-file options this runtime applies.
const LOG_OPTS: &[&str] = &["max-size", "max-file"];

/// The first field of a spec that this runtime cannot honor yet, by its spec name: a front
/// end that sent it gets an error naming it rather than a container without it.
pub(crate) fn unsupported(spec: &pb::ContainerSpec) -> Option<String> {
    let d = |set: bool, name: &str| set.then(|| name.to_owned());
    let net = spec.network.clone().unwrap_or_default();
    let log = spec.log.clone().unwrap_or_default();
    let ns = spec.namespaces.clone().unwrap_or_default();
    let restart = spec.restart_policy.unwrap_or_default();
    None.or_else(|| {
        d(
            pb::restart_policy::Mode::try_from(restart.mode).is_err()
                || restart.maximum_retry_count < 0,
            "restart_policy",
        )
    })
    .or_else(|| {
        d(
            spec.resources.as_ref().is_some_and(|r| {
                *r != pb::Resources {
                    shm_size: r.shm_size,
                    devices: r.devices.clone(),
                    device_cgroup_rules: r.device_cgroup_rules.clone(),
                    memory: r.memory,
                    memory_swap: r.memory_swap,
                    memory_reservation: r.memory_reservation,
                    memory_swappiness: r.memory_swappiness,
                    oom_kill_disable: r.oom_kill_disable,
                    nano_cpus: r.nano_cpus,
                    cpu_shares: r.cpu_shares,
                    cpu_period: r.cpu_period,
                    cpu_quota: r.cpu_quota,
                    cpuset_cpus: r.cpuset_cpus.clone(),
                    cpuset_mems: r.cpuset_mems.clone(),
                    pids_limit: r.pids_limit,
                    blkio_weight: r.blkio_weight,
                    blkio_weight_devices: r.blkio_weight_devices.clone(),
                    read_bps: r.read_bps.clone(),
                    write_bps: r.write_bps.clone(),
                    read_iops: r.read_iops.clone(),
                    write_iops: r.write_iops.clone(),
                    cgroup_parent: r.cgroup_parent.clone(),
                    oom_score_adj: r.oom_score_adj,
                    ..Default::default()
                }
            }),
            "resources",
        )
    })
    .or_else(|| crate::mounts::unsupported(spec))
    .or_else(|| d(!spec.storage_opt.is_empty(), "storage_opt"))
    .or_else(|| d(!spec.annotations.is_empty(), "annotations"))
    .or_else(|| spec.security.as_ref().and_then(unsupported_security))
    .or_else(|| {
        let mode = |m: &str, extra: &str| matches!(m, "" | "private" | "host") || m == extra;
        d(
            !mode(&ns.pid, "") || !mode(&ns.ipc, "shareable") || !mode(&ns.uts, ""),
            "namespaces",
        )
    })
    .or_else(|| {
        d(
            !matches!(ns.cgroup.as_str(), "" | "private" | "host") || !ns.user.is_empty(),
            "namespaces",
        )
    })
    .or_else(|| {
        let mut rest = net.clone();
        rest.mode.clear();
        rest.exposed_ports.clear();
        rest.port_bindings.clear();
        rest.publish_all = false;
        rest.dns.clear();
        rest.dns_search.clear();
        rest.dns_options.clear();
        rest.extra_hosts.clear();
        rest.links.clear();
        rest.mac_address.clear();
        rest.endpoints_listed = false;
        // An endpoint with aliases, fixed IPv4 and IPv6 addresses, link-local addresses, a
        // MAC address, links, driver options (checked by the network service) and a gateway
        // priority is honored.
        rest.endpoints.retain(|e| {
            *e != pb::EndpointSpec {
                network: e.network.clone(),
                aliases: e.aliases.clone(),
                ipv4_address: e.ipv4_address.clone(),
                ipv6_address: e.ipv6_address.clone(),
                mac_address: e.mac_address.clone(),
                links: e.links.clone(),
                link_local_ips: e.link_local_ips.clone(),
                driver_opts: e.driver_opts.clone(),
                gw_priority: e.gw_priority,
            }
        });
        d(rest != pb::NetworkSpec::default(), "network")
    })
    .or_else(|| {
        d(
            !matches!(log.driver.as_str(), "" | "json-file" | "none"),
            "log.driver",
        )
    })
    .or_else(|| {
        log.options
            .keys()
            .find(|k| !LOG_OPTS.contains(&k.as_str()))
            .map(|k| format!("log.options.{k}"))
    })
}

/// What of the security options this runtime does not apply yet.
fn unsupported_security(s: &pb::SecuritySpec) -> Option<String> {
    let known = |c: &String| c == "ALL" || berth_bundle::ALL_CAPABILITIES.contains(&c.as_str());
    if let Some(c) = s.cap_add.iter().chain(&s.cap_drop).find(|c| !known(c)) {
        return Some(format!("capability {c}"));
    }
    // `seccomp=<profile JSON>` is checked where it is compiled (`seccomp.rs`).
    if let Some(o) = s.security_opt.iter().find(|o| {
        !matches!(
            o.as_str(),
            "no-new-privileges=true" | "no-new-privileges=false" | "apparmor=unconfined"
        ) && !o.starts_with("seccomp=")
    }) {
        return Some(format!("security_opt {o}"));
    }
    let rest = pb::SecuritySpec {
        runtime: s.runtime.clone(),
        isolation: s.isolation.clone(),
        ..Default::default()
    };
    (rest != pb::SecuritySpec::default()).then(|| "security".to_owned())
}

/// Why a sysctl cannot be set (runc's validator, in Docker's words): only namespaced ones, each
/// in a namespace of the container's own.
pub(crate) fn sysctl_error(spec: &pb::ContainerSpec, key: &str) -> Option<String> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let ns = spec.namespaces.clone().unwrap_or_default();
    let net = spec.network.as_ref().map_or("", |n| n.mode.as_str());
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return (ns.ipc == "host")
            .then(|| format!("sysctl {key:?} not allowed with the host's IPC namespace"));
    }
    if key.starts_with("net.") {
        return (net == "host")
            .then(|| format!("sysctl {key:?} not allowed in host network namespace"));
    }
    if key == "kernel.domainname" || key == "kernel.hostname" {
        return (ns.uts == "host")
            .then(|| format!("sysctl {key:?} not allowed in host UTS namespace"));
    }
    Some(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    ))
}

/// The capabilities to keep (moby's TweakCapabilities): Docker's default set with
/// `cap_drop` taken out and `cap_add` put in; `ALL` in `cap_add` is every capability but those
/// dropped, `ALL` in `cap_drop` is only those added. None: the default set, untouched.
pub(crate) fn capabilities(s: &pb::SecuritySpec) -> Option<Vec<String>> {
    if s.cap_add.is_empty() && s.cap_drop.is_empty() {
        return None;
    }
    let all = |l: &[String]| l.iter().any(|c| c == "ALL");
    let named =
        |l: &[String]| -> Vec<String> { l.iter().filter(|c| *c != "ALL").cloned().collect() };
    let (add, drop) = (named(&s.cap_add), named(&s.cap_drop));
    let base: Vec<String> = if all(&s.cap_add) {
        berth_bundle::ALL_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !drop.contains(c))
            .collect()
    } else if all(&s.cap_drop) {
        add
    } else {
        berth_bundle::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    let mut out = Vec::new();
    for c in base {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Some(out)
}

/// The json-file log's rotation: (max size in bytes, 0 unlimited; files kept, at least 1).
/// None when the container's output is not logged (driver `none`).
pub(crate) fn log_rotation(spec: &pb::ContainerSpec) -> Option<(u64, u32)> {
    let log = spec.log.clone().unwrap_or_default();
    if log.driver == "none" {
        return None;
    }
    let size = log
        .options
        .get("max-size")
        .and_then(|s| berth_types::parse_size(s))
        .unwrap_or(0);
    let files = log
        .options
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    Some((size, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(cmd: Option<&[&str]>, entrypoint: Option<&[&str]>) -> pb::Process {
        let list = |v: &[&str]| pb::StringList {
            values: v.iter().map(|s| (*s).to_owned()).collect(),
        };
        pb::Process {
            cmd: cmd.map(list),
            entrypoint: entrypoint.map(list),
            ..Default::default()
        }
    }

    fn merged(
        p: pb::Process,
        img: &ImageDefaults,
    ) -> Result<(pb::ContainerSpec, Vec<String>), ContainerError> {
        let mut spec = pb::ContainerSpec {
            process: Some(p),
            ..Default::default()
        };
        let argv = merge_image(&mut spec, img, "abc", "json-file", &HashMap::new())?;
        Ok((spec, argv))
    }

    #[test]
    fn image_defaults_merge_under_the_request() {
        let list = |v: &[&str]| {
            Some(images::StringList {
                values: v.iter().map(|s| (*s).to_owned()).collect(),
            })
        };
        let img = ImageDefaults {
            env: vec!["PATH=/bin".to_owned(), "A=1".to_owned()],
            cmd: list(&["sh"]),
            working_dir: "/w".to_owned(),
            ..Default::default()
        };
        let mut p = process(Some(&["echo", "hi"]), None);
        p.env = vec!["A=2".to_owned()];
        let (spec, argv) = merged(p, &img).unwrap();
        assert_eq!(argv, ["echo", "hi"]);
        let p = spec.process.unwrap();
        assert_eq!(p.env, ["PATH=/bin", "A=2"]);
        assert_eq!(p.working_dir, "/w");
        assert_eq!(spec.hostname, "abc");
        assert_eq!(spec.network.unwrap().mode, "bridge");
        assert_eq!(spec.log.unwrap().driver, "json-file");

        let img = ImageDefaults {
            entrypoint: list(&["/ep"]),
            cmd: list(&["x"]),
            ..Default::default()
        };
        assert_eq!(merged(process(None, None), &img).unwrap().1, ["/ep", "x"]);
        assert_eq!(
            merged(process(Some(&["y"]), None), &img).unwrap().1,
            ["/ep", "y"]
        );
        let (spec, argv) = merged(process(None, Some(&["/other"])), &img).unwrap();
        assert_eq!(argv, ["/other"]);
        assert_eq!(spec.process.unwrap().cmd.unwrap().values.len(), 0);
        assert!(merged(process(None, None), &ImageDefaults::default()).is_err());
        // An entrypoint reset to nothing with no cmd leaves nothing to run.
        assert!(merged(process(None, Some(&[])), &img).is_err());
        let mut bad = pb::ContainerSpec {
            process: Some(process(Some(&["x"]), None)),
            stop_signal: "FOO".to_owned(),
            ..Default::default()
        };
        let e = merge_image(&mut bad, &img, "h", "json-file", &HashMap::new());
        assert_eq!(e.unwrap_err().to_string(), "Invalid signal: FOO");
    }

    #[test]
    fn ports_volumes_and_health_come_from_the_image() {
        let img = ImageDefaults {
            env: vec!["A=1".to_owned()],
            exposed_ports: vec!["80/tcp".to_owned()],
            volumes: vec!["/data".to_owned()],
            healthcheck: Some(images::HealthConfig {
                test: vec!["CMD".to_owned(), "true".to_owned()],
                interval: 1000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let (spec, _) = merged(process(Some(&["x"]), None), &img).unwrap();
        assert_eq!(spec.image_volumes, ["/data"]);
        assert_eq!(spec.network.as_ref().unwrap().exposed_ports, ["80/tcp"]);
        assert_eq!(spec.health_check.as_ref().unwrap().interval, 1000);
        // The request's settings over the image's, field by field (--health-retries alone
        // keeps the image's test); --no-healthcheck (NONE) replaces the test.
        let with = |h: pb::HealthCheck| {
            let mut spec = pb::ContainerSpec {
                process: Some(process(Some(&["x"]), None)),
                health_check: Some(h),
                ..Default::default()
            };
            merge_image(&mut spec, &img, "abc", "json-file", &HashMap::new()).unwrap();
            spec.health_check.unwrap()
        };
        let h = with(pb::HealthCheck {
            retries: 2,
            timeout: 5,
            ..Default::default()
        });
        assert_eq!(h.test, ["CMD", "true"]);
        assert_eq!((h.interval, h.retries, h.timeout), (1000, 2, 5));
        let h = with(pb::HealthCheck {
            test: vec!["NONE".to_owned()],
            ..Default::default()
        });
        assert_eq!(h.test, ["NONE"]);
        // The image's SHELL, unless the request has one.
        let img = ImageDefaults {
            shell: Some(images::StringList {
                values: vec!["/bin/bash".to_owned(), "-c".to_owned()],
            }),
            ..img
        };
        let (spec, _) = merged(process(Some(&["x"]), None), &img).unwrap();
        assert_eq!(spec.process.unwrap().shell, ["/bin/bash", "-c"]);
        let mut p = process(Some(&["x"]), None);
        p.shell = vec!["/bin/zsh".to_owned()];
        let (spec, _) = merged(p, &img).unwrap();
        assert_eq!(spec.process.unwrap().shell, ["/bin/zsh"]);
    }

    #[test]
    fn what_is_not_honored_is_named() {
        let mut spec = pb::ContainerSpec::default();
        assert_eq!(unsupported(&spec), None);
        spec.resources = Some(pb::Resources {
            cpu_count: 2,
            ..Default::default()
        });
        assert_eq!(unsupported(&spec).as_deref(), Some("resources"));
        // Device I/O, the cgroup parent and namespace are honored.
        spec.resources = Some(pb::Resources {
            blkio_weight_devices: vec![pb::WeightDevice::default()],
            read_iops: vec![pb::ThrottleDevice::default()],
            cgroup_parent: "mine".to_owned(),
            ..Default::default()
        });
        spec.namespaces = Some(pb::NamespaceSpec {
            cgroup: "host".to_owned(),
            ..Default::default()
        });
        assert_eq!(unsupported(&spec), None);
        spec.namespaces.as_mut().unwrap().cgroup = "other".to_owned();
        assert_eq!(unsupported(&spec).as_deref(), Some("namespaces"));
        spec.namespaces = None;
        spec.resources = Some(pb::Resources {
            memory: 64 << 20,
            ..Default::default()
        });
        assert_eq!(unsupported(&spec), None);
        spec.resources = Some(pb::Resources::default());
        assert_eq!(unsupported(&spec), None);
        spec.log = Some(pb::LogSpec {
            driver: "json-file".to_owned(),
            options: [("compress".to_owned(), "true".to_owned())].into(),
        });
        assert_eq!(unsupported(&spec).as_deref(), Some("log.options.compress"));
        spec.log = None;
        spec.network = Some(pb::NetworkSpec {
            mode: "mynet".to_owned(),
            ..Default::default()
        });
        assert_eq!(unsupported(&spec), None);
        spec.network.as_mut().unwrap().mode = "container:abc".to_owned();
        assert_eq!(unsupported(&spec), None);
        spec.network.as_mut().unwrap().endpoints = vec![pb::EndpointSpec {
            network: "mynet".to_owned(),
            ipv4_address: "10.0.0.5".to_owned(),
            ipv6_address: "fd00::5".to_owned(),
            mac_address: "02:42:0a:00:00:05".to_owned(),
            ..Default::default()
        }];
        assert_eq!(unsupported(&spec), None);
        let ep = &mut spec.network.as_mut().unwrap().endpoints[0];
        ep.gw_priority = 5;
        ep.link_local_ips = vec!["169.254.1.1".to_owned()];
        ep.driver_opts = [(
            "com.docker.network.endpoint.ifname".to_owned(),
            "x0".to_owned(),
        )]
        .into();
        assert_eq!(unsupported(&spec), None);
    }

    #[test]
    fn capabilities_as_moby_tweaks_them() {
        let sec = |add: &[&str], drop: &[&str]| pb::SecuritySpec {
            cap_add: add.iter().map(|s| (*s).to_owned()).collect(),
            cap_drop: drop.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        assert_eq!(capabilities(&sec(&[], &[])), None);
        let c = capabilities(&sec(&["CAP_NET_ADMIN"], &["CAP_CHOWN"])).unwrap();
        assert_eq!(c.len(), 14);
        assert!(c.contains(&"CAP_NET_ADMIN".to_owned()) && !c.contains(&"CAP_CHOWN".to_owned()));
        let c = capabilities(&sec(&["CAP_KILL"], &["ALL"])).unwrap();
        assert_eq!(c, ["CAP_KILL"]);
        let c = capabilities(&sec(&["ALL"], &["CAP_SYS_ADMIN"])).unwrap();
        assert_eq!(c.len(), berth_bundle::ALL_CAPABILITIES.len() - 1);
        assert_eq!(
            unsupported(&pb::ContainerSpec {
                security: Some(sec(&["CAP_BOGUS"], &[])),
                ..Default::default()
            })
            .as_deref(),
            Some("capability CAP_BOGUS")
        );
    }

    #[test]
    fn sysctls_need_a_namespace_of_their_own() {
        let mut spec = pb::ContainerSpec::default();
        assert_eq!(sysctl_error(&spec, "net.ipv4.ip_forward"), None);
        assert_eq!(sysctl_error(&spec, "kernel.shmmax"), None);
        assert_eq!(
            sysctl_error(&spec, "kernel.panic").unwrap(),
            r#"sysctl "kernel.panic" is not in a separate kernel namespace"#
        );
        spec.network = Some(pb::NetworkSpec {
            mode: "host".to_owned(),
            ..Default::default()
        });
        assert!(sysctl_error(&spec, "net.ipv4.ip_forward").is_some());
        spec.namespaces = Some(pb::NamespaceSpec {
            ipc: "host".to_owned(),
            ..Default::default()
        });
        assert!(sysctl_error(&spec, "fs.mqueue.msg_max").is_some());
    }

    #[test]
    fn log_rotation_from_the_options() {
        let mut spec = pb::ContainerSpec {
            log: Some(pb::LogSpec {
                driver: "json-file".to_owned(),
                options: [
                    ("max-size".to_owned(), "1k".to_owned()),
                    ("max-file".to_owned(), "3".to_owned()),
                ]
                .into(),
            }),
            ..Default::default()
        };
        assert_eq!(log_rotation(&spec), Some((1024, 3)));
        spec.log.as_mut().unwrap().driver = "none".to_owned();
        assert_eq!(log_rotation(&spec), None);
    }
}
