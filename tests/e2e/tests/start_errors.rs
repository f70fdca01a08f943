//! A process that cannot be started: the message and `docker run`'s exit code as dockerd's
//! (the CLI picks 127/126/125 from the message's words), compared side by side with a
//! reference dockerd (Debian's 20.10, runc 1.1; newer dockerds put `failed to create task for
//! container: ` first, as Berth does).

use berth_testutil::{BusyboxEngine, text};

/// `docker run`'s exit code and the daemon's message (the line after `docker: Error response
/// from daemon: `, without the CLI's trailing period).
fn refused(out: &std::process::Output) -> (i32, String) {
    let (_, err) = text(out);
    let line = err
        .lines()
        .find_map(|l| l.split_once("Error response from daemon: ").map(|(_, m)| m))
        .unwrap_or_else(|| panic!("no daemon error in {err:?}"));
    (
        out.status.code().unwrap_or(-1),
        line.trim_end_matches('.').to_owned(),
    )
}

#[test]
fn start_errors_read_and_exit_as_dockerds() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = berth_testutil::Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    let img = s.image.as_str();
    for (args, code) in [
        (vec!["nosuchcmd"], 127),
        (vec!["/etc"], 126),
        (vec!["/etc/passwd"], 126),
        (vec!["/nonexistent"], 127),
        (vec!["./nope"], 127),
    ] {
        let mut run = vec!["run", "--rm", img];
        run.extend(&args);
        let (berth_code, berth) = refused(&s.engine.docker(&run));
        let (dockerd_code, dockerd) = refused(&dk.docker(&run));
        assert_eq!(
            (berth_code, dockerd_code),
            (code, code),
            "{args:?}: {berth}"
        );
        // Berth names its own runtime where dockerd names runc.
        let dockerd = dockerd.replace("runc create failed", "berth-shim create failed");
        assert_eq!(
            berth,
            format!("failed to create task for container: {dockerd}"),
            "{args:?}"
        );
    }
    // Other failures: no Rust in the words, and the exit code the CLI gives dockerd's.
    for args in [
        vec!["--sysctl", "net.nosuch=1", img, "true"],
        vec!["--device", "/dev/nosuch", img, "true"],
        vec!["-v", "/etc/hostname:/etc/group/x", img, "true"],
    ] {
        let mut run = vec!["run", "--rm"];
        run.extend(&args);
        let (berth_code, berth) = refused(&s.engine.docker(&run));
        let (dockerd_code, dockerd) = refused(&dk.docker(&run));
        assert_eq!(berth_code, dockerd_code, "{args:?}: {berth}\n{dockerd}");
        assert!(!berth.contains("os error"), "{berth}");
        assert!(
            !berth.contains(&s.engine.run_root.display().to_string()),
            "{berth}"
        );
    }
    // docker start: the same words.
    s.docker(&["create", "--name", "nocmd", img, "nosuchcmd"]);
    let out = s.engine.docker(&["start", "nocmd"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains(
            "failed to create task for container: failed to create shim task: OCI runtime create \
             failed: berth-shim create failed: unable to start container process: exec: \"nosuchcmd\": \
             executable file not found in $PATH: unknown"
        ),
        "{}",
        text(&out).1
    );
    assert_eq!(s.inspect("nocmd")["State"]["ExitCode"], 127);
}
