//! The container filesystem API through the real docker CLI (and docker-py): docker cp both
//! ways on running and stopped containers (directories, modes, owners, `-a`, `-`, volumes and
//! binds, missing paths, symlinks that point out of the container), docker export, docker
//! diff, docker commit with --change, then run and push of the committed image.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    process::{Command, Stdio},
};

use berth_testutil::{BusyboxEngine, run, text};

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .expect("a tar")
        .map(|e| e.expect("an entry").path().unwrap().display().to_string())
        .collect()
}

/// The events of the container `name` so far.
fn events(s: &BusyboxEngine, name: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 1;
    s.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &now.to_string(),
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ])
}

#[test]
fn cp_both_ways_on_running_and_stopped_containers() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bound = d.join("bound");
    std::fs::create_dir(&bound).unwrap();
    let outside = d.join("outside");
    std::fs::create_dir(&outside).unwrap();
    s.docker(&[
        "run",
        "-d",
        "--name",
        "cpr",
        "-v",
        &format!("{}:/mnt/bind", bound.display()),
        &s.image,
        "sleep",
        "300",
    ]);
    s.docker(&[
        "exec",
        "cpr",
        "sh",
        "-c",
        &format!(
            "mkdir -p /data/sub && echo hello > /data/sub/f && chmod 640 /data/sub/f && \
             chown 12:34 /data/sub/f && ln -s /etc/passwd /data/link && mkdir -p {o} && \
             ln -s {o} /tmp/out",
            o = outside.display()
        ),
    ]);

    // Out of a running container: a directory with modes, owners and links.
    let out = d.join("out");
    s.docker(&["cp", "cpr:/data", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("sub/f")).unwrap(),
        "hello\n"
    );
    let m = std::fs::metadata(out.join("sub/f")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o640);
    // The CLI extracts without chown; the owners travel in the tar.
    let out_tar = run(s.engine.docker_cmd().args(["cp", "cpr:/data/sub/f", "-"]));
    let mut a = tar::Archive::new(out_tar.stdout.as_slice());
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        (e.header().uid().unwrap(), e.header().gid().unwrap()),
        (12, 34)
    );
    assert_eq!(
        std::fs::read_link(out.join("link"))
            .unwrap()
            .display()
            .to_string(),
        "/etc/passwd"
    );
    // -L follows the link through the stat's linkTarget, resolved inside the container.
    let followed = d.join("followed");
    s.docker(&["cp", "-L", "cpr:/data/link", followed.to_str().unwrap()]);
    assert!(
        std::fs::read_to_string(&followed)
            .unwrap()
            .starts_with("root:x:0:0")
    );
    // `dir/.`: the directory's contents.
    let contents = d.join("contents");
    s.docker(&["cp", "cpr:/data/.", contents.to_str().unwrap()]);
    assert!(contents.join("sub/f").is_file());
    // A missing path: dockerd's 404.
    let (_, err) = s.fails(&["cp", "cpr:/no/such", d.join("x").to_str().unwrap()]);
    assert!(
        err.contains("Could not find the file /no/such in container cpr"),
        "{err}"
    );

    // Into it: a directory tree and a file.
    let input = d.join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    std::fs::write(input.join("a"), "A").unwrap();
    std::fs::write(input.join("nested/b"), "B").unwrap();
    std::fs::set_permissions(input.join("a"), PermissionsExt::from_mode(0o600)).unwrap();
    s.docker(&["cp", input.to_str().unwrap(), "cpr:/tmp/"]);
    assert_eq!(s.docker(&["exec", "cpr", "cat", "/tmp/in/nested/b"]), "B");
    assert_eq!(
        s.docker(&["exec", "cpr", "stat", "-c", "%a", "/tmp/in/a"]),
        "600"
    );
    std::fs::write(d.join("single"), "one file").unwrap();
    s.docker(&["cp", d.join("single").to_str().unwrap(), "cpr:/renamed.txt"]);
    assert_eq!(
        s.docker(&["exec", "cpr", "cat", "/renamed.txt"]),
        "one file"
    );

    // Through a bind mount: the file lands in the host directory, as with dockerd.
    s.docker(&["cp", d.join("single").to_str().unwrap(), "cpr:/mnt/bind/"]);
    assert_eq!(
        std::fs::read_to_string(bound.join("single")).unwrap(),
        "one file"
    );

    // A symlink in the container to a host path leads inside the container, never out.
    s.docker(&["cp", d.join("single").to_str().unwrap(), "cpr:/tmp/out/"]);
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    assert_eq!(
        s.docker(&[
            "exec",
            "cpr",
            "cat",
            &format!("{}/single", outside.display())
        ]),
        "one file"
    );

    // `docker cp -` reads a tar on stdin.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "fromstdin", &b"stdin"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    let mut child = s
        .engine
        .docker_cmd()
        .args(["cp", "-", "cpr:/tmp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tarball).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(s.docker(&["exec", "cpr", "cat", "/tmp/fromstdin"]), "stdin");
    // And `docker cp X -` writes one to stdout.
    let out = run(s
        .engine
        .docker_cmd()
        .args(["cp", "cpr:/tmp/fromstdin", "-"]));
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(tar_names(&out.stdout), ["fromstdin"]);

    // A stopped (never started) container: in and out, through its bind mount too, then seen
    // once it runs.
    s.docker(&[
        "create",
        "--name",
        "cps",
        "-v",
        &format!("{}:/mnt/bind", bound.display()),
        &s.image,
        "sleep",
        "300",
    ]);
    s.docker(&["cp", input.to_str().unwrap(), "cps:/in2"]);
    s.docker(&[
        "cp",
        d.join("single").to_str().unwrap(),
        "cps:/mnt/bind/second",
    ]);
    assert_eq!(
        std::fs::read_to_string(bound.join("second")).unwrap(),
        "one file"
    );
    let back = d.join("back");
    s.docker(&["cp", "cps:/in2", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(back.join("nested/b")).unwrap(), "B");
    s.docker(&["start", "cps"]);
    assert_eq!(s.docker(&["exec", "cps", "cat", "/in2/a"]), "A");
    // Once it ran, a stopped container's /etc/hostname is the one it ran with (dockerd's
    // network mounts), not the image's empty file.
    let hostname = s.docker(&["exec", "cps", "hostname"]);
    s.docker(&["stop", "-t", "0", "cps"]);
    let out = run(s.engine.docker_cmd().args(["cp", "cps:/etc/hostname", "-"]));
    let mut a = tar::Archive::new(out.stdout.as_slice());
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    let mut content = String::new();
    std::io::Read::read_to_string(&mut e, &mut content).unwrap();
    assert_eq!(content.trim(), hostname);

    // -a: owned by the container's user.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "cpu",
        "--user",
        "1234:5678",
        &s.image,
        "sleep",
        "300",
    ]);
    s.docker(&["cp", "-a", d.join("single").to_str().unwrap(), "cpu:/tmp/"]);
    assert_eq!(
        s.docker(&["exec", "cpu", "stat", "-c", "%u:%g", "/tmp/single"]),
        "1234:5678"
    );

    // Into a path that is not a directory, and into a read-only root filesystem.
    let (_, err) = s.fails(&[
        "cp",
        d.join("single").to_str().unwrap(),
        "cpr:/renamed.txt/",
    ]);
    assert!(!err.is_empty());
    s.docker(&[
        "run",
        "-d",
        "--name",
        "cpro",
        "--read-only",
        &s.image,
        "sleep",
        "300",
    ]);
    let (_, err) = s.fails(&["cp", d.join("single").to_str().unwrap(), "cpro:/tmp/"]);
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );

    // CVE-2018-15664: the container swaps a directory for a symlink to a host directory while
    // files are copied in and out; nothing is written to or read from the host.
    let host = d.join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("secret"), "host secret").unwrap();
    s.docker(&[
        "exec",
        "-d",
        "cpr",
        "sh",
        "-c",
        &format!(
            "mkdir -p {h} && echo inside > {h}/secret && while true; do rm -rf /w; mkdir /w; \
             echo inside > /w/secret; rm -rf /w; ln -s {h} /w; done",
            h = host.display()
        ),
    ]);
    let (mut copied_in, mut copied_out) = (0, 0);
    for i in 0..30 {
        let into = s.engine.docker(&[
            "cp",
            d.join("single").to_str().unwrap(),
            &format!("cpr:/w/in{i}"),
        ]);
        copied_in += usize::from(into.status.success());
        let out = run(s.engine.docker_cmd().args(["cp", "cpr:/w/secret", "-"]));
        if out.status.success() {
            copied_out += 1;
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains("host secret"),
                "a host file was read through the container's symlink"
            );
        }
    }
    let names: Vec<_> = std::fs::read_dir(&host)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"], "written to the host through a symlink");
    eprintln!("copies that succeeded while the path was swapped: {copied_in} in, {copied_out} out");
    assert!(
        copied_in + copied_out > 0,
        "no copy reached the swapped path"
    );

    let ev = events(&s, "cpr");
    assert!(ev.contains("archive-path"), "{ev}");
    assert!(ev.contains("extract-to-dir"), "{ev}");
}

#[test]
fn diff_export_commit_run_and_push() {
    let s = BusyboxEngine::new();
    s.docker(&["run", "-d", "--name", "fs", &s.image, "sleep", "300"]);
    // Nothing changed yet: what the engine mounts (hosts, resolv.conf, /dev...) is not a change.
    assert_eq!(s.docker(&["diff", "fs"]), "");
    s.docker(&[
        "exec",
        "fs",
        "sh",
        "-c",
        "echo committed > /tmp/added && echo more >> /etc/passwd && rm /etc/group && \
         mkdir /newdir && touch /newdir/x",
    ]);

    // docker diff: parents first, as dockerd.
    let diff = s.docker(&["diff", "fs"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "C /etc",
        "C /etc/passwd",
        "D /etc/group",
        "A /newdir",
        "A /newdir/x",
        "C /tmp",
        "A /tmp/added",
    ] {
        assert!(lines.contains(&want), "{want} missing from:\n{diff}");
    }
    let pos = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(pos("C /etc") < pos("C /etc/passwd"));
    assert!(pos("A /newdir") < pos("A /newdir/x"));

    // docker export: the merged filesystem, without what was deleted.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("fs.tar");
    s.docker(&["export", "fs", "-o", exported.to_str().unwrap()]);
    let names = tar_names(&std::fs::read(&exported).unwrap());
    for want in [
        "bin/busybox",
        "etc/passwd",
        "newdir/",
        "newdir/x",
        "tmp/added",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in export");
    }
    assert!(!names.iter().any(|n| n == "etc/group"), "{names:?}");

    // docker commit with changes, then run the image.
    let id = s.docker(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "someone",
        "--change",
        r#"CMD ["cat", "/tmp/added"]"#,
        "--change",
        "ENV FOO=bar",
        "fs",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(s.docker(&["run", "--rm", "committed:v1"]), "committed");
    assert_eq!(
        s.docker(&["run", "--rm", "committed:v1", "sh", "-c", "echo $FOO"]),
        "bar"
    );
    let (_, err) = s.fails(&["run", "--rm", "committed:v1", "cat", "/etc/group"]);
    assert!(err.contains("No such file"), "{err}");
    let inspect: serde_json::Value =
        serde_json::from_str(&s.docker(&["image", "inspect", "committed:v1"])).unwrap();
    let img = &inspect[0];
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["cat", "/tmp/added"])
    );
    assert!(
        img["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("FOO=bar"))
    );
    assert_eq!(img["Comment"], "a message");
    assert_eq!(img["Author"], "someone");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert!(s.docker(&["images", "committed"]).contains("v1"));
    let history = s.docker(&["history", "--no-trunc", "committed:v1"]);
    assert!(history.contains("a message"), "{history}");

    // A commit of a stopped container, without changes: the container's own Cmd.
    s.docker(&["stop", "-t", "0", "fs"]);
    s.docker(&["commit", "fs", "committed:v2"]);
    let (code, _, _) = s.status(&["run", "--rm", "committed:v2", "test", "-f", "/newdir/x"]);
    assert_eq!(code, 0);

    // Pushed to the registry and pulled back.
    let remote = s.registry.image("committed:v1");
    s.docker(&["tag", "committed:v1", &remote]);
    s.docker(&["push", &remote]);
    s.docker(&["rmi", &remote, "committed:v1"]);
    s.docker(&["pull", &remote]);
    assert_eq!(s.docker(&["run", "--rm", &remote]), "committed");

    let ev = events(&s, "fs");
    assert!(ev.contains("commit"), "{ev}");
    assert!(ev.contains("export"), "{ev}");
}

/// docker-py's get_archive, put_archive, export, diff and commit.
#[test]
fn docker_py_filesystem_calls() {
    let s = BusyboxEngine::new();
    s.docker(&["run", "-d", "--name", "py", &s.image, "sleep", "300"]);
    let script = r#"
import io, sys, tarfile, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto").containers.get("py")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"from python"
    info = tarfile.TarInfo("py.txt"); info.size = len(data)
    t.addfile(info, io.BytesIO(data))
assert c.put_archive("/tmp", buf.getvalue()) is True
bits, stat = c.get_archive("/tmp/py.txt")
assert stat["name"] == "py.txt" and stat["size"] == 11, stat
raw = b"".join(bits)
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    assert t.extractfile("py.txt").read() == b"from python"
assert {"Path": "/tmp/py.txt", "Kind": 1} in c.diff(), c.diff()
exported = b"".join(c.export())
with tarfile.open(fileobj=io.BytesIO(exported)) as t:
    assert "tmp/py.txt" in t.getnames()
img = c.commit(repository="pycommit", tag="v1", changes=["CMD cat /tmp/py.txt"])
assert img.id.startswith("sha256:"), img.id
print("ok")
"#;
    let out = run(Command::new("python3").args(["-c", script, &s.engine.docker_host]));
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
    assert_eq!(s.docker(&["run", "--rm", "pycommit:v1"]), "from python");
}

/// One engine's answers to the same steps, for the comparison with dockerd.
#[derive(Debug, PartialEq)]
struct Figures {
    fresh_diff: String,
    diff: Vec<String>,
    cp_names: Vec<String>,
    cp_header: (u32, u64, u64, u64),
    errors: Vec<String>,
    run_commit: String,
    cmd: serde_json::Value,
    layers: usize,
}

fn figures(
    docker: &dyn Fn(&[&str]) -> std::process::Output,
    image: &str,
    dir: &std::path::Path,
) -> Figures {
    let ok = |args: &[&str]| {
        let out = docker(args);
        let (o, e) = text(&out);
        assert!(out.status.success(), "docker {args:?}: {o}\n{e}");
        o.trim().to_owned()
    };
    ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "cmp",
        image,
        "sleep",
        "300",
    ]);
    let fresh_diff = ok(&["diff", "cmp"]);
    ok(&[
        "exec",
        "cmp",
        "sh",
        "-c",
        "echo committed > /tmp/added && echo more >> /etc/passwd && rm /etc/group && \
         mkdir -p /newdir/sub && touch /newdir/sub/x && chown 7:8 /newdir/sub/x && \
         chmod 700 /home && ln -s /etc /newdir/l",
    ]);
    let mut diff: Vec<String> = ok(&["diff", "cmp"]).lines().map(str::to_owned).collect();
    // dockerd lists a directory's entries in Go map order: compare the sets.
    diff.sort();
    let tar = docker(&["cp", "cmp:/newdir", "-"]).stdout;
    let cp_names = tar_names(&tar);
    let one = docker(&["cp", "cmp:/newdir/sub/x", "-"]).stdout;
    let mut a = tar::Archive::new(one.as_slice());
    let e = a.entries().unwrap().next().unwrap().unwrap();
    let h = e.header();
    let cp_header = (
        h.mode().unwrap(),
        h.uid().unwrap(),
        h.gid().unwrap(),
        h.size().unwrap(),
    );
    // Refusals: a missing path; a file over a directory (the CLI sends noOverwriteDirNonDir).
    std::fs::write(dir.join("sub"), "file").unwrap();
    let err = |args: &[&str]| {
        let out = docker(args);
        assert!(!out.status.success(), "docker {args:?} should fail");
        // dockerd 20.10 extracts in a re-executed child and prefixes its errors with this;
        // moby 25 and later (the API Berth speaks) extract in-process, without it.
        text(&out)
            .1
            .trim()
            .replace("Error processing tar file(exit status 1): ", "")
    };
    let errors = vec![
        err(&["cp", "cmp:/no/such", dir.join("x").to_str().unwrap()]),
        err(&["cp", dir.join("sub").to_str().unwrap(), "cmp:/newdir/"]),
    ];
    ok(&[
        "commit",
        "--change",
        r#"CMD ["cat", "/tmp/added"]"#,
        "cmp",
        "cmpimg:1",
    ]);
    let run_commit = ok(&["run", "--rm", "--network", "none", "cmpimg:1"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&["image", "inspect", "cmpimg:1"])).unwrap();
    ok(&["rm", "-f", "cmp"]);
    Figures {
        fresh_diff,
        diff,
        cp_names,
        cp_header,
        errors,
        run_commit,
        cmd: inspect[0]["Config"]["Cmd"].clone(),
        layers: inspect[0]["RootFS"]["Layers"]
            .as_array()
            .map_or(0, Vec::len),
    }
}

/// The same steps on Debian's dockerd and on Berth: the same docker diff, the same tar out of
/// docker cp, the same committed image.
#[test]
fn diff_cp_and_commit_agree_with_dockerd() {
    assert!(
        std::path::Path::new(berth_testutil::DOCKERD).is_file(),
        "{} is missing: scripts/setup-debian.sh installs Debian's docker.io",
        berth_testutil::DOCKERD
    );
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = berth_testutil::Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    let berth = figures(&|a: &[&str]| s.engine.docker(a), &s.image, dir.path());
    let dockerd = figures(&|a: &[&str]| dk.docker(a), &s.image, dir.path());
    assert_eq!(berth, dockerd);
}
