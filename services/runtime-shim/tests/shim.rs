//! The shim end to end, as root: real namespaces, a real overlay root filesystem (a busybox
//! directory as its only lowerdir), real cgroups, the real binary started as the runtime
//! starts it, and its gRPC API on its socket.

mod common;

use berth_shim_proto::v1 as pb;
use common::{
    Bundle, attach_and_start, collect, connect, eventually, is_berth_shim, kill_and_delete, rss_kib,
};
use serde_json::json;

fn sh(script: &str) -> Vec<&str> {
    vec!["sh", "-c", script]
}

#[tokio::test]
async fn echo_logs_to_json_file_and_delete_leaves_nothing() {
    let b = Bundle::new(&["echo", "hello"]);
    let c = b.run().await;
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!(exit.exit_code, 0);
    assert_eq!(exit.signal, 0);
    let log = b.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["log"], "hello\n");
    assert_eq!(log[0]["stream"], "stdout");
    assert!(log[0]["time"].as_str().unwrap().ends_with('Z'));
    let on_disk = b.read_json("exit.json").expect("exit.json");
    assert_eq!(on_disk["exit_code"], 0);
    assert!(on_disk["exited_at"].as_str().unwrap().contains('T'));
    assert!(on_disk.get("signal").is_none());

    let state = c.state(pb::StateRequest {}).await.unwrap();
    assert_eq!(state.status, pb::Status::Stopped as i32);
    assert_eq!(state.id, b.id);

    let shim_pid = b.shim_pid().unwrap();
    let del = c.delete(pb::DeleteRequest {}).await.unwrap();
    assert_eq!(del.exit.unwrap().exit_code, 0);
    drop(c);
    b.assert_gone(shim_pid).await;
    assert!(b.dir.join("exit.json").exists(), "exit.json stays");
}

#[tokio::test]
async fn exit_code_is_recorded() {
    let b = Bundle::new(&sh("exit 3"));
    let c = b.run().await;
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!(exit.exit_code, 3);
    assert_eq!(b.read_json("exit.json").unwrap()["exit_code"], 3);
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

/// PID 1, hostname, /etc files, the overlay as /, read-only /proc/sys, masked paths, /dev.
#[tokio::test]
async fn isolation_inside_the_container() {
    // /proc/kcore does not exist on every kernel (not on this VM's): check the first masked
    // file that the host has.
    let masked = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("a masked /proc file exists on the host");
    let script = format!(
        "echo pid=$$; echo host=$(hostname); echo etc=$(cat /etc/hostname); \
         grep -c nameserver /etc/resolv.conf; \
         awk '$5 == \"/\" {{print \"root=\" $9}}' /proc/self/mountinfo; \
         if echo 1 > /proc/sys/kernel/domainname; then echo procsys=rw; else echo procsys=ro; fi; \
         if touch /sys/x 2>/dev/null; then echo sys=rw; else echo sys=ro; fi; \
         echo masked=$(wc -c < {masked}); \
         ls -l /dev/null | cut -c1; ls /dev/pts/ptmx; test -d /dev/shm && echo shm; \
         test -d /dev/mqueue && echo mqueue; \
         echo caps=$(grep CapEff /proc/self/status | cut -f2); \
         echo netdevs=$(tail -n +3 /proc/net/dev | wc -l); \
         echo cgroupns=$(grep -cv ':/$' /proc/self/cgroup)"
    );
    let b = Bundle::new(&sh(&script));
    let c = b.run().await;
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    let out = b.stdout();
    assert_eq!(exit.exit_code, 0, "{out}\n{:?}", b.log());
    let short = &b.id[..12];
    for want in [
        "pid=1\n".to_owned(),
        format!("host={short}\n"),
        "etc=from-file\n".to_owned(),
        "root=overlay\n".to_owned(),
        "procsys=ro\n".to_owned(),
        "sys=ro\n".to_owned(),
        "masked=0\n".to_owned(),
        "c\n".to_owned(),
        "/dev/pts/ptmx\n".to_owned(),
        "shm\n".to_owned(),
        "mqueue\n".to_owned(),
        // Docker's 14 default capabilities.
        "caps=00000000a80425fb\n".to_owned(),
        // A new netns: only lo.
        "netdevs=1\n".to_owned(),
        // A cgroup namespace rooted at the container's cgroup: every line ends in ":/".
        "cgroupns=0\n".to_owned(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn hostname_option_and_user_change() {
    let b = Bundle::new(&sh(
        "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); hostname; grep CapEff /proc/self/status",
    ))
    .with(|c| {
        c["hostname"] = json!("web1");
        c["process"]["user"] = json!({"uid": 65534, "gid": 65534, "additional_gids": [10]});
    });
    let c = b.run().await;
    assert_eq!(c.wait(pb::WaitRequest {}).await.unwrap().exit_code, 0);
    let out = b.stdout();
    assert!(out.contains("uid=65534 gid=65534"), "{out}");
    assert!(out.contains("10"), "additional gid: {out}");
    assert!(out.contains("web1\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn exec_into_a_running_container_and_rss() {
    let b = Bundle::new(&["sleep", "1000"]);
    let c = b.run().await;
    let shim_pid = b.shim_pid().unwrap();
    let state = c.state(pb::StateRequest {}).await.unwrap();
    assert_eq!(state.status, pb::Status::Running as i32);

    let exec = |args: &[&str]| pb::ExecRequest {
        exec_id: String::new(),
        process: Some(pb::ProcessSpec {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: vec!["PATH=/bin".to_owned()],
            ..Default::default()
        }),
    };
    let id = c
        .exec(exec(&[
            "sh",
            "-c",
            "echo hi; echo err >&2; echo pid=$$; hostname",
        ]))
        .await
        .unwrap()
        .exec_id;
    let (stream, started) = attach_and_start(&c, &id).await;
    assert!(started.error.is_none(), "{:?}", started.error);
    assert!(started.pid > 0);
    let (out, err) = collect(stream).await;
    let st = c
        .exec_wait(pb::ExecWaitRequest {
            exec_id: id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(st.exit_code, 0);
    assert!(out.starts_with("hi\n"), "{out}");
    assert_eq!(err, "err\n");
    // In the container's pid namespace (not PID 1) and its uts namespace.
    assert!(!out.contains("pid=1\n") && out.contains("pid="), "{out}");
    assert!(out.contains(&b.id[..12]), "{out}");
    assert!(!b.stdout().contains("hi"), "exec output is not logged");

    // An exec's output before anyone attached is kept for the first attacher.
    let id2 = c.exec(exec(&["sh", "-c", "exit 5"])).await.unwrap().exec_id;
    c.exec_start(pb::ExecStartRequest {
        exec_id: id2.clone(),
    })
    .await
    .unwrap();
    let st = c
        .exec_wait(pb::ExecWaitRequest {
            exec_id: id2.clone(),
        })
        .await
        .unwrap();
    assert_eq!(st.exit_code, 5);
    let es = c
        .exec_state(pb::ExecStateRequest { exec_id: id2 })
        .await
        .unwrap();
    assert_eq!(es.status, pb::Status::Stopped as i32);

    let missing = c.exec(exec(&["nope"])).await.unwrap().exec_id;
    let r = c
        .exec_start(pb::ExecStartRequest { exec_id: missing })
        .await
        .unwrap();
    assert_eq!(r.error.unwrap().kind, "not-found");

    let [rss, anon, file, pss, private] = rss_kib(shim_pid);
    eprintln!(
        "shim memory with a running container after 3 execs ({}): VmRSS {rss} KiB \
         (RssAnon {anon}, RssFile {file}), Pss {pss} KiB, private {private} KiB",
        common::shim_bin().display()
    );
    assert!(rss > 0);

    let exit = kill_and_delete(&c).await;
    assert_eq!((exit.exit_code, exit.signal), (137, 9));
    drop(c);
    b.assert_gone(shim_pid).await;
}

/// SIGTERM kills a process that is not its pid namespace's init (the kernel protects an
/// init without a handler, as it does in Docker): with the host's pid namespace the exit is
/// recorded with the signal; with `init` the tiny init forwards it and exits 128 + 15.
#[tokio::test]
async fn sigterm_is_recorded() {
    let b = Bundle::new(&["sleep", "1000"]).with(|c| {
        c["namespaces"] = json!({"pid": false});
    });
    let c = b.run().await;
    c.kill(pb::KillRequest {
        exec_id: String::new(),
        signal: 15,
        all: false,
    })
    .await
    .unwrap();
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!((exit.exit_code, exit.signal), (143, 15));
    let on_disk = b.read_json("exit.json").unwrap();
    assert_eq!(on_disk["signal"], 15);
    c.delete(pb::DeleteRequest {}).await.unwrap();

    let b = Bundle::new(&sh("echo $$; exec sleep 1000")).with(|c| c["init"] = json!(true));
    let c = b.run().await;
    // The init is PID 1; the process is its child.
    eventually("the process's output", || {
        b.stdout().contains("2\n").then_some(())
    })
    .await;
    c.kill(pb::KillRequest {
        exec_id: String::new(),
        signal: 15,
        all: false,
    })
    .await
    .unwrap();
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!(exit.exit_code, 143);
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn shim_survives_its_launcher() {
    let b = Bundle::new(&["sleep", "1000"]);
    std::fs::write(
        b.dir.join("config.json"),
        serde_json::to_vec(&b.config).unwrap(),
    )
    .unwrap();
    // The launcher is a shell that starts the shim and is then SIGKILLed.
    let script = format!(
        "{} start --bundle {} > {}/addr; kill -9 $$",
        common::shim_bin().display(),
        b.dir.display(),
        b.tmp.path().display()
    );
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(!status.success(), "the launcher was killed");
    let address = std::fs::read_to_string(b.tmp.path().join("addr")).unwrap();
    let shim_pid = b.shim_pid().unwrap();
    assert!(is_berth_shim(shim_pid));
    let status = std::fs::read_to_string(format!("/proc/{shim_pid}/status")).unwrap();
    let ppid: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(ppid, std::process::id() as i32);
    // A fresh client, as a restarted runtime would make from <bundle>/address.
    let on_disk = std::fs::read_to_string(b.dir.join("address")).unwrap();
    assert_eq!(on_disk.trim(), address.trim());
    let c = connect(on_disk.trim()).await;
    let state = c.state(pb::StateRequest {}).await.unwrap();
    assert_eq!(state.status, pb::Status::Running as i32);
    assert!(state.pid > 0);
    // The container's process is alive and is the shim's child.
    let cstatus = std::fs::read_to_string(format!("/proc/{}/status", state.pid)).unwrap();
    assert!(
        cstatus.contains(&format!("PPid:\t{shim_pid}\n")),
        "{cstatus}"
    );
    c.kill(pb::KillRequest {
        exec_id: String::new(),
        signal: 9,
        all: true,
    })
    .await
    .unwrap();
    c.wait(pb::WaitRequest {}).await.unwrap();
    c.delete(pb::DeleteRequest {}).await.unwrap();
    drop(c);
    b.assert_gone(shim_pid).await;
}

#[tokio::test]
async fn start_errors_map_to_docker_codes() {
    for (args, kind, code) in [
        (vec!["/bin/does-not-exist"], "not-found", 127),
        (vec!["does-not-exist"], "not-found", 127),
        (vec!["/bin/noexec"], "permission", 126),
        (vec!["/etc"], "permission", 126),
    ] {
        let b = Bundle::new(&args);
        let (got, stderr) = b.start().expect_err("start must fail");
        assert_eq!(got, code, "{args:?}: {stderr}");
        let e = b.read_json("start-error.json").expect("start-error.json");
        assert_eq!(e["kind"], kind, "{args:?}: {e}");
        assert!(e["message"].as_str().unwrap().contains(args[0]), "{e}");
        for d in b.cgroup_dirs() {
            assert!(
                !d.exists(),
                "cgroup {} remains after a failed start",
                d.display()
            );
        }
        assert!(!b.dir.join("shim.sock").exists());
        let pid = b.shim_pid();
        assert!(pid.is_none_or(|p| !is_berth_shim(p)));
    }
}

#[tokio::test]
async fn terminal_gets_its_own_pts() {
    let b = Bundle::new(&sh("tty; stty size")).with(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["console_size"] = json!({"width": 100, "height": 30});
        c["wait_for_start"] = json!(true);
    });
    let c = b.run().await;
    let state = c.state(pb::StateRequest {}).await.unwrap();
    assert_eq!(state.status, pb::Status::Created as i32);
    let stream = c.attach(pb::AttachRequest::default()).await.unwrap();
    let r = c.start(pb::StartRequest {}).await.unwrap();
    assert!(r.error.is_none(), "{:?}", r.error);
    let (out, _) = collect(stream).await;
    assert!(out.contains("/dev/pts/0\r\n"), "{out:?}");
    assert!(out.contains("30 100"), "{out:?}");
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!(exit.exit_code, 0);
    assert!(
        b.stdout().contains("/dev/pts/0"),
        "pty output is logged as stdout"
    );
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn stdin_pipe_and_close() {
    let b = Bundle::new(&["cat"]).with(|c| c["process"]["stdin"] = json!(true));
    let c = b.run().await;
    let stream = c.attach(pb::AttachRequest::default()).await.unwrap();
    c.write(pb::WriteRequest {
        exec_id: String::new(),
        data: b"ping\n".to_vec(),
    })
    .await
    .unwrap();
    c.close_stdin(pb::CloseStdinRequest::default())
        .await
        .unwrap();
    let (out, _) = collect(stream).await;
    assert_eq!(out, "ping\n");
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    assert_eq!(exit.exit_code, 0);
    assert_eq!(b.stdout(), "ping\n");
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn log_rotation() {
    let b = Bundle::new(&sh(
        "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done",
    ))
    .with(|c| {
        c["log"]["max_size"] = json!(2000);
        c["log"]["max_file"] = json!(3);
    });
    let c = b.run().await;
    assert_eq!(c.wait(pb::WaitRequest {}).await.unwrap().exit_code, 0);
    let p = b.log_path();
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", p.display()));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists());
    let last = common::read_log(&p);
    assert_eq!(last.last().unwrap()["log"], "line299\n");
    assert!(std::fs::metadata(rotated(1)).unwrap().len() >= 2000);
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn delete_is_refused_while_running_and_shim_delete_cleans_a_dead_shim() {
    let b = Bundle::new(&["sleep", "1000"]);
    let c = b.run().await;
    let err = c.delete(pb::DeleteRequest {}).await.unwrap_err();
    assert_eq!(err.code(), berth_shim_proto::Code::FailedPrecondition);
    // The shim dies; `berth-shim delete` cleans up after it.
    let shim_pid = b.shim_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = std::process::Command::new(common::shim_bin())
        .args(["delete", "--bundle"])
        .arg(&b.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["exit_code"], 137);
    assert_eq!(b.read_json("exit.json").unwrap()["exit_code"], 137);
    drop(c);
    b.assert_gone(shim_pid).await;
}

#[tokio::test]
async fn bind_mounts_and_read_only_rootfs() {
    let b = Bundle::new(&sh(
        "touch /rootfile 2>/dev/null && echo root=rw || echo root=ro; \
         touch /data-ro/x 2>/dev/null && echo dro=rw || echo dro=ro; \
         echo from-container > /data-rw/y && echo drw=rw; cat /data-ro/hello; \
         touch /tmp/ok 2>/dev/null && echo tmp=rw || echo tmp=ro",
    ));
    let host_dir = b.tmp.path().join("vol");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello"), "hi from host\n").unwrap();
    let tmp_dir = b.tmp.path().join("tmpvol");
    std::fs::create_dir(&tmp_dir).unwrap();
    let b = b.with(|c| {
        c["readonly_rootfs"] = json!(true);
        c["mounts"] = json!([
            {"source": host_dir, "destination": "/data-ro", "options": ["rbind", "ro"]},
            {"source": host_dir, "destination": "/data-rw"},
            {"source": tmp_dir, "destination": "/tmp"},
        ]);
    });
    let c = b.run().await;
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    let out = b.stdout();
    assert_eq!(exit.exit_code, 0, "{:?}", b.log());
    for want in [
        "root=ro\n",
        "dro=ro\n",
        "drw=rw\n",
        "hi from host\n",
        "tmp=rw\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(
        std::fs::read_to_string(host_dir.join("y")).unwrap(),
        "from-container\n"
    );
    c.delete(pb::DeleteRequest {}).await.unwrap();
}

#[tokio::test]
async fn exec_with_a_terminal() {
    let b = Bundle::new(&["sleep", "1000"]);
    let c = b.run().await;
    let id = c
        .exec(pb::ExecRequest {
            exec_id: "tty1".to_owned(),
            process: Some(pb::ProcessSpec {
                args: vec!["sh".into(), "-c".into(), "tty; read x; stty size".into()],
                env: vec!["PATH=/bin".to_owned()],
                terminal: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .exec_id;
    assert_eq!(id, "tty1");
    let (stream, r) = attach_and_start(&c, &id).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    c.resize(pb::ResizeRequest {
        exec_id: id.clone(),
        width: 120,
        height: 40,
    })
    .await
    .unwrap();
    c.write(pb::WriteRequest {
        exec_id: id.clone(),
        data: b"go\n".to_vec(),
    })
    .await
    .unwrap();
    let (out, _) = collect(stream).await;
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("40 120"), "{out:?}");
    let st = c
        .exec_wait(pb::ExecWaitRequest { exec_id: id })
        .await
        .unwrap();
    assert_eq!(st.exit_code, 0);
    kill_and_delete(&c).await;
}
