//! The local driver's options through the real docker CLI: a tmpfs volume mounted once on the
//! host while containers use it (so they share its data) and unmounted after the last; a bind
//! volume over a host directory; dockerd's errors for bad options and a failed mount; the
//! mount kept across a SIGKILL of the volumes service.

use std::io::{Read, Write};

use berth_testutil::{BusyboxEngine, eventually, unix_now};

/// The filesystem type mounted at `path` on the host, if any.
fn mounted_fs(path: &str) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4) == Some(&path)).then(|| f[sep + 1].to_owned())
    })
}

fn no_mounts_under(dir: &std::path::Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let d = dir.display().to_string();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&d)).collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn a_tmpfs_volume_is_shared_while_used_and_gone_after() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let since = unix_now().to_string();
    s.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m,uid=1234",
        "tv",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", "tv"])).unwrap();
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1234"})
    );
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_owned();
    assert_eq!(mounted_fs(&mp), None, "not mounted before its first use");

    s.docker(&[
        "run", "-d", "--name", "aa", "-v", "tv:/t", img, "sleep", "60",
    ]);
    assert_eq!(mounted_fs(&mp).as_deref(), Some("tmpfs"));
    // A second container shares the one filesystem.
    s.docker(&[
        "run",
        "--rm",
        "-v",
        "tv:/t",
        img,
        "sh",
        "-c",
        "echo shared > /t/f",
    ]);
    assert_eq!(s.docker(&["exec", "aa", "cat", "/t/f"]), "shared");
    assert_eq!(s.docker(&["exec", "aa", "stat", "-c", "%u", "/t"]), "1234");
    // The size holds.
    let (code, out, err) = s.status(&[
        "exec",
        "aa",
        "sh",
        "-c",
        "head -c 2097152 /dev/zero > /t/big",
    ]);
    assert_ne!(code, 0, "{out}{err}");
    let size: u64 = s
        .docker(&["exec", "aa", "stat", "-c", "%s", "/t/big"])
        .parse()
        .unwrap();
    assert!(size <= 1 << 20, "{size}");
    // Still used by "aa" after the other left; unmounted when "aa" goes.
    assert_eq!(mounted_fs(&mp).as_deref(), Some("tmpfs"));
    s.docker(&["rm", "-f", "aa"]);
    eventually("the tmpfs unmounted", || {
        mounted_fs(&mp).is_none().then_some(())
    });
    // A fresh tmpfs for the next user.
    assert_eq!(
        s.docker(&["run", "--rm", "-v", "tv:/t", img, "ls", "-A", "/t"]),
        ""
    );
    assert_eq!(mounted_fs(&mp), None);
    let until = (unix_now() + 1).to_string();
    let events = s.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--filter",
        "event=mount",
        "--format",
        "{{json .Actor.Attributes}}",
    ]);
    let first: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(first["destination"], "/t");
    assert_eq!(first["driver"], "local");
    assert_eq!(first["read/write"], "true");
    s.docker(&["volume", "rm", "tv"]);
    no_mounts_under(s.engine.dir.path());
}

#[test]
fn a_bind_volume_and_the_option_errors() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let dev = s.engine.dir.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("host"), "from host\n").unwrap();
    let device = format!("device={}", dev.display());
    s.docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        &device,
        "--opt",
        "o=bind",
        "bv",
    ]);
    assert_eq!(
        s.docker(&["run", "--rm", "-v", "bv:/b", img, "cat", "/b/host"]),
        "from host"
    );
    s.docker(&[
        "run",
        "--rm",
        "-v",
        "bv:/b",
        img,
        "sh",
        "-c",
        "echo back > /b/new",
    ]);
    assert_eq!(std::fs::read_to_string(dev.join("new")).unwrap(), "back\n");
    // Removing the volume leaves the device's files.
    s.docker(&["volume", "rm", "bv"]);
    assert!(dev.join("host").exists());

    // A device that does not exist fails at the first use, with dockerd's words.
    let gone = s.engine.dir.path().join("gone");
    let device = format!("device={}", gone.display());
    s.docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        &device,
        "--opt",
        "o=bind",
        "bad",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", "bad"])).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_owned();
    let (_, out) = s.fails(&["run", "--name", "failed", "-v", "bad:/b", img, "true"]);
    assert!(
        out.contains(&format!(
            "error while mounting volume '{mp}': failed to mount local volume: mount {}:{mp}, \
             flags: 0x1000: no such file or directory",
            gone.display()
        )),
        "{out}"
    );
    s.docker(&["rm", "failed"]);
    s.docker(&["volume", "rm", "bad"]);

    // The options checked as the local driver checks them.
    for (opts, want) in [
        (
            &["device=tmpfs"][..],
            "create x1: missing required option: \"type\"",
        ),
        (
            &["type=tmpfs"][..],
            "create x1: missing required option: \"device\"",
        ),
        (
            &["o=size=1m"][..],
            "create x1: missing required option: \"device\"",
        ),
        (&["bogus=1"][..], "create x1: invalid option: \"bogus\""),
    ] {
        let mut args = vec!["volume", "create"];
        for o in opts {
            args.extend(["--opt", o]);
        }
        args.push("x1");
        let (_, out) = s.fails(&args);
        assert!(out.contains(want), "{opts:?}: {out}");
    }
    let (_, out) = s.fails(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=x2,target=/x,volume-opt=type=tmpfs",
        img,
        "true",
    ]);
    assert!(
        out.contains("create x2: missing required option: \"device\""),
        "{out}"
    );
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");
    no_mounts_under(s.engine.dir.path());
}

#[test]
fn a_tmpfs_volume_stays_mounted_across_a_volumes_service_kill() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    s.docker(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "--mount",
        "type=volume,source=kv,target=/k,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
        img,
        "sh",
        "-c",
        "echo kept > /k/f; exec sleep 60",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", "kv"])).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_owned();
    assert_eq!(mounted_fs(&mp).as_deref(), Some("tmpfs"));
    s.engine.kill_and_await_restart("berth-volumes");
    eventually("the volumes service back", || {
        let (code, out, _) = s.status(&["volume", "ls", "-q"]);
        (code == 0).then_some(out)
    });
    assert_eq!(mounted_fs(&mp).as_deref(), Some("tmpfs"));
    assert_eq!(
        s.docker(&["run", "--rm", "-v", "kv:/k", img, "cat", "/k/f"]),
        "kept"
    );
    s.docker(&["rm", "-f", "keeper"]);
    eventually("the tmpfs unmounted", || {
        mounted_fs(&mp).is_none().then_some(())
    });
    s.docker(&["volume", "rm", "kv"]);
    no_mounts_under(s.engine.dir.path());
}

#[test]
fn volume_subpath_mounts_a_subdirectory_that_stays_inside() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    s.docker(&[
        "run",
        "--rm",
        "-v",
        "sp:/v",
        img,
        "sh",
        "-c",
        "mkdir -p /v/sub && echo s > /v/sub/f && ln -s /etc /v/out",
    ]);
    let at = |sub: &str| format!("type=volume,source=sp,target=/m,volume-subpath={sub}");
    assert_eq!(
        s.docker(&["run", "--rm", "--mount", &at("sub"), img, "cat", "/m/f"]),
        "s"
    );
    assert_eq!(
        s.docker(&["run", "--rm", "--mount", &at("sub"), img, "ls", "/m"]),
        "f"
    );
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", "sp"])).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_owned();
    let (_, out) = s.fails(&["run", "--rm", "--mount", &at("nope/x"), img, "true"]);
    assert!(
        out.contains(&format!(
            "cannot access path {mp}/nope/x: lstat {mp}/nope: no such file or directory"
        )),
        "{out}"
    );
    let (_, out) = s.fails(&["run", "--rm", "--mount", &at("out"), img, "true"]);
    assert!(
        out.contains(&format!(
            "path concatenation escapes the base directory, base: {mp}, subpath: out"
        )),
        "{out}"
    );
    let (_, out) = s.fails(&["create", "--mount", &at("../x"), img, "true"]);
    assert!(
        out.contains("subpath must be a relative path within the volume"),
        "{out}"
    );
    let (_, out) = s.fails(&[
        "create",
        "--mount",
        "type=volume,target=/m,volume-subpath=x",
        img,
        "true",
    ]);
    assert!(
        out.contains("must not set Subpath when using anonymous volumes"),
        "{out}"
    );
    s.docker(&["volume", "rm", "sp"]);
    assert_eq!(s.docker(&["ps", "-aq"]), "");
}

/// A start that fails before the process runs (here a 404: the subpath is missing) records
/// its error and exit code 128 as dockerd does, gives back the volume it mounted, and ends
/// the attaches waiting for it.
#[test]
fn a_failed_start_is_recorded_and_releases_what_it_took() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    s.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "tv",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", "tv"])).unwrap();
    let mp = v[0]["Mountpoint"].as_str().unwrap().to_owned();
    s.docker(&[
        "create",
        "--name",
        "fs",
        "--mount",
        "type=volume,source=tv,target=/t,volume-subpath=x",
        img,
        "true",
    ]);
    let want = format!("cannot access path {mp}/x: lstat {mp}/x: no such file or directory");
    let (_, out) = s.fails(&["start", "-a", "fs"]);
    assert!(out.contains(&want), "{out}");
    assert_eq!(mounted_fs(&mp), None, "the tmpfs is unmounted again");
    assert_eq!(
        s.docker(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.State.Error}}",
            "fs"
        ]),
        format!("128 {want}")
    );
    // An attach queued before the failed start ends with it (the CLI's attach refuses a
    // container that is not running, so through the API as an SDK attaches).
    let mut attach = s.engine.api_socket();
    write!(
        attach,
        "POST /containers/fs/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        attach
            .read_exact(&mut b)
            .expect("the attach's response head");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s.fails(&["start", "fs"]);
    let mut rest = Vec::new();
    attach
        .read_to_end(&mut rest)
        .expect("the attach ends with the failed start");
    s.docker(&["rm", "fs"]);
    s.docker(&["volume", "rm", "tv"]);
    no_mounts_under(s.engine.dir.path());
}

/// A start that fails in the shim (a bind source removed after create) removes an AutoRemove
/// container, so a waiter for its removal wakes, and leaves no mounts behind.
#[test]
fn a_start_failing_in_the_shim_still_removes_an_auto_remove_container() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let src = s.engine.dir.path().join("gone");
    std::fs::create_dir_all(&src).unwrap();
    let bind = format!("type=bind,source={},target=/b", src.display());
    let id = s.docker(&["create", "--rm", "--mount", &bind, img, "true"]);
    std::fs::remove_dir(&src).unwrap();
    let mut wait = s.engine.docker_cmd();
    let mut wait = wait
        .args(["wait", &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (_, out) = s.fails(&["start", &id]);
    assert!(
        out.to_lowercase().contains("no such file or directory"),
        "{out}"
    );
    eventually("the container removed", || {
        s.docker(&["ps", "-aq"]).is_empty().then_some(())
    });
    eventually("the waiter woke", || wait.try_wait().unwrap());
    no_mounts_under(s.engine.dir.path());
}
