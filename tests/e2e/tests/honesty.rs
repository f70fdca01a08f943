//! No option silently dropped: with the real docker CLI and docker-py, every `docker run` flag
//! Berth does not apply yet is refused with a message that names it, the ones it applies hold
//! inside the container, and inspect shows nothing that did not apply.

use std::process::Command;

use berth_testutil::BusyboxEngine;

type Setup = BusyboxEngine;

/// `docker create` with `flags`: refused, naming `flag`; nothing created.
fn refused(s: &Setup, flags: &[&str], flag: &str) {
    let mut args = vec!["create"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&s.image, "true"]);
    let (code, out) = s.fails(&args);
    assert_eq!(code, 1, "{args:?}: {out}");
    assert!(
        out.contains(&format!("{flag} is not supported by Berth yet")),
        "{args:?}: {out}"
    );
}

#[test]
fn every_flag_not_applied_is_refused_by_name() {
    let s = Setup::new();
    for (flags, flag) in [
        (&["--cpu-rt-runtime", "1000"][..], "--cpu-rt-runtime"),
        (&["--annotation", "a=b"][..], "--annotation"),
        (
            &["--security-opt", "label=disable"][..],
            "--security-opt label",
        ),
        (&["--log-opt", "compress=true"][..], "--log-opt compress"),
        (&["--log-driver", "syslog"][..], "--log-driver syslog"),
    ] {
        refused(&s, flags, flag);
    }
    // Docker's own words where dockerd refuses too.
    let (_, out) = s.fails(&["create", "--log-driver", "bogus", &s.image, "true"]);
    assert!(
        out.contains("logger: no log driver named 'bogus' is registered"),
        "{out}"
    );
    let (_, out) = s.fails(&["create", "--restart", "sometimes", &s.image, "true"]);
    assert!(out.contains("invalid restart policy"), "{out}");
    let (_, out) = s.fails(&["create", "--network", "mynet", &s.image, "true"]);
    assert!(out.contains("network mynet not found"), "{out}");
    let (_, out) = s.fails(&["create", "--network", "container:other", &s.image, "true"]);
    assert!(out.contains("No such container: other"), "{out}");
    // Nothing was created by any of them.
    assert_eq!(s.docker(&["ps", "-aq"]), "");
}

#[test]
fn what_is_applied_holds_and_inspect_shows_only_that() {
    let s = Setup::new();
    // The default network works: no warning.
    let (code, id, err) = s.status(&["create", &s.image, "true"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("WARNING"), "{err}");
    let v = s.inspect(id.trim());
    let hc = &v["HostConfig"];
    assert_eq!(hc["NetworkMode"], "bridge");
    assert_eq!(hc["Memory"], 0);
    assert_eq!(hc["RestartPolicy"]["Name"], "no");
    assert_eq!(hc["Privileged"], false);
    assert_eq!(hc["PortBindings"], serde_json::json!({}));
    assert_eq!(hc["Binds"], serde_json::Value::Null);
    assert_eq!(hc["LogConfig"]["Type"], "json-file");

    // --read-only: the root filesystem is read-only.
    let (code, _, err) = s.status(&["run", "--rm", "--read-only", &s.image, "touch", "/x"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    // --network none: no warning, only lo.
    let (code, out, err) = s.status(&[
        "run",
        "--rm",
        "--network",
        "none",
        &s.image,
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "lo");
    assert!(!err.contains("WARNING"), "{err}");

    // --log-opt max-size and max-file: the container's own rotation, shown in inspect.
    let id = s.docker(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        &s.image,
        "sh",
        "-c",
        "for i in $(seq 200); do echo line-$i; done",
    ]);
    s.docker(&["wait", &id]);
    let v = s.inspect(&id);
    assert_eq!(
        v["HostConfig"]["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}})
    );
    let log = v["LogPath"].as_str().unwrap();
    assert!(
        std::fs::metadata(log).unwrap().len() <= 2048,
        "{log} not rotated"
    );
    assert!(std::path::Path::new(&format!("{log}.1")).exists());
    let logs = s.docker(&["logs", &id]);
    assert!(logs.ends_with("line-200"), "{logs}");
    assert!(
        !logs.contains("line-1\n"),
        "the oldest lines were rotated away"
    );

    // --log-driver none: nothing logged, and docker logs says why.
    let id = s.docker(&["run", "-d", "--log-driver", "none", &s.image, "echo", "hi"]);
    s.docker(&["wait", &id]);
    let (_, out) = s.fails(&["logs", &id]);
    assert!(
        out.contains("configured logging driver does not support reading"),
        "{out}"
    );
    assert_eq!(s.inspect(&id)["LogPath"], "");
}

/// docker-py sends null for every option left unset; an option it sets that Berth does not
/// apply is an APIError (400) naming it.
#[test]
fn docker_py_runs_and_is_refused_by_name() {
    let s = Setup::new();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
image = sys.argv[2]
out = c.containers.run(image, ["echo", "hello"], remove=True, environment={"A": "1"},
                       working_dir="/tmp", labels={"k": "v"})
assert out == b"hello\n", out
ct = c.containers.create(image, "true", name="pyc", stop_signal="SIGINT", tty=True)
assert ct.attrs["Config"]["StopSignal"] == "SIGINT"
assert ct.attrs["HostConfig"]["Memory"] == 0
ct.remove()
for kwargs, flag in [({"cpu_percent": 50}, "--cpu-percent"),
                     ({"cpu_rt_runtime": 1000}, "--cpu-rt-runtime"),
                     ({"storage_opt": {"size": "1G"}}, "--storage-opt")]:
    try:
        c.containers.create(image, "true", **kwargs)
    except docker.errors.APIError as e:
        assert e.status_code == 400, (kwargs, e.status_code)
        assert flag + " is not supported by Berth yet" in str(e.explanation), (kwargs, e.explanation)
    else:
        raise AssertionError("accepted %r" % kwargs)
assert c.containers.list(all=True) == []
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}
