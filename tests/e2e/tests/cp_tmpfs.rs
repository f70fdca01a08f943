//! docker cp at a `--tmpfs` path, compared with Debian's dockerd: the tmpfs lives only while
//! the container runs, and dockerd's view of a container never has it (running or not), so a
//! copy reads and writes the directory of the root filesystem under it.

use std::process::Output;

use berth_testutil::{BusyboxEngine, eventually, text};

/// What each step answered: the output of a copy out (`-` as a tar: its entries' names and
/// the file's content), or its error.
fn tmpfs_steps(
    docker: &dyn Fn(&[&str]) -> Output,
    image: &str,
    dir: &std::path::Path,
) -> Vec<String> {
    let ok = |args: &[&str]| {
        let out = docker(args);
        let (o, e) = text(&out);
        assert!(out.status.success(), "docker {args:?}: {o}\n{e}");
        o.trim().to_owned()
    };
    // A copy out, as `-`: the file's content, or the error.
    let cp_out = |path: &str| {
        let out = docker(&["cp", &format!("tc:{path}"), "-"]);
        if !out.status.success() {
            return format!("error: {}", text(&out).1.trim());
        }
        let mut a = tar::Archive::new(out.stdout.as_slice());
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        format!("{}: {}", e.path().unwrap().display(), s.trim())
    };
    let host = dir.join("before");
    std::fs::write(&host, "put while stopped\n").unwrap();
    ok(&[
        "create",
        "--name",
        "tc",
        "--network",
        "none",
        "--tmpfs",
        "/tmp",
        image,
        "sh",
        "-c",
        "echo from the run > /tmp/run; sleep 300",
    ]);
    let mut answers = Vec::new();
    // Never started: into the root filesystem's /tmp.
    ok(&["cp", host.to_str().unwrap(), "tc:/tmp/before"]);
    answers.push(cp_out("/tmp/before"));
    ok(&["start", "tc"]);
    eventually("the container to write on its tmpfs", || {
        docker(&["exec", "tc", "cat", "/tmp/run"])
            .status
            .success()
            .then_some(())
    });
    // Running: the tmpfs hides what the root filesystem has under it.
    answers.push(ok(&["exec", "tc", "ls", "/tmp"]));
    // Its copies see the root filesystem's /tmp, not the tmpfs, and write there too.
    answers.push(cp_out("/tmp/run"));
    answers.push(cp_out("/tmp/before"));
    ok(&["cp", host.to_str().unwrap(), "tc:/tmp/during"]);
    answers.push(ok(&["exec", "tc", "ls", "/tmp"]));
    ok(&["stop", "-t", "0", "tc"]);
    // Stopped: the root filesystem's /tmp again; what the run wrote is gone.
    answers.push(cp_out("/tmp/before"));
    answers.push(cp_out("/tmp/run"));
    answers.push(cp_out("/tmp/during"));
    ok(&["rm", "-f", "tc"]);
    answers
}

#[test]
fn copies_at_a_tmpfs_path_use_the_root_filesystems_dir() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let berth = tmpfs_steps(&|a: &[&str]| s.engine.docker(a), &s.image, dir.path());
    let not_found = "error: Error response from daemon: Could not find the file /tmp/run in \
                     container tc";
    assert_eq!(
        berth,
        [
            "before: put while stopped",
            "run",
            not_found,
            "before: put while stopped",
            "run",
            "before: put while stopped",
            not_found,
            "during: put while stopped",
        ]
    );
    assert!(
        std::path::Path::new(berth_testutil::DOCKERD).is_file(),
        "{} is missing: scripts/setup-debian.sh installs Debian's docker.io",
        berth_testutil::DOCKERD
    );
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = berth_testutil::Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    let dockerd = tmpfs_steps(&|a: &[&str]| dk.docker(a), &s.image, dir.path());
    assert_eq!(berth, dockerd);
}
