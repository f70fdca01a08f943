//! The runtime killed between two steps of `docker create` or `docker rm` (at its failpoints,
//! `BERTH_RUNTIME_FAILPOINT`, which abort the process there once): after `berth up` restarts
//! it, there is no half-made container, no reserved name without a container, and no snapshot,
//! bundle or log left of a container that is not recorded.

use std::path::{Path, PathBuf};

use berth_testutil::{BusyboxEngine, EngineOptions, eventually};

/// An engine whose runtime aborts once at `point`.
fn engine_failing_at(point: &str, marker: &Path) -> BusyboxEngine {
    BusyboxEngine::with_options(
        &[],
        EngineOptions {
            env: vec![(
                "BERTH_RUNTIME_FAILPOINT".to_owned(),
                format!("{point}:{}", marker.display()),
            )],
            ..Default::default()
        },
    )
}

/// The container snapshot directories the images service holds.
fn snapshots(data_root: &Path) -> Vec<PathBuf> {
    let dir = data_root.join("images").join("snapshots");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Leftovers of containers: bundles and log directories.
fn container_dirs(s: &BusyboxEngine) -> Vec<PathBuf> {
    [
        s.engine.run_root.join("runtime/containers"),
        s.engine.data_root.join("runtime/containers"),
    ]
    .iter()
    .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
    .map(|e| e.path())
    .collect()
}

/// Waits until the restarted runtime answers and has collected what is not recorded.
fn settled(s: &BusyboxEngine) {
    eventually("the runtime to answer again", || {
        let (code, _, _) = s.status(&["ps", "-a"]);
        (code == 0).then_some(())
    });
    eventually("no snapshot or container directory left", || {
        (snapshots(&s.engine.data_root).is_empty() && container_dirs(s).is_empty()).then_some(())
    });
}

#[test]
fn create_killed_after_the_snapshot_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = engine_failing_at("create-after-snapshot", &marker);
    let (code, _, _) = s.status(&["create", "--name", "c1", &s.image, "true"]);
    assert_ne!(code, 0);
    assert!(marker.exists(), "the failpoint did not fire");
    settled(&s);
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    // The name was never reserved.
    let id = s.docker(&["create", "--name", "c1", &s.image, "true"]);
    assert_eq!(snapshots(&s.engine.data_root).len(), 1);
    s.docker(&["rm", &id]);
}

#[test]
fn create_killed_after_the_record_leaves_a_whole_container() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = engine_failing_at("create-after-record", &marker);
    let (code, _, _) = s.status(&["create", "--name", "c1", &s.image, "echo", "whole"]);
    assert_ne!(code, 0);
    assert!(marker.exists(), "the failpoint did not fire");
    eventually("the runtime to answer again", || {
        let (code, _, _) = s.status(&["ps", "-a"]);
        (code == 0).then_some(())
    });
    // Recorded with its snapshot: it runs, and goes away whole.
    assert_eq!(s.docker(&["ps", "-a", "--format", "{{.Names}}"]), "c1");
    assert_eq!(s.docker(&["start", "-a", "c1"]), "whole");
    s.docker(&["rm", "c1"]);
    settled(&s);
}

#[test]
fn remove_killed_after_the_record_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = engine_failing_at("remove-after-record", &marker);
    let id = s.docker(&["run", "--name", "c1", &s.image, "echo", "hi"]);
    assert_eq!(id, "hi");
    assert_eq!(snapshots(&s.engine.data_root).len(), 1);
    assert!(!container_dirs(&s).is_empty());
    let (code, _, _) = s.status(&["rm", "c1"]);
    assert_ne!(code, 0, "the runtime died under the rm");
    assert!(marker.exists(), "the failpoint did not fire");
    settled(&s);
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    // The name is free again.
    s.docker(&["create", "--name", "c1", &s.image, "true"]);
    s.docker(&["rm", "c1"]);
}

#[test]
fn create_killed_after_acquiring_volumes_leaves_no_reference() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = engine_failing_at("create-after-volumes", &marker);
    let (code, _, _) = s.status(&[
        "create", "--name", "c1", "-v", "named:/n", "-v", "/anon", &s.image, "true",
    ]);
    assert_ne!(code, 0);
    assert!(marker.exists(), "the failpoint did not fire");
    settled(&s);
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    // The volumes stay (data is never dropped on a guess), unreferenced.
    eventually("the references released", || {
        (s.docker(&["volume", "ls", "-q", "--filter", "dangling=false"])
            .is_empty()
            && s.docker(&["volume", "ls", "-q"]).lines().count() == 2)
            .then_some(())
    });
    s.docker(&["volume", "rm", "named"]);
    s.docker(&["volume", "prune", "-f"]);
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");
}

#[test]
fn start_killed_before_the_record_leaves_no_process() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = engine_failing_at("start-after-shim", &marker);
    let (code, _, _) = s.status(&["run", "-d", "--name", "c1", &s.image, "sleep", "300"]);
    assert_ne!(code, 0, "the runtime died under the start");
    assert!(marker.exists(), "the failpoint did not fire");
    eventually("the runtime to answer again", || {
        let (code, _, _) = s.status(&["ps", "-a"]);
        (code == 0).then_some(())
    });
    // The run was never recorded: its process and shim go, and the container is as before.
    eventually("the unrecorded run's shim gone", || {
        s.engine.shim_pids().is_empty().then_some(())
    });
    assert_eq!(
        s.docker(&["inspect", "-f", "{{.State.Status}}", "c1"]),
        "created"
    );
    s.docker(&["start", "c1"]);
    assert_eq!(s.engine.shim_pids().len(), 1);
    s.docker(&["rm", "-f", "c1"]);
    settled(&s);
    assert!(s.engine.shim_pids().is_empty());
}

/// The runtime killed after an exit's record and before its network and volumes are
/// released (which happen outside the records' lock): the restarted runtime releases them,
/// and the container starts again on the same network and volume.
#[test]
fn exit_killed_before_its_release_is_released_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = engine_failing_at("exit-before-release", &marker);
    let id = s.docker(&[
        "run",
        "-d",
        "--name",
        "leaver",
        "-v",
        "keep:/data",
        &s.image,
        "sh",
        "-c",
        "while [ ! -e /go ]; do sleep 0.1; done; exit 5",
    ]);
    let netns = s.engine.run_root.join("netns").join(&id);
    assert!(netns.exists());
    // Its answer may be lost with the runtime.
    let _ = s.status(&["exec", "leaver", "touch", "/go"]);
    eventually("the failpoint to fire", || marker.exists().then_some(()));
    eventually("the restarted runtime to release the network", || {
        let (code, _, _) = s.status(&["ps", "-a"]);
        (code == 0 && !netns.exists()).then_some(())
    });
    assert_eq!(s.inspect("leaver")["State"]["ExitCode"], 5);
    assert_eq!(s.docker(&["wait", "leaver"]), "5");
    s.docker(&["start", "leaver"]);
    assert_eq!(s.docker(&["wait", "leaver"]), "5");
    s.docker(&["rm", "leaver"]);
    s.docker(&["volume", "rm", "keep"]);
}
