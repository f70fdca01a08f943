//! Docker's default confinement of a container, through the real docker CLI: device nodes may
//! be created but only Docker's default devices used (as dockerd refuses the rest), on the v1
//! devices controller and the v2 device program alike.

use berth_testutil::BusyboxEngine;

#[test]
fn only_dockers_default_devices_are_usable() {
    let s = BusyboxEngine::new();
    // The kernel log (c 1:11): the node can be made, not written (dockerd: the same).
    let (code, _, err) = s.status(&[
        "run",
        "--rm",
        &s.image,
        "sh",
        "-c",
        "mknod /dev/k c 1 11 && echo hi > /dev/k",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    // The host's disk: the node can be made, not read.
    let (major, minor) = berth_testutil::root_disk();
    let (code, _, err) = s.status(&[
        "run",
        "--rm",
        &s.image,
        "sh",
        "-c",
        &format!("mknod /dev/d b {major} {minor} && head -c 1 /dev/d"),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    // The default devices work.
    let out = s.docker(&[
        "run", "--rm", &s.image, "sh", "-c",
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && echo ok > /dev/full; test -c /dev/ptmx && echo done",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["4", "4", "done"]
    );
    // A terminal: the container's pseudo-terminals are usable.
    let (code, out, err) = s.status(&[
        "run",
        "--rm",
        "-t",
        &s.image,
        "sh",
        "-c",
        "tty && echo t > $(tty)",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/dev/pts/0"), "{out}");
}

#[test]
fn the_rules_are_in_the_devices_controller() {
    let s = BusyboxEngine::new();
    let id = s.docker(&["run", "-d", &s.image, "sleep", "60"]);
    // Where the v1 devices controller is mounted (this test host); v2 hosts have the program
    // only, which the shim's own root tests check.
    if std::path::Path::new("/sys/fs/cgroup/devices").is_dir() {
        let list =
            std::fs::read_to_string(format!("/sys/fs/cgroup/devices/berth/{id}/devices.list"))
                .unwrap();
        let mut rules: Vec<&str> = list.lines().collect();
        rules.sort_unstable();
        assert_eq!(
            rules,
            [
                "b *:* m",
                "c *:* m",
                "c 136:* rwm",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
            ]
        );
    }
    s.docker(&["rm", "-f", &id]);
}

/// `/proc/self/status` field `key` inside a container run with `flags`.
fn status_field(s: &BusyboxEngine, flags: &[&str], key: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    let script = format!("grep '^{key}:' /proc/self/status");
    args.extend_from_slice(&[&s.image, "sh", "-c", &script]);
    s.docker(&args)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn capabilities_no_new_privileges_and_ulimits_as_asked() {
    let s = BusyboxEngine::new();
    // Docker's default set, as dockerd gives it.
    assert_eq!(status_field(&s, &[], "CapEff"), "00000000a80425fb");
    // CAP_NET_ADMIN is bit 12.
    assert_eq!(
        status_field(&s, &["--cap-add", "net_admin"], "CapEff"),
        "00000000a80435fb"
    );
    // Only CAP_KILL (bit 5).
    assert_eq!(
        status_field(&s, &["--cap-drop", "ALL", "--cap-add", "KILL"], "CapEff"),
        "0000000000000020"
    );
    assert_eq!(
        status_field(&s, &["--cap-drop", "CHOWN"], "CapEff"),
        "00000000a80425fa"
    );
    let (_, out) = s.fails(&["create", "--cap-add", "BOGUS", &s.image, "true"]);
    assert!(
        out.contains(r#"unknown capability: \"CAP_BOGUS\""#) || out.contains("unknown capability"),
        "{out}"
    );

    assert_eq!(status_field(&s, &[], "NoNewPrivs"), "0");
    assert_eq!(
        status_field(&s, &["--security-opt", "no-new-privileges"], "NoNewPrivs"),
        "1"
    );

    let out = s.docker(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=100:200",
        &s.image,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["100", "200"]);
    let id = s.docker(&[
        "create",
        "--ulimit",
        "nofile=100:200",
        "--cap-add",
        "SYS_TIME",
        &s.image,
    ]);
    let v = s.inspect(&id);
    assert_eq!(
        v["HostConfig"]["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 100, "Hard": 200}])
    );
    assert_eq!(
        v["HostConfig"]["CapAdd"],
        serde_json::json!(["CAP_SYS_TIME"])
    );
    s.docker(&["rm", &id]);
}

#[test]
fn host_namespaces_and_system_paths() {
    let s = BusyboxEngine::new();
    let host = |p: &str| std::fs::read_link(p).unwrap().display().to_string();
    let inside = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&s.image, "sh", "-c", script]);
        s.docker(&args)
    };
    // Private by default, the host's when asked.
    let ipc = host("/proc/self/ns/ipc");
    assert_ne!(inside(&[], "readlink /proc/self/ns/ipc"), ipc);
    assert_eq!(
        inside(&["--ipc", "host"], "readlink /proc/self/ns/ipc"),
        ipc
    );
    let pid = host("/proc/self/ns/pid");
    assert_eq!(
        inside(&["--pid", "host"], "readlink /proc/self/ns/pid"),
        pid
    );
    assert_eq!(inside(&[], "echo $$"), "1");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(inside(&["--uts", "host"], "hostname"), hostname.trim());
    let (_, out) = s.fails(&["create", "--uts", "host", "--hostname", "x", &s.image]);
    assert!(
        out.contains("conflicting options: hostname and the UTS mode"),
        "{out}"
    );
    // Docker's masked paths (/dev/null over /proc/timer_list), and none with
    // systempaths=unconfined.
    let masks = "grep -c ' /proc/timer_list ' /proc/self/mountinfo || true";
    assert_eq!(inside(&[], masks), "1");
    assert_eq!(
        inside(&["--security-opt", "systempaths=unconfined"], masks),
        "0"
    );
}

#[test]
fn group_add_shm_size_and_sysctls() {
    let s = BusyboxEngine::new();
    // Names from the image's /etc/group, numbers as they are.
    let out = s.docker(&[
        "run",
        "--rm",
        "--group-add",
        "nogroup",
        "--group-add",
        "1234",
        &s.image,
        "id",
        "-G",
    ]);
    let mut groups: Vec<&str> = out.split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, ["0", "1234", "65534"]);
    let (code, _, err) = s.status(&["run", "--rm", "--group-add", "nosuch", &s.image, "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("unable to find group nosuch"), "{err}");
    // /dev/shm: 64 MiB, or what was asked.
    let shm = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&s.image, "sh", "-c", "df -k /dev/shm | tail -1"]);
        s.docker(&args)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(shm(&[]), "65536");
    assert_eq!(shm(&["--shm-size", "8m"]), "8192");
    // A namespaced sysctl applies inside only.
    let host_value = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let inside = s.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        &s.image,
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    assert_eq!(inside, "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_value
    );
    let inside = s.docker(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.shmmni=1000",
        &s.image,
        "cat",
        "/proc/sys/kernel/shmmni",
    ]);
    assert_eq!(inside, "1000");
    let (_, out) = s.fails(&[
        "create",
        "--ipc",
        "host",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        &s.image,
    ]);
    assert!(
        out.contains("not allowed with the host's IPC namespace"),
        "{out}"
    );
    let (_, out) = s.fails(&[
        "create",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        &s.image,
    ]);
    assert!(
        out.contains("not allowed in host network namespace"),
        "{out}"
    );
}

#[test]
fn devices_rules_and_privileged() {
    let s = BusyboxEngine::new();
    // --device: the host's node at another path, with the access asked for.
    let out = s.docker(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull:rw",
        &s.image,
        "sh",
        "-c",
        "echo x > /dev/mynull && ls -l /dev/mynull",
    ]);
    assert!(out.starts_with('c') && out.contains("1,   3"), "{out}");
    let (code, _, err) = s.status(&["run", "--rm", "--device", "/dev/nope", &s.image, "true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("error gathering device information while adding custom device"),
        "{err}"
    );
    // --device-cgroup-rule: a device with no driver (c 42:0) may be opened for reading (the
    // driver then answers ENXIO) but not for writing (the cgroup answers EPERM).
    let script = "mknod /dev/x c 42 0; (: < /dev/x) 2>&1; (: > /dev/x) 2>&1; true";
    let out = s.docker(&["run", "--rm", &s.image, "sh", "-c", script]);
    assert_eq!(out.matches("Operation not permitted").count(), 2, "{out}");
    let out = s.docker(&[
        "run",
        "--rm",
        "--device-cgroup-rule",
        "c 42:* rm",
        &s.image,
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("No such device or address"), "{out}");
    assert!(lines[1].contains("Operation not permitted"), "{out}");

    // --privileged: every capability the host has, its devices, no masked paths.
    let bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_owned()))
        .unwrap();
    let out = s.docker(&[
        "run",
        "--rm",
        "--privileged",
        &s.image,
        "sh",
        "-c",
        "grep '^CapEff:' /proc/self/status; test -b /dev/vda -o -b /dev/sda && echo disk; \
         grep -c ' /proc/timer_list ' /proc/self/mountinfo || true; \
         grep ' /sys ' /proc/self/mountinfo | grep -c ' rw,' || true",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().nth(1),
        Some(bounding.as_str()),
        "{out}"
    );
    assert_eq!(&lines[1..], ["disk", "0", "1"], "{out}");
    let id = s.docker(&["create", "--privileged", &s.image]);
    let v = s.inspect(&id);
    assert_eq!(v["HostConfig"]["Privileged"], true);
    assert_eq!(v["HostConfig"]["MaskedPaths"], serde_json::json!([]));
    s.docker(&["rm", &id]);
}
