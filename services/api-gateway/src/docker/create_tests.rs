use serde_json::json;

use super::*;

const V150: ApiVersion = ApiVersion {
    major: 1,
    minor: 50,
};

fn err(body: Value) -> String {
    spec(body, V150, "").unwrap_err().message
}

#[test]
fn log_drivers_and_options_as_docker_words_them() {
    let body = |log: Value| json!({"Image": "busybox", "HostConfig": {"LogConfig": log}});
    assert_eq!(
        err(body(json!({"Type": "bogus"}))),
        "logger: no log driver named 'bogus' is registered"
    );
    assert_eq!(
        err(body(json!({"Type": "syslog"}))),
        "--log-driver syslog is not supported by Berth yet (HostConfig.LogConfig.Type)"
    );
    assert_eq!(
        err(body(json!({"Type": "json-file", "Config": {"nope": "1"}}))),
        "unknown log opt 'nope' for json-file log driver"
    );
    assert_eq!(
        err(body(
            json!({"Type": "json-file", "Config": {"compress": "true"}})
        )),
        "--log-opt compress is not supported by Berth yet (HostConfig.LogConfig.Config)"
    );
    assert_eq!(
        err(body(
            json!({"Type": "json-file", "Config": {"max-size": "ten"}})
        )),
        "invalid max-size: ten"
    );
    let s = spec(
        body(json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}})),
        V150,
        "",
    )
    .unwrap();
    assert_eq!(s.log.unwrap().options.len(), 2);
    let s = spec(body(json!({"Type": "", "Config": {}})), V150, "").unwrap();
    assert_eq!(s.log, None);
}

#[test]
fn restart_policies_as_docker_words_them() {
    let body = |rp: Value, rm: bool| json!({"Image": "b", "HostConfig": {"RestartPolicy": rp, "AutoRemove": rm}});
    assert_eq!(
        err(body(json!({"Name": "sometimes"}), false)),
        "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
    );
    assert_eq!(
        err(body(
            json!({"Name": "always", "MaximumRetryCount": 3}),
            false
        )),
        "invalid restart policy: maximum retry count can only be used with 'on-failure'"
    );
    assert_eq!(
        err(body(
            json!({"Name": "on-failure", "MaximumRetryCount": -1}),
            false
        )),
        "invalid restart policy: maximum retry count cannot be negative"
    );
    assert_eq!(
        err(body(json!({"Name": "always"}), true)),
        "can't create 'AutoRemove' container with restart policy"
    );
    let s = spec(
        body(json!({"Name": "on-failure", "MaximumRetryCount": 3}), false),
        V150,
        "",
    )
    .unwrap();
    let p = s.restart_policy.unwrap();
    assert_eq!(p.mode, pb::restart_policy::Mode::OnFailure as i32);
    assert_eq!(p.maximum_retry_count, 3);
    assert!(spec(body(json!({"Name": "no"}), true), V150, "").is_ok());
}

#[test]
fn network_modes_and_endpoints() {
    let body = |mode: &str, eps: Value| {
        json!({"Image": "b", "HostConfig": {"NetworkMode": mode},
               "NetworkingConfig": {"EndpointsConfig": eps}})
    };
    let empty_ep = json!({"IPAMConfig": null, "Links": null, "Aliases": null,
        "MacAddress": "", "DriverOpts": null, "GwPriority": 0, "NetworkID": "",
        "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": null});
    let s = spec(body("default", json!({"default": empty_ep})), V150, "").unwrap();
    assert_eq!(s.network.unwrap().mode, "bridge");
    let s = spec(body("none", json!({"none": empty_ep})), V150, "").unwrap();
    assert_eq!(s.network.unwrap().mode, "none");
    let s = spec(body("mynet", json!({"mynet": empty_ep})), V150, "").unwrap();
    assert_eq!(s.network.unwrap().mode, "mynet");
    let s = spec(body("container:abc", json!({})), V150, "").unwrap();
    assert_eq!(s.network.as_ref().unwrap().mode, "container:abc");
    assert!(s.network.unwrap().endpoints.is_empty());
    let conflict = json!({"Image": "b", "Hostname": "h",
        "HostConfig": {"NetworkMode": "container:abc"}});
    assert!(err(conflict).contains("conflicting options: hostname and the network mode"));
    let conflict = json!({"Image": "b", "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"NetworkMode": "container:abc"}});
    assert!(err(conflict).contains("port exposing and the container type network mode"));
    assert!(
        err(body("bridge", json!({"bridge": {"Aliases": ["x"]}})))
            .contains("network-scoped alias is supported only")
    );
    let s = spec(
        body("mynet", json!({"mynet": {"Aliases": ["db"]}})),
        V150,
        "",
    )
    .unwrap();
    assert_eq!(s.network.unwrap().endpoints[0].aliases, ["db"]);
    let s = spec(
        body(
            "mynet",
            json!({"other": {}, "mynet": {"IPAMConfig": {"IPv4Address": "10.0.0.2"}}}),
        ),
        V150,
        "",
    )
    .unwrap();
    let eps = s.network.unwrap().endpoints;
    assert_eq!(
        (eps[0].network.as_str(), eps[1].network.as_str()),
        ("mynet", "other")
    );
    assert_eq!(eps[0].ipv4_address, "10.0.0.2");
    assert!(
        err(body("bridge", json!({"bridge": {}, "other": {}})))
            .contains("Container cannot be connected to network endpoints")
    );
    assert!(err(body("bridge", json!({"other": {}}))).starts_with("--network other"));
    let mac = json!({"Image": "b", "MacAddress": "02:42:0a:00:00:09",
        "HostConfig": {"NetworkMode": "mynet"}});
    let s = spec(mac, V150, "").unwrap();
    assert_eq!(
        s.network.unwrap().endpoints[0].mac_address,
        "02:42:0a:00:00:09"
    );
}

#[test]
fn versions_clear_what_they_do_not_know() {
    let body = json!({"Image": "b", "Cmd": "true",
        "HostConfig": {"ConsoleSize": [30, 100], "AutoRemove": true}});
    let v = |minor| ApiVersion { major: 1, minor };
    let s = spec(body.clone(), v(41), "").unwrap();
    let p = s.process.unwrap();
    assert_eq!((p.console_height, p.console_width), (0, 0));
    assert_eq!(p.cmd.unwrap().values, ["true"]);
    assert!(s.auto_remove);
    let s = spec(body.clone(), v(24), "").unwrap();
    assert!(!s.auto_remove);
    let p = spec(body, v(42), "").unwrap().process.unwrap();
    assert_eq!((p.console_height, p.console_width), (30, 100));
    let sub = json!({"Image": "b", "HostConfig": {"Mounts": [{"Type": "volume",
        "Source": "v", "Target": "/m", "VolumeOptions": {"Subpath": "a"}}]}});
    assert_eq!(
        spec(sub.clone(), v(44), "").unwrap_err().message,
        "VolumeOptions.Subpath needs API v1.45 or newer"
    );
    assert_eq!(spec(sub, v(45), "").unwrap().mounts[0].subpath, "a");
}

#[test]
fn read_only_binds_recurse_from_api_1_44() {
    let v = |minor| ApiVersion { major: 1, minor };
    let bind = |opts: Value| {
        json!({"Image": "b", "HostConfig": {"Binds": ["/h:/r:ro"], "Mounts": [{
            "Type": "bind", "Source": "/s", "Target": "/m", "ReadOnly": true,
            "BindOptions": opts}]}})
    };
    let s = spec(bind(json!({"NonRecursive": true})), v(44), "").unwrap();
    assert!(!s.default_read_only_non_recursive);
    assert!(s.mounts[1].non_recursive);
    let s = spec(bind(json!({"NonRecursive": true})), v(43), "").unwrap();
    assert!(s.default_read_only_non_recursive);
    assert!(s.mounts[1].non_recursive);
    // NonRecursive came with API 1.40.
    let s = spec(bind(json!({"NonRecursive": true})), v(39), "").unwrap();
    assert!(!s.mounts[1].non_recursive);
    let forced = bind(json!({"ReadOnlyForceRecursive": true}));
    assert_eq!(
        spec(forced.clone(), v(43), "").unwrap_err().message,
        "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"
    );
    assert!(spec(forced, v(44), "").unwrap().mounts[1].read_only_force_recursive);
    let writable = spec(bind(json!({"ReadOnlyNonRecursive": true})), v(44), "").unwrap();
    assert!(writable.mounts[1].read_only_non_recursive);
}

#[test]
fn bad_shapes_are_named() {
    let e = err(json!({"Image": "b", "Env": "A=1"}));
    assert!(e.starts_with("invalid JSON: Env:"), "{e}");
    assert_eq!(err(json!({"Cmd": ["x"]})), "no image specified");
    assert_eq!(err(json!([1])), "invalid JSON: not an object");
    assert_eq!(
        err(json!({"Image": "b", "HostConfig": {"Runtime": "kata"}})),
        "unknown or invalid runtime name: kata"
    );
    assert_eq!(
        err(json!({"Image": "b", "HostConfig": {"Isolation": "hyperv"}})),
        "invalid isolation 'hyperv' on linux"
    );
    assert_eq!(
        spec(json!({"Image": "b"}), V150, "linux/arm64")
            .unwrap_err()
            .message,
        "--platform linux/arm64 is not supported by Berth yet"
    );
}

/// Every row of the table: a refused field set to its sample is refused with a message
/// naming its flag and path; an honored or ignored one is accepted.
#[test]
fn keys_in_another_case_are_the_fields_they_name() {
    // docker-py sends CPURealtimeRuntime; Go reads it as CpuRealtimeRuntime.
    let e = err(json!({"Image": "b", "HostConfig": {"CPURealtimeRuntime": 1000}}));
    assert!(e.contains("--cpu-rt-runtime"), "{e}");
    let s = spec(
        json!({"image": "b", "hostconfig": {"memory": 8_388_608}, "TTY": true}),
        V150,
        "",
    )
    .unwrap();
    assert_eq!(s.image, "b");
    assert!(s.process.as_ref().is_some_and(|p| p.tty));
    assert_eq!(s.resources.as_ref().map(|r| r.memory), Some(8_388_608));
    let e = err(json!({"Image": "b", "HostConfig": {"Memory": 1, "memory": 2}}));
    assert!(e.contains(r#"both "Memory" and "memory""#), "{e}");
}

#[test]
fn every_field_in_the_table() {
    for field in FIELDS {
        let mut body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {}});
        let value: Value = serde_json::from_str(field.sample).unwrap();
        assert!(
            fields::is_set(field.path, &value),
            "{} sample unset",
            field.path
        );
        match field.path.split_once('.') {
            Some((_, key)) => body["HostConfig"][key] = value,
            None => body[field.path] = value,
        }
        let r = spec(body, V150, "");
        match field.support {
            Support::Refused(_) => {
                let e = r.expect_err(field.path).message;
                assert!(e.contains(field.flag) && e.contains(field.path), "{e}");
            }
            Support::Honored | Support::Ignored => {
                r.unwrap_or_else(|e| panic!("{}: {}", field.path, e.message));
            }
        }
    }
}

#[test]
fn oom_score_adj_reaches_the_spec() {
    let body = |v: Value| json!({"Image": "b", "HostConfig": {"OomScoreAdj": v}});
    let s = spec(body(json!(-500)), V150, "").unwrap();
    assert_eq!(s.resources.map(|r| r.oom_score_adj), Some(-500));
    // The runtime checks the range; what does not fit the spec's field is refused here, in
    // dockerd's words.
    assert_eq!(
        err(body(json!(10_000_000_000_i64))),
        "Invalid value 10000000000, range for oom score adj is [-1000, 1000]"
    );
}

/// Go matches keys case-insensitively at every level, not only at the top and in HostConfig:
/// a nested object's key in another case is the field it names.
#[test]
fn nested_keys_in_another_case_are_the_fields_they_name() {
    let s = spec(
        json!({"Image": "b", "HostConfig": {"RestartPolicy": {"name": "always"}}}),
        V150,
        "",
    )
    .unwrap();
    assert_eq!(
        s.restart_policy.map(|p| p.mode),
        Some(pb::restart_policy::Mode::Always as i32)
    );
    let e = err(json!({"Image": "b", "HostConfig": {"restartpolicy": {"name": "bogus"}}}));
    assert!(e.contains("unknown policy 'bogus'"), "{e}");
    let e = err(json!({"Image": "b", "HostConfig": {"LogConfig": {"type": "syslog"}}}));
    assert!(e.contains("--log-driver syslog"), "{e}");
    let e = err(
        json!({"Image": "b", "HostConfig": {"RestartPolicy": {"Name": "no", "name": "always"}}}),
    );
    assert!(e.contains(r#"both "Name" and "name""#), "{e}");
    let s = spec(
        json!({"Image": "b", "healthcheck": {"test": ["CMD", "true"], "interval": 2_000_000},
               "HostConfig": {
                   "mounts": [{"type": "tmpfs", "target": "/t",
                               "tmpfsoptions": {"sizebytes": 4096}}],
                   "portbindings": {"80/tcp": [{"hostport": "8080"}]},
                   "ulimits": [{"name": "nofile", "soft": 10, "hard": 20}],
                   "devices": [{"pathonhost": "/dev/null", "cgrouppermissions": "rwm"}],
                   "blkioWeightDevice": [{"path": "/dev/sda", "weight": 10}]},
               "networkingconfig": {"endpointsconfig": {"bridge": {
                   "ipamconfig": {"ipv4address": "172.17.0.9"}, "macaddress": "02:42:ac:11:00:09"}}}}),
        V150,
        "",
    )
    .unwrap();
    assert_eq!(s.health_check.map(|h| h.interval), Some(2_000_000));
    let m = &s.mounts[0];
    assert_eq!((m.target.as_str(), m.tmpfs_size), ("/t", 4096));
    let net = s.network.unwrap();
    assert_eq!(net.port_bindings[0].host_port, "8080");
    assert_eq!(net.endpoints[0].ipv4_address, "172.17.0.9");
    assert_eq!(net.endpoints[0].mac_address, "02:42:ac:11:00:09");
    let p = s.process.unwrap();
    assert_eq!((p.rlimits[0].soft, p.rlimits[0].hard), (10, 20));
    let r = s.resources.unwrap();
    assert_eq!(r.devices[0].path_on_host, "/dev/null");
    assert_eq!(r.blkio_weight_devices[0].weight, 10);
}
