//! The classic builder's cache keyed by the context's files as they are hashed while the
//! context is unpacked (no file read back), and the image events a build emits, as dockerd's.

use berth_testutil::BusyboxEngine;

#[path = "support/classic_build.rs"]
mod classic_build;
use classic_build::{classic_ok, write};

/// A file of a copied directory changed in place, with the same size and modification time:
/// its COPY and the steps after it miss the cache; the file is in the image.
#[test]
fn a_same_size_change_in_a_copied_directory_misses_the_cache() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nENV A=1\nCOPY data/ /data/\nRUN cat /data/sub/f > /seen\n",
        s.image
    );
    write(
        ctx.path(),
        &[
            ("Dockerfile", &dockerfile),
            ("data/sub/f", "aaaa"),
            ("data/g", &"x".repeat(200_000)),
        ],
    );
    let path = ctx.path().to_str().unwrap();
    classic_ok(&s, &["build", "-t", "cached:1", path]);
    let again = classic_ok(&s, &["build", "-t", "cached:1", path]);
    assert_eq!(again.matches(" ---> Using cache\n").count(), 3, "{again}");
    let f = ctx.path().join("data/sub/f");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, "bbbb").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let changed = classic_ok(&s, &["build", "-t", "cached:2", path]);
    assert_eq!(
        changed.matches(" ---> Using cache\n").count(),
        1,
        "only ENV from the cache:\n{changed}"
    );
    assert_eq!(
        s.docker(&["run", "--rm", "cached:2", "cat", "/seen"]),
        "bbbb"
    );
    s.docker(&["rmi", "cached:1", "cached:2"]);
}

/// The context kept in memory (a plain context): an ignored file's change and a change beside
/// what is copied keep the cache, a change of a copied file's mode misses it; a context with a
/// symlink (unpacked and keyed from disk) is cached all the same.
#[test]
fn a_context_in_memory_keys_copies_by_what_they_copy() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "FROM {}\nCOPY app/ /app/\nCOPY *.txt /txt/\nRUN ls /app /txt > /seen\n",
        s.image
    );
    write(
        ctx.path(),
        &[
            ("Dockerfile", &dockerfile),
            (".dockerignore", "app/*.log\n"),
            ("app/main", "one"),
            ("app/debug.log", "a"),
            ("a.txt", "a"),
            ("other", "o"),
        ],
    );
    let path = ctx.path().to_str().unwrap();
    let first = classic_ok(&s, &["build", "-t", "mem:1", path]);
    assert!(!first.contains("Using cache"), "{first}");
    assert_eq!(
        s.docker(&["run", "--rm", "mem:1", "cat", "/seen"]),
        "/app:\nmain\n\n/txt:\na.txt",
        "the ignored file is not copied"
    );
    write(ctx.path(), &[("app/debug.log", "changed"), ("other", "p")]);
    let again = classic_ok(&s, &["build", "-t", "mem:1", path]);
    assert_eq!(again.matches(" ---> Using cache\n").count(), 3, "{again}");
    let main = ctx.path().join("app/main");
    std::fs::set_permissions(&main, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let changed = classic_ok(&s, &["build", "-t", "mem:2", path]);
    assert_eq!(
        changed.matches(" ---> Using cache\n").count(),
        0,
        "the mode of a copied file changed:\n{changed}"
    );
    write(ctx.path(), &[("b.txt", "b")]);
    let glob = classic_ok(&s, &["build", "-t", "mem:2", path]);
    assert_eq!(
        glob.matches(" ---> Using cache\n").count(),
        1,
        "only the first COPY: *.txt matches one more file:\n{glob}"
    );
    std::os::unix::fs::symlink("a.txt", ctx.path().join("link")).unwrap();
    let linked = classic_ok(&s, &["build", "-t", "mem:3", path]);
    let cached = classic_ok(&s, &["build", "-t", "mem:3", path]);
    assert!(!linked.is_empty());
    assert_eq!(cached.matches(" ---> Using cache\n").count(), 3, "{cached}");
    s.docker(&["rmi", "mem:1", "mem:2", "mem:3"]);
}

/// `docker events` of a build, as dockerd 28's classic builder emits them (moby
/// `CommitBuildStep` → `CommitImage`, then `TagImage`): an image `create` per committed step,
/// named by its ID and carrying the image's labels, then the tag's `tag`; a cached rebuild
/// commits nothing and only tags.
#[test]
fn a_build_emits_image_events_as_dockerd() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}\nLABEL team=core\nRUN echo x > /x\n", s.image),
        )],
    );
    let path = ctx.path().to_str().unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let events = |since: f64, until: f64| -> Vec<String> {
        s.docker(&[
            "events",
            "--since",
            &format!("{since:.3}"),
            "--until",
            &format!("{until:.3}"),
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let since = now() - 0.001;
    classic_ok(&s, &["build", "-t", "ev:1", path]);
    let until = now() + 0.001;
    let id = s.docker(&["image", "inspect", "-f", "{{.Id}}", "ev:1"]);
    let label_step = s.docker(&["image", "inspect", "-f", "{{.Parent}}", "ev:1"]);
    // The image's labels (busybox's own and the LABEL's), then `name`.
    let attributes = |name: &str| {
        let mut m: std::collections::BTreeMap<String, String> = serde_json::from_str(&s.docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Labels}}",
            "ev:1",
        ]))
        .unwrap();
        assert_eq!(m.get("team").map(String::as_str), Some("core"));
        m.insert("name".to_owned(), name.to_owned());
        serde_json::to_string(&m).unwrap()
    };
    let seen = events(since, until);
    assert_eq!(
        seen,
        [
            format!("create {label_step} {}", attributes(&label_step)),
            format!("create {id} {}", attributes(&id)),
            format!("tag {id} {}", attributes("ev:1")),
        ],
        "{seen:#?}"
    );
    let since = now() - 0.001;
    classic_ok(&s, &["build", "-t", "ev:2", path]);
    let until = now() + 0.001;
    assert_eq!(
        events(since, until),
        [format!("tag {id} {}", attributes("ev:2"))]
    );
    // The image has the tag already: nothing changes, the event is there all the same.
    let since = now() - 0.001;
    classic_ok(&s, &["build", "-t", "ev:2", path]);
    let until = now() + 0.001;
    assert_eq!(
        events(since, until),
        [format!("tag {id} {}", attributes("ev:2"))]
    );
    assert_eq!(
        s.docker(&["image", "inspect", "-f", "{{.Id}} {{.RepoTags}}", "ev:2"]),
        format!("{id} [ev:1 ev:2]")
    );
    s.docker(&["rmi", "ev:1", "ev:2"]);
}

/// `docker builder prune` is reported as dockerd reports it (moby `PruneCache`): a `builder`
/// event `prune` with the bytes reclaimed.
#[test]
fn builder_prune_emits_its_event() {
    let s = BusyboxEngine::new();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let since = now() - 0.001;
    s.docker(&["builder", "prune", "-f"]);
    let until = now() + 0.001;
    let seen = s.docker(&[
        "events",
        "--since",
        &format!("{since:.3}"),
        "--until",
        &format!("{until:.3}"),
        "--filter",
        "type=builder",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}{{json .Actor.Attributes}}",
    ]);
    assert_eq!(seen, "builder prune {\"reclaimed\":\"0\"}");
}
