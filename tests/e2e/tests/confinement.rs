//! Docker's default confinement of a container, through the real docker CLI: device nodes may
//! be created but only Docker's default devices used (as dockerd refuses the rest), on the v1
//! devices controller and the v2 device program alike.

use berth_testutil::BusyboxEngine;

/// The major and minor of the block device holding the host's root filesystem.
fn root_disk() -> (u32, u32) {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("the root mount");
    let (major, minor) = line.split(' ').nth(2).unwrap().split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

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
    let (major, minor) = root_disk();
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
