//! Seccomp as dockerd applies it, through the real docker CLI: Docker's default profile on
//! every container (`Seccomp: 2`, namespaces refused unless CAP_SYS_ADMIN is added, clone3
//! answering ENOSYS so that glibc's threads fall back to clone), `seccomp=unconfined` and
//! `--privileged` without a filter, a custom profile's errno, a bad profile refused.

#![allow(clippy::disallowed_methods)] // cc builds the in-container checker

use std::{path::Path, process::Command};

use berth_testutil::{BusyboxEngine, EngineOptions};

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

/// `docker run --rm FLAGS busybox sh -c SCRIPT`: (exit code, stdout + stderr).
fn run(s: &BusyboxEngine, flags: &[&str], script: &str) -> (i32, String) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&s.image, "sh", "-c", script]);
    let (code, o, e) = s.status(&args);
    (code, format!("{o}{e}"))
}

#[test]
fn default_profile_unconfined_and_privileged() {
    let s = BusyboxEngine::new();
    assert_eq!(status_field(&s, &[], "Seccomp"), "2");
    // The filter is loaded on the no-new-privileges path too, and under --init.
    assert_eq!(
        status_field(&s, &["--security-opt", "no-new-privileges"], "Seccomp"),
        "2"
    );
    assert_eq!(status_field(&s, &["--init"], "Seccomp"), "2");
    assert_eq!(
        status_field(&s, &["--security-opt", "seccomp=unconfined"], "Seccomp"),
        "0"
    );
    assert_eq!(status_field(&s, &["--privileged"], "Seccomp"), "0");
    assert_eq!(
        status_field(&s, &["--security-opt", "seccomp=builtin"], "Seccomp"),
        "2"
    );

    // A user namespace needs no capability, only the filter stops it (dockerd: the same).
    let (code, out) = run(&s, &[], "unshare -U true");
    assert_ne!(code, 0);
    assert!(out.contains("Operation not permitted"), "{out}");
    let (code, out) = run(
        &s,
        &["--security-opt", "seccomp=unconfined"],
        "unshare -U true",
    );
    assert_eq!(code, 0, "{out}");
    // CAP_SYS_ADMIN opens the profile's capability group (unshare, clone with namespaces).
    let (code, out) = run(&s, &["--cap-add", "SYS_ADMIN"], "unshare -U true");
    assert_eq!(code, 0, "{out}");
    // swapoff is refused by the filter even with CAP_SYS_ADMIN.
    let (code, out) = run(&s, &["--cap-add", "SYS_ADMIN"], "swapoff /nonexistent");
    assert_ne!(code, 0);
    assert!(out.contains("Operation not permitted"), "{out}");
    let (_, out) = run(
        &s,
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
        ],
        "swapoff /nonexistent",
    );
    assert!(out.contains("No such file"), "{out}");

    // An exec in a confined container is confined as well.
    let id = s.docker(&["run", "-d", &s.image, "sleep", "60"]);
    let (code, out, err) = s.status(&["exec", &id, "sh", "-c", "unshare -U true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Operation not permitted"),
        "{code} {out:?} {err:?}"
    );
    let out = s.docker(&["exec", &id, "grep", "^Seccomp:", "/proc/self/status"]);
    assert!(out.ends_with('2'), "{out}");
    s.docker(&["rm", "-f", &id]);

    let info = s.api_get("/info");
    assert!(
        info["SecurityOptions"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("name=seccomp,profile=builtin")),
        "{}",
        info["SecurityOptions"]
    );
}

#[test]
fn a_custom_profile_and_a_bad_one() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ]
        }"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let (code, out) = run(&s, &["--security-opt", &opt], "mkdir /x");
    assert_ne!(code, 0);
    assert!(out.contains("Permission denied"), "{out}");
    let (code, out) = run(
        &s,
        &["--security-opt", &opt],
        "touch /x && rmdir /tmp && echo ok",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok"), "{out}");
    // Inspect shows the profile as the CLI sent it (compacted), as dockerd does.
    let id = s.docker(&["create", "--security-opt", &opt, &s.image]);
    let v = s.inspect(&id);
    assert_eq!(
        v["HostConfig"]["SecurityOpt"],
        serde_json::json!([
            r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#
        ])
    );
    s.docker(&["rm", &id]);

    // A profile that does not decode, or names an unknown action: refused at create.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}"#,
    )
    .unwrap();
    let (_, out) = s.fails(&[
        "create",
        "--security-opt",
        &format!("seccomp={}", bad.display()),
        &s.image,
    ]);
    assert!(out.contains("Decoding seccomp profile failed"), "{out}");
    std::fs::write(&bad, r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#).unwrap();
    let (_, out) = s.fails(&[
        "create",
        "--security-opt",
        &format!("seccomp={}", bad.display()),
        &s.image,
    ]);
    assert!(out.contains("unknown action"), "{out}");
}

/// daemon.json's `seccomp-profile` is the profile of containers that name none; their own
/// `seccomp=` option still wins, and `docker info` names the file with dockerd's warning.
#[test]
fn the_daemon_profile_is_the_containers_default() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("daemon-no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        }"#,
    )
    .unwrap();
    let s = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            config: Some(serde_json::json!({"seccomp-profile": profile})),
            ..EngineOptions::default()
        },
    );
    let (code, out) = run(&s, &[], "mkdir /x");
    assert_ne!(code, 0);
    assert!(out.contains("Operation not permitted"), "{out}");
    // An exec in such a container is filtered the same way.
    let id = s.docker(&["run", "-d", &s.image, "sleep", "60"]);
    let (code, _, err) = s.status(&["exec", &id, "mkdir", "/y"]);
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    s.docker(&["rm", "-f", &id]);
    // The container's own choice wins: off, or Docker's default.
    let (code, out) = run(
        &s,
        &["--security-opt", "seccomp=unconfined"],
        "mkdir /x && grep ^Seccomp: /proc/self/status",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with('0'), "{out}");
    let (code, out) = run(
        &s,
        &["--security-opt", "seccomp=builtin"],
        "mkdir /x && grep ^Seccomp: /proc/self/status",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.trim_end().ends_with('2'), "{out}");
    // --privileged runs unconfined, as with dockerd.
    let (code, out) = run(&s, &["--privileged"], "mkdir /x");
    assert_eq!(code, 0, "{out}");

    let info = s.api_get("/info");
    let entry = format!("name=seccomp,profile={}", profile.display());
    assert!(
        info["SecurityOptions"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(entry)),
        "{}",
        info["SecurityOptions"]
    );
    assert!(
        info["Warnings"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "WARNING: daemon is not using the default seccomp profile"
            )),
        "{}",
        info["Warnings"]
    );
}

/// A static glibc program: a thread (glibc tries clone3 first and falls back to clone on
/// ENOSYS) and a raw clone3 (its errno).
const CHECKER: &str = r#"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *run(void *a) { return a; }
int main(void) {
    pthread_t t;
    if (pthread_create(&t, 0, run, 0) != 0 || pthread_join(t, 0) != 0) { puts("thread failed"); return 1; }
    long r = syscall(SYS_clone3, 0, 0);
    printf("thread ok, clone3 errno %d\n", r < 0 ? errno : 0);
    return 0;
}
"#;

fn build_checker(dir: &Path) {
    std::fs::write(dir.join("c.c"), CHECKER).unwrap();
    let out = Command::new("cc")
        .args(["-static", "-O2", "-pthread", "-o"])
        .arg(dir.join("checker"))
        .arg(dir.join("c.c"))
        .output()
        .expect("cc (gcc and libc6-dev) builds the in-container checker");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn glibc_threads_fall_back_from_clone3() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    build_checker(dir.path());
    let vol = format!("{}:/t:ro", dir.path().display());
    let out = s.docker(&["run", "--rm", "-v", &vol, &s.image, "/t/checker"]);
    assert_eq!(out, "thread ok, clone3 errno 38");
    // Unconfined, the kernel answers for itself (EINVAL for a zero-sized clone_args).
    let out = s.docker(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "-v",
        &vol,
        &s.image,
        "/t/checker",
    ]);
    assert_eq!(out, "thread ok, clone3 errno 22");
}
