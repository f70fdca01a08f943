//! docker build (the classic builder, `DOCKER_BUILDKIT=0`) through the real docker CLI: FROM
//! the test busybox, ENV, LABEL, WORKDIR, COPY (file, directory, glob, --chown) and CMD, then
//! docker run of the result; the cache on a rebuild; a multi-stage build with COPY --from;
//! -q and --iidfile; -f outside the context; .dockerignore; a parse error; RUN steps (shell
//! and exec form, build args, output, volumes, network mode, failures, cache).

use berth_testutil::{BusyboxEngine, eventually, run, text};

#[path = "support/classic_build.rs"]
mod classic_build;
use classic_build::{classic, classic_ok, write};

#[test]
fn build_then_run_cache_and_history() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nENV GREETING=hello\nLABEL org.example.built=yes\nWORKDIR /app\nCOPY file.txt ./\nCOPY dir /app/dir/\nCOPY *.md /docs/\nCOPY --chown=1000:1000 owned.txt /owned.txt\nCMD [\"sh\", \"-c\", \"echo $GREETING; cat /app/file.txt; ls /app/dir /docs; stat -c %u /owned.txt; pwd; ls -a /app\"]\n",
        s.image
    );
    write(
        ctx.path(),
        &[
            ("Dockerfile", &dockerfile),
            ("file.txt", "the file\n"),
            ("dir/a", "a"),
            ("dir/sub/b", "b"),
            ("one.md", "1"),
            ("two.md", "2"),
            ("owned.txt", "mine"),
            ("secret.key", "no"),
            (".dockerignore", "secret.key\n"),
        ],
    );
    let path = ctx.path().to_str().unwrap();
    let out = classic_ok(&s, &["build", "-t", "built:1", "-t", "built:2", path]);
    assert!(out.contains("Step 1/9 : FROM "), "{out}");
    assert!(out.contains("Step 4/9 : WORKDIR /app\n"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(
        out.contains("Successfully tagged built:1\n")
            && out.contains("Successfully tagged built:2\n"),
        "{out}"
    );
    assert!(!out.contains("Using cache"), "{out}");

    let ran = s.docker(&["run", "--rm", "built:1"]);
    let lines: Vec<&str> = ran.lines().collect();
    assert_eq!(lines[0], "hello", "{ran}");
    assert_eq!(lines[1], "the file", "{ran}");
    for want in ["a", "sub", "one.md", "two.md", "1000", "/app"] {
        assert!(lines.contains(&want), "{want} missing in:\n{ran}");
    }
    assert!(
        !ran.contains("secret.key") && !ran.contains("Dockerfile"),
        "{ran}"
    );
    let label = s.docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"org.example.built\"}} {{.Config.WorkingDir}}",
        "built:1",
    ]);
    assert_eq!(label, "yes /app");
    let history = s.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "built:1",
    ]);
    assert!(
        history.contains("/bin/sh -c #(nop) WORKDIR /app"),
        "{history}"
    );
    assert!(
        history.contains("/bin/sh -c #(nop)  ENV GREETING=hello"),
        "{history}"
    );
    assert!(
        history.contains("/bin/sh -c #(nop) COPY --chown=1000:1000 file:"),
        "{history}"
    );

    // A built image saves like a pulled one (its layers' blobs are in the store).
    let saved = ctx.path().join("saved.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), "built:1"]);
    assert!(std::fs::metadata(&saved).unwrap().len() > 1024);
    std::fs::remove_file(&saved).unwrap();

    // Rebuilt: every step from the cache, the same image.
    let id = s.docker(&["image", "inspect", "-f", "{{.Id}}", "built:1"]);
    let again = classic_ok(&s, &["build", "-t", "built:3", path]);
    assert_eq!(again.matches(" ---> Using cache\n").count(), 8, "{again}");
    assert_eq!(
        s.docker(&["image", "inspect", "-f", "{{.Id}}", "built:3"]),
        id
    );
    // A changed file: the steps before its COPY from the cache, the ones after rebuilt.
    write(ctx.path(), &[("one.md", "changed")]);
    let changed = classic_ok(&s, &["build", path]);
    assert_eq!(
        changed.matches(" ---> Using cache\n").count(),
        5,
        "{changed}"
    );
    // The contexts went through spool files (the images service is on this host), and none
    // is left.
    let spool = s.engine.run_root.join("spool");
    assert!(spool.is_dir());
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn multi_stage_quiet_iidfile_outside_dockerfile_and_errors() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    write(ctx.path(), &[("payload", "from the first stage\n")]);
    let dockerfile = format!(
        "ARG BASE={}\nFROM $BASE AS first\nCOPY payload /made/payload\nFROM $BASE\nCOPY --from=first /made /got\nCMD [\"cat\", \"/got/payload\"]\n",
        s.image
    );
    write(elsewhere.path(), &[("Build.dockerfile", &dockerfile)]);
    let df = elsewhere.path().join("Build.dockerfile");
    let iid = elsewhere.path().join("iid");
    let path = ctx.path().to_str().unwrap();
    let out = classic_ok(
        &s,
        &[
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "-f",
            df.to_str().unwrap(),
            "-t",
            "multi",
            path,
        ],
    );
    let id = out.trim();
    assert!(
        id.starts_with("sha256:") && id.len() == 71 && !out.contains("Step"),
        "{out}"
    );
    // With -q the CLI writes what it printed (the ID and a newline).
    assert_eq!(std::fs::read_to_string(&iid).unwrap().trim(), id);
    assert_eq!(s.docker(&["run", "--rm", "multi"]), "from the first stage");
    // --target stops at the named stage.
    let out = classic_ok(
        &s,
        &[
            "build",
            "--target",
            "first",
            "-f",
            df.to_str().unwrap(),
            path,
        ],
    );
    assert!(
        out.contains("Step 3/3 : COPY payload /made/payload") && !out.contains("Step 4/"),
        "{out}"
    );

    // `docker build -`: the Dockerfile on stdin; --build-arg, --label.
    let stdin_df = elsewhere.path().join("stdin.dockerfile");
    write(
        elsewhere.path(),
        &[(
            "stdin.dockerfile",
            &format!("FROM {}\nARG WHO=nobody\nENV WHO=$WHO\n", s.image),
        )],
    );
    let out = run(s
        .engine
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "--build-arg",
            "WHO=me",
            "--build-arg",
            "EXTRA=1",
            "--label",
            "via=stdin",
            "-t",
            "fromstdin",
            "-",
        ])
        .stdin(std::fs::File::open(&stdin_df).unwrap()));
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert!(o.contains("Step 4/4 : LABEL via=stdin"), "{o}");
    assert!(
        o.contains("[Warning] One or more build-args [EXTRA] were not consumed"),
        "{o}"
    );
    let got = s.docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"via\"}} {{.Config.Env}}",
        "fromstdin",
    ]);
    assert!(
        got.starts_with("stdin [") && got.contains("WHO=me"),
        "{got}"
    );

    // A parse error: dockerd's message, exit code 1, nothing built.
    write(ctx.path(), &[("Dockerfile", "FROM scratch\nFOOBAR x\n")]);
    let (code, _, err) = classic(&s, &["build", path]);
    assert_eq!(code, 1);
    assert!(
        err.contains("dockerfile parse error on line 2: unknown instruction: FOOBAR"),
        "{err}"
    );
}

/// What removed intermediate containers must not leave: netns files, mounts under the
/// engine's directories, snapshots.
fn assert_no_leftovers(s: &BusyboxEngine) {
    let netns = std::fs::read_dir(s.engine.run_root.join("netns")).map_or(0, |d| d.count());
    assert_eq!(netns, 0, "netns files remain");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for root in [&s.engine.run_root, &s.engine.data_root] {
        let root = root.to_str().unwrap();
        assert!(
            !mounts.contains(root),
            "mounts under {root} remain:\n{mounts}"
        );
    }
    let snapshots = s.engine.data_root.join("images/snapshots");
    let count = || std::fs::read_dir(&snapshots).map_or(0, |d| d.count());
    // A container removed while it runs loses its snapshot once its process is reaped.
    eventually("no snapshot left", || (count() == 0).then_some(()));
}

/// The intermediate containers the engine lists.
fn containers(s: &BusyboxEngine) -> Vec<String> {
    s.docker(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn run_steps_commit_their_changes_and_are_cached() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nARG WHO=world\nENV GREETING=hello\nWORKDIR /work\n\
         RUN echo hi > /f && mkdir /d && echo \"$GREETING $WHO\" > /greet && pwd > /pwd && echo to-out && echo to-err >&2\n\
         RUN [\"sh\",\"-c\",\"echo exec form > /exec\"]\n\
         VOLUME /vol\n\
         RUN echo lost > /vol/x && cat /proc/net/dev > /nets\n",
        s.image
    );
    write(ctx.path(), &[("Dockerfile", &dockerfile)]);
    let path = ctx.path().to_str().unwrap();
    let out = classic_ok(
        &s,
        &["build", "--build-arg", "WHO=you", "-t", "ran:1", path],
    );
    // As dockerd's classic builder: every step but FROM and COPY commits a container (the
    // metadata ones are never started), removed after the step.
    assert_eq!(
        out.matches(" ---> Running in ").count(),
        7,
        "{out}\n--- engine ---\n{}",
        s.engine.logs()
    );
    assert_eq!(
        out.matches(" ---> Removed intermediate container ").count(),
        7,
        "{out}"
    );
    assert!(
        out.contains("Step 3/8 : ENV GREETING=hello\n ---> Running in "),
        "{out}"
    );
    assert!(out.contains("to-out\n") && out.contains("to-err"), "{out}");
    assert!(containers(&s).is_empty(), "{:?}", containers(&s));
    assert_no_leftovers(&s);

    let ran = s.docker(&[
        "run", "--rm", "ran:1", "cat", "/f", "/greet", "/pwd", "/exec",
    ]);
    assert_eq!(ran, "hi\nhello you\n/work\nexec form", "{ran}");
    assert_eq!(s.docker(&["run", "--rm", "ran:1", "ls", "-d", "/d"]), "/d");
    // What the step wrote under an earlier VOLUME went to its volume, not the layer.
    assert_eq!(s.docker(&["run", "--rm", "ran:1", "ls", "-A", "/vol"]), "");
    // The default network: the step saw eth0.
    let nets = s.docker(&["run", "--rm", "ran:1", "cat", "/nets"]);
    assert!(nets.contains("eth0"), "{nets}");
    // The history names the build arguments used, as dockerd writes it.
    let history = s.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "ran:1",
    ]);
    assert!(
        history.contains("|1 WHO=you /bin/sh -c echo hi > /f && mkdir /d"),
        "{history}"
    );
    assert!(
        history.contains("|1 WHO=you sh -c echo exec form > /exec"),
        "{history}"
    );

    // A rebuild runs no step; another build argument runs them again.
    let again = classic_ok(
        &s,
        &["build", "--build-arg", "WHO=you", "-t", "ran:2", path],
    );
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(again.matches(" ---> Using cache").count(), 7, "{again}");
    let other = classic_ok(&s, &["build", "--build-arg", "WHO=them", path]);
    // ARG, ENV and WORKDIR come from the cache; the RUNs and what follows them run.
    assert_eq!(other.matches(" ---> Running in ").count(), 4, "{other}");

    // --network none: the step has no eth0.
    let none = tempfile::tempdir().unwrap();
    write(
        none.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {}\nRUN cat /proc/net/dev > /nets && ulimit -n > /nofile && df -k /dev/shm | tail -1 > /shm\n",
                s.image
            ),
        )],
    );
    let none_path = none.path().to_str().unwrap();
    classic_ok(
        &s,
        &[
            "build",
            "--network",
            "none",
            "--ulimit",
            "nofile=1234:1234",
            "--shm-size",
            "32m",
            "-t",
            "ran:none",
            none_path,
        ],
    );
    let nets = s.docker(&["run", "--rm", "ran:none", "cat", "/nets"]);
    assert!(nets.contains("lo:") && !nets.contains("eth0"), "{nets}");
    // The build's ulimits and shm size applied to the step.
    assert_eq!(
        s.docker(&["run", "--rm", "ran:none", "cat", "/nofile"]),
        "1234"
    );
    let shm = s.docker(&["run", "--rm", "ran:none", "cat", "/shm"]);
    assert!(shm.split_whitespace().nth(1) == Some("32768"), "{shm}");
    s.docker(&["rmi", "ran:1", "ran:2", "ran:none"]);
}

#[test]
fn failing_run_reports_its_code_and_rm_rules_apply() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}\nRUN echo before-exit && exit 3\n", s.image),
        )],
    );
    let path = ctx.path().to_str().unwrap();
    // --force-rm: the failed step's container is removed too.
    let (code, out, err) = classic(&s, &["build", "--force-rm", path]);
    // The CLI exits with the errorDetail code (3), as with dockerd.
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(out.contains("before-exit\n"), "{out}");
    assert!(
        err.contains(
            "The command '/bin/sh -c echo before-exit && exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    assert!(
        out.contains(" ---> Removed intermediate container "),
        "{out}"
    );
    assert!(containers(&s).is_empty(), "{:?}", containers(&s));
    assert_no_leftovers(&s);
    // The default (rm): as dockerd, a failed step's container is kept for inspection.
    let (code, out, _) = classic(&s, &["build", path]);
    assert_eq!(code, 3, "{out}");
    let kept = containers(&s);
    assert_eq!(kept.len(), 1, "{out}");
    assert!(
        out.contains(&format!(" ---> Running in {}", &kept[0][..12])),
        "{out}"
    );
    assert_eq!(
        s.docker(&["inspect", "-f", "{{.State.ExitCode}}", &kept[0]]),
        "3"
    );
    s.docker(&["rm", &kept[0]]);
    // --rm=false: a successful step's container stays.
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}\nRUN true\n", s.image))],
    );
    let out = classic_ok(&s, &["build", "--rm=false", path]);
    assert!(!out.contains("Removed intermediate container"), "{out}");
    let kept = containers(&s);
    assert_eq!(kept.len(), 1, "{out}");
    s.docker(&["rm", &kept[0]]);
}

/// docker-py's `images.build`: the ID from the stream, the RUN's output in the log, and a
/// failing RUN raised as `BuildError` with dockerd's message and code.
#[test]
fn docker_py_build_with_run() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {}\nARG N\nRUN echo \"n=$N\" > /n && echo py-out\nCMD cat /n\n",
                    s.image
                ),
            ),
            ("bad/Dockerfile", &format!("FROM {}\nRUN exit 5\n", s.image)),
        ],
    );
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
# docker-py sends rm=False unless told: the intermediate container would stay.
img, logs = c.images.build(path=sys.argv[2], tag="pybuilt:1", buildargs={"N": "7"}, rm=True)
logs = list(logs)
assert img.id.startswith("sha256:"), img.id
assert any("py-out" in l.get("stream", "") for l in logs), logs
assert any(l.get("stream", "").startswith(" ---> Running in ") for l in logs), logs
try:
    c.images.build(path=sys.argv[2] + "/bad", forcerm=True)
    raise SystemExit("no BuildError")
except docker.errors.BuildError as e:
    assert e.msg == "The command '/bin/sh -c exit 5' returned a non-zero code: 5", e.msg
    log = list(e.build_log)
    assert log[-1]["errorDetail"]["code"] == 5, log
print("ok")
"#;
    let out = run(std::process::Command::new("python3").args([
        "-c",
        script,
        &s.engine.docker_host,
        ctx.path().to_str().unwrap(),
    ]));
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
    assert_eq!(s.docker(&["run", "--rm", "pybuilt:1"]), "n=7");
    assert!(containers(&s).is_empty(), "{:?}", containers(&s));
    s.docker(&["rmi", "pybuilt:1"]);
}

/// A client that goes away during a RUN: the step's container is removed (as dockerd does on
/// cancellation), nothing is left.
#[test]
fn a_build_abandoned_during_run_leaves_no_container() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}\nRUN sleep 300\n", s.image))],
    );
    let mut cli = s
        .engine
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = eventually("the RUN container running", || {
        let out = s.docker(&["ps", "-q", "--no-trunc"]);
        (!out.is_empty()).then_some(out)
    });
    cli.kill().unwrap();
    cli.wait().unwrap();
    eventually("the RUN container removed", || {
        containers(&s).is_empty().then_some(())
    });
    assert!(!id.is_empty());
    assert_no_leftovers(&s);
}

/// Without the runtime service, a RUN fails saying so; the images service keeps working.
#[test]
fn run_without_the_runtime_fails_clearly() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}\nRUN true\n", s.image))],
    );
    // The runtime unreachable: its socket moved away for the build.
    let sock = s.engine.run_root.join("runtime.sock");
    let away = s.engine.run_root.join("runtime.sock.away");
    std::fs::rename(&sock, &away).unwrap();
    let (code, out, err) = classic(&s, &["build", ctx.path().to_str().unwrap()]);
    std::fs::rename(&away, &sock).unwrap();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("the runtime service is unavailable (RUN needs it)"),
        "{err}"
    );
    assert!(
        s.docker(&["images", "-q"])
            .contains(&s.docker(&["images", "-q", &s.image]))
    );
    // With the runtime back, the same build runs.
    let out = classic_ok(&s, &["build", "--force-rm", ctx.path().to_str().unwrap()]);
    assert!(out.contains("Successfully built "), "{out}");
}
