//! docker commit's pause and its events, as dockerd: a running container is paused for the
//! commit and running (not paused) after; `--pause=false` leaves it alone; a paused one stays
//! paused. The events (container `pause`, image `create` and `tag`, container `commit`,
//! `unpause`) in that order, compared with Debian's dockerd.

use std::process::Output;

use berth_testutil::{BusyboxEngine, text};

/// Now, as `docker events --since` takes it (nanoseconds after the point).
fn now() -> String {
    let t = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{}.{:09}", t / 1_000_000_000, t % 1_000_000_000)
}

/// The commit-related events since `since`, in time order: `type action name`, where name
/// is the container's name or the image's `name` attribute (`<id>` for the image's ID).
fn commit_events(docker: &dyn Fn(&[&str]) -> Output, since: &str, id: &str) -> Vec<String> {
    let until = (time::OffsetDateTime::now_utc().unix_timestamp() + 1).to_string();
    let out = docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--format",
        "{{.TimeNano}} {{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let (o, e) = text(&out);
    assert!(out.status.success(), "docker events: {o}\n{e}");
    let mut rows: Vec<(i128, String)> = o
        .lines()
        .filter_map(|l| {
            let (t, rest) = l.split_once(' ')?;
            Some((t.parse().ok()?, rest.replace(id, "<id>")))
        })
        // The image's create only: the container's came before `since`.
        .filter(|(_, r)| {
            let action = r.split(' ').nth(1).unwrap_or_default();
            ["pause", "unpause", "commit", "tag", "create"].contains(&action)
                && !r.starts_with("container create")
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|r| r.1).collect()
}

/// docker commit of a running container (paused for it), with `--pause=false`, and of a
/// paused one; the container's state after and the events.
fn commit_steps(docker: &dyn Fn(&[&str]) -> Output, image: &str) -> Vec<Vec<String>> {
    let ok = |args: &[&str]| {
        let out = docker(args);
        let (o, e) = text(&out);
        assert!(out.status.success(), "docker {args:?}: {o}\n{e}");
        o.trim().to_owned()
    };
    let state = || {
        ok(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.Paused}}",
            "cm",
        ])
    };
    ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "cm",
        image,
        "sleep",
        "300",
    ]);
    let mut all = Vec::new();
    for (flags, tag) in [
        (&[][..], "cmimg:paused"),
        (&["--pause=false"][..], "cmimg:free"),
    ] {
        let since = now();
        let mut args = vec!["commit"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["cm", tag]);
        let id = ok(&args);
        // Running and not paused after: its processes go on.
        assert_eq!(state(), "true false", "after docker commit {flags:?}");
        ok(&["exec", "cm", "true"]);
        all.push(commit_events(docker, &since, &id));
    }
    // A container paused by its user stays paused.
    ok(&["pause", "cm"]);
    let since = now();
    let id = ok(&["commit", "cm", "cmimg:was-paused"]);
    assert_eq!(state(), "true true");
    all.push(commit_events(docker, &since, &id));
    ok(&["unpause", "cm"]);
    ok(&["rm", "-f", "cm"]);
    all
}

#[test]
fn commit_pauses_the_container_and_tells_as_dockerd() {
    let s = BusyboxEngine::new();
    let berth = commit_steps(&|a: &[&str]| s.engine.docker(a), &s.image);
    let want = |tag: &str, paused: bool| {
        let mut v = vec![
            "image create <id>".to_owned(),
            format!("image tag {tag}"),
            "container commit cm".to_owned(),
        ];
        if paused {
            v.insert(0, "container pause cm".to_owned());
            v.push("container unpause cm".to_owned());
        }
        v
    };
    assert_eq!(
        berth,
        vec![
            want("cmimg:paused", true),
            want("cmimg:free", false),
            want("cmimg:was-paused", false)
        ]
    );

    assert!(
        std::path::Path::new(berth_testutil::DOCKERD).is_file(),
        "{} is missing: scripts/setup-debian.sh installs Debian's docker.io",
        berth_testutil::DOCKERD
    );
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = berth_testutil::Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    let dockerd = commit_steps(&|a: &[&str]| dk.docker(a), &s.image);
    // dockerd 20.10 has no image `create` event for a commit: moby added it in 27 (API 1.46).
    let without_create = |v: Vec<Vec<String>>| -> Vec<Vec<String>> {
        v.into_iter()
            .map(|e| e.into_iter().filter(|r| r != "image create <id>").collect())
            .collect()
    };
    assert_eq!(without_create(berth), dockerd);
}
