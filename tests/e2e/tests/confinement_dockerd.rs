//! Confinement side by side with Debian's dockerd: the same `docker run` flags and the same
//! script, in a Berth container and in a dockerd container of the same busybox image, must
//! print the same and exit the same (capabilities, no-new-privileges, seccomp, device rules,
//! masked and read-only paths, `--read-only`, sysctls, ulimits, the mount table).

use berth_testutil::{BusyboxEngine, Dockerd};

/// (what is compared, `docker run` flags, the script run by `sh -c`).
fn cases(profile: &str) -> Vec<(&'static str, Vec<String>, String)> {
    let status = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status".to_owned();
    let flags = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        ("default status", flags(&[]), status.clone()),
        (
            "cap-add",
            flags(&["--cap-add", "net_admin"]),
            status.clone(),
        ),
        (
            "cap-drop ALL, add KILL",
            flags(&["--cap-drop", "ALL", "--cap-add", "KILL"]),
            status.clone(),
        ),
        ("cap-drop", flags(&["--cap-drop", "CHOWN"]), status.clone()),
        // Not `--privileged`: Debian's runc 1.1.5 fails to apply every capability here
        // (`unable to apply caps`), while dockerd 28's runc gives the host's own set, as Berth
        // does (checked in confinement.rs).
        (
            "no-new-privileges",
            flags(&["--security-opt", "no-new-privileges"]),
            status.clone(),
        ),
        (
            "unconfined",
            flags(&["--security-opt", "seccomp=unconfined"]),
            status,
        ),
        (
            "a char device: made, not usable",
            flags(&[]),
            "mknod /dev/k c 1 11 && echo made; echo hi > /dev/k; echo $?".to_owned(),
        ),
        ("the host's disk: made, not readable", flags(&[]), {
            let (major, minor) = berth_testutil::root_disk();
            format!(
                "mknod /dev/d b {major} {minor} && echo made; head -c1 /dev/d > /dev/null; \
                     echo $?"
            )
        }),
        (
            "user namespace under the default profile",
            flags(&[]),
            "unshare -U true; echo $?".to_owned(),
        ),
        (
            "user namespace unconfined",
            flags(&["--security-opt", "seccomp=unconfined"]),
            "unshare -U true; echo $?".to_owned(),
        ),
        (
            "a profile denying mkdir",
            vec!["--security-opt".to_owned(), format!("seccomp={profile}")],
            "mkdir /x; echo $?; touch /y; echo $?".to_owned(),
        ),
        (
            "read-only root",
            flags(&["--read-only"]),
            "for p in /x /tmp/x /dev/shm/x /etc/hosts; do touch $p; echo $p $?; done".to_owned(),
        ),
        (
            "masked and read-only paths",
            flags(&[]),
            "head -c 16 /proc/kcore | wc -c; ls /sys/firmware | wc -l; \
             echo x > /proc/sys/kernel/domainname; echo $?; echo 1 > /proc/sysrq-trigger; echo $?"
                .to_owned(),
        ),
        (
            "a namespaced sysctl",
            flags(&["--sysctl", "net.ipv4.ip_forward=1"]),
            "cat /proc/sys/net/ipv4/ip_forward".to_owned(),
        ),
        (
            "ulimits",
            flags(&["--ulimit", "nofile=100:200"]),
            "ulimit -n; ulimit -Hn".to_owned(),
        ),
        ("default devices", flags(&[]), "ls -1 /dev".to_owned()),
        (
            "the mount table",
            flags(&[]),
            "awk '{print $5, $6}' /proc/self/mountinfo | sort".to_owned(),
        ),
    ]
}

/// Where Berth follows dockerd 28 and Debian's dockerd 20.10 differs: (case, line in Berth's
/// output, the same line in dockerd 20.10's, empty when it has none).
const NEWER_THAN_DOCKERD_20: &[(&str, &str, &str)] = &[
    // moby 25 added /proc/interrupts to the masked paths.
    ("the mount table", "/proc/interrupts rw,nosuid", ""),
    // runc 1.1.5 leaves the v1 cgroup tmpfs writable (its hierarchies are read-only); the
    // OCI spec dockerd writes asks for it read-only, as Berth mounts it.
    (
        "the mount table",
        "/sys/fs/cgroup ro,nosuid,nodev,noexec,relatime",
        "/sys/fs/cgroup rw,nosuid,nodev,noexec,relatime",
    ),
];

/// Berth's output with the lines of `NEWER_THAN_DOCKERD_20` put as dockerd 20.10 prints them.
fn as_dockerd_20(what: &str, out: &str) -> String {
    if !NEWER_THAN_DOCKERD_20.iter().any(|(case, ..)| *case == what) {
        return out.to_owned();
    }
    let mut lines: Vec<&str> = out.lines().collect();
    for (case, ours, theirs) in NEWER_THAN_DOCKERD_20 {
        if *case != what {
            continue;
        }
        if let Some(i) = lines.iter().position(|l| l == ours) {
            if theirs.is_empty() {
                lines.remove(i);
            } else {
                lines[i] = theirs;
            }
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A `docker run`'s exit code and output (stdout then stderr).
fn outcome(out: std::process::Output) -> (Option<i32>, String) {
    let (o, e) = berth_testutil::text(&out);
    (out.status.code(), format!("{o}{e}"))
}

#[test]
fn the_same_flags_confine_as_dockerd_does() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);

    let mut differ = Vec::new();
    for (what, flags, script) in cases(profile.to_str().unwrap()) {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([s.image.as_str(), "sh", "-c", script.as_str()]);
        let (code, out) = outcome(s.engine.docker(&args));
        let berth = (code, as_dockerd_20(what, &out));
        let dockerd = outcome(dk.docker(&args));
        if berth != dockerd {
            differ.push(format!(
                "{what} ({flags:?}):\n  berth   {berth:?}\n  dockerd {dockerd:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
