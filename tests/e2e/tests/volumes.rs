//! Volumes and mounts through the real docker CLI: named volumes outlive their containers,
//! a fresh volume is filled from the image, a volume in use cannot be removed, binds are
//! read-only when asked, anonymous volumes go with `rm -v` and `run --rm`, prune takes what it
//! should, `--tmpfs` is a tmpfs; and nothing is left behind (no mounts, no directories outside
//! the engine's roots).

use std::os::unix::fs::MetadataExt;

use berth_testutil::{
    BusyboxEngine, MediaTypes, eventually,
    images::{Entry, ImageBuilder, LayerCompression, Layout, busybox_entries},
    push_layout, unix_now,
};

/// No mount on the host under the engine's directory.
fn no_mounts_under(dir: &std::path::Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let d = dir.display().to_string();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&d) && l.contains("volumes"))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn named_volumes_outlive_containers_copy_up_and_guard_removal() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let since = unix_now().to_string();
    assert_eq!(s.docker(&["volume", "create", "data1"]), "data1");
    s.docker(&[
        "run",
        "--rm",
        "-v",
        "data1:/data",
        img,
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    assert_eq!(
        s.docker(&["run", "--rm", "-v", "data1:/data", img, "cat", "/data/f"]),
        "hello"
    );
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", "data1"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    let mp = v["Mountpoint"].as_str().unwrap();
    assert!(
        mp.starts_with(&s.engine.data_root.display().to_string()),
        "{mp}"
    );
    assert!(mp.ends_with("/data1/_data"), "{mp}");
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/f")).unwrap(),
        "hello\n"
    );
    assert!(
        s.docker(&["volume", "ls", "-q", "--filter", "dangling=true"])
            .lines()
            .any(|l| l == "data1")
    );

    // In use: removal is refused, naming the container.
    let id = s.docker(&[
        "create",
        "--name",
        "user1",
        "-v",
        "data1:/data",
        img,
        "true",
    ]);
    assert_eq!(
        s.docker(&["ps", "-aq", "--no-trunc", "--filter", "volume=data1"]),
        id
    );
    assert_eq!(
        s.docker(&["ps", "-aq", "--no-trunc", "--filter", "volume=/data"]),
        id
    );
    let (_, out) = s.fails(&["volume", "rm", "data1"]);
    assert!(
        out.contains(&format!("remove data1: volume is in use - [{id}]")),
        "{out}"
    );
    assert_eq!(
        s.docker(&["volume", "ls", "-q", "--filter", "dangling=false"]),
        "data1"
    );
    let c = s.inspect("user1");
    let m = &c["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "data1");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Source"], mp);
    assert_eq!(m["RW"], true);
    assert_eq!(c["HostConfig"]["Binds"], serde_json::json!(["data1:/data"]));
    s.docker(&["rm", "user1"]);
    s.docker(&["volume", "rm", "data1"]);
    assert!(!std::path::Path::new(mp).exists());
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
        "volume=data1",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.lines().collect();
    assert_eq!(
        actions,
        ["create", "mount", "unmount", "mount", "unmount", "destroy"],
        "{events}"
    );

    // Copy-up: a fresh volume over the image's /etc holds its content; not with nocopy.
    let out = s.docker(&[
        "run",
        "--rm",
        "-v",
        "newvol:/etc",
        img,
        "cat",
        "/etc/passwd",
    ]);
    assert!(out.contains("root:"), "{out}");
    let out = s.docker(&["run", "--rm", "-v", "newvol:/x", img, "ls", "/x"]);
    assert!(out.lines().any(|l| l == "passwd"), "{out}");
    let out = s.docker(&["run", "--rm", "-v", "nocp:/etc:nocopy", img, "ls", "/etc"]);
    assert!(!out.lines().any(|l| l == "passwd"), "{out}");
    s.docker(&["volume", "rm", "newvol", "nocp"]);

    // Names that would leave the volumes' directory.
    let (_, out) = s.fails(&["volume", "create", "a/b"]);
    assert!(
        out.contains("includes invalid characters for a local volume name"),
        "{out}"
    );
    let (_, out) = s.fails(&["volume", "create", ".."]);
    assert!(out.contains("includes invalid characters"), "{out}");
    let (_, out) = s.fails(&["volume", "inspect", "nope"]);
    assert!(out.contains("get nope: no such volume"), "{out}");
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");
    no_mounts_under(s.engine.dir.path());
}

#[test]
fn binds_tmpfs_and_their_errors() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let host = s.engine.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from host\n").unwrap();
    let h = host.display().to_string();

    let ro = format!("{h}:/h:ro");
    assert_eq!(
        s.docker(&["run", "--rm", "-v", &ro, img, "cat", "/h/f"]),
        "from host"
    );
    let (code, _, err) = s.status(&["run", "--rm", "-v", &ro, img, "touch", "/h/x"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let rw = format!("{h}:/h");
    s.docker(&[
        "run",
        "--rm",
        "-v",
        &rw,
        img,
        "sh",
        "-c",
        "echo back > /h/g",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "back\n");

    // -v makes a missing source; --mount refuses it with dockerd's words.
    let made = format!("{h}/made/deep:/m");
    s.docker(&["run", "--rm", "-v", &made, img, "true"]);
    assert!(host.join("made/deep").is_dir());
    let missing = format!("type=bind,source={h}/nope,target=/x");
    let (_, out) = s.fails(&["run", "--rm", "--mount", &missing, img, "true"]);
    assert!(
        out.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {h}/nope"
        )),
        "{out}"
    );
    let (_, out) = s.fails(&["create", "-v", "/a:/b:bogus", img, "true"]);
    assert!(out.contains("invalid mode: bogus"), "{out}");
    let (_, out) = s.fails(&["create", "-v", "/a:/b", "-v", "/c:/b", img, "true"]);
    assert!(out.contains("Duplicate mount point: /b"), "{out}");

    // inspect: Binds as given, Mounts as dockerd shows a bind.
    s.docker(&["create", "--name", "b1", "-v", &ro, img, "true"]);
    let c = s.inspect("b1");
    assert_eq!(c["HostConfig"]["Binds"], serde_json::json!([ro]));
    let m = &c["Mounts"][0];
    assert_eq!(m["Type"], "bind");
    assert_eq!(m["Source"], h.as_str());
    assert_eq!(m["Destination"], "/h");
    assert_eq!(m["Mode"], "ro");
    assert_eq!(m["RW"], false);
    assert_eq!(m["Propagation"], "rprivate");
    s.docker(&["rm", "b1"]);

    // --tmpfs and --mount type=tmpfs are tmpfs mounts, with the size asked for.
    let out = s.docker(&[
        "run",
        "--rm",
        "--tmpfs",
        "/t",
        img,
        "grep",
        " /t ",
        "/proc/mounts",
    ]);
    assert!(out.starts_with("tmpfs /t tmpfs "), "{out}");
    let out = s.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t2,tmpfs-size=1m",
        img,
        "grep",
        " /t2 ",
        "/proc/mounts",
    ]);
    assert!(
        out.contains("tmpfs /t2 tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");
    no_mounts_under(s.engine.dir.path());
}

#[test]
fn anonymous_volumes_go_with_their_container_and_prune() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    s.docker(&["run", "--rm", "-v", "/anon", img, "touch", "/anon/x"]);
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");

    s.docker(&["create", "--name", "a1", "-v", "/anon", img, "true"]);
    let name = s.docker(&["volume", "ls", "-q"]);
    assert_eq!(name.len(), 64, "{name}");
    let c = s.inspect("a1");
    assert_eq!(c["Config"]["Volumes"], serde_json::json!({"/anon": {}}));
    assert_eq!(c["Mounts"][0]["Name"], name.as_str());
    assert_eq!(c["Mounts"][0]["Type"], "volume");
    let v: serde_json::Value =
        serde_json::from_str(&s.docker(&["volume", "inspect", &name])).unwrap();
    assert_eq!(
        v[0]["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    s.docker(&["rm", "-v", "a1"]);
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");

    // Without -v the anonymous volume stays; prune takes it but not a named one.
    s.docker(&["create", "--name", "a2", "-v", "/anon", img, "true"]);
    s.docker(&["rm", "a2"]);
    s.docker(&["volume", "create", "--label", "keep=1", "named1"]);
    s.docker(&["volume", "create", "inuse"]);
    s.docker(&["create", "--name", "holder", "-v", "inuse:/x", img, "true"]);
    let out = s.docker(&["volume", "prune", "-f"]);
    assert!(out.contains("Deleted Volumes:"), "{out}");
    let left = s.docker(&["volume", "ls", "-q"]);
    assert_eq!(left.lines().collect::<Vec<_>>(), ["inuse", "named1"]);
    let out = s.docker(&["volume", "prune", "-af", "--filter", "label!=keep"]);
    assert!(!out.contains("named1"), "{out}");
    let out = s.docker(&["volume", "prune", "-af"]);
    assert!(out.contains("named1"), "{out}");
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "inuse");
    s.docker(&["rm", "holder"]);
    s.docker(&["volume", "rm", "inuse"]);
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");
    // Nothing left in the volumes' directory but the store (the files of a removed volume
    // are deleted in the background) and spare directories, each an empty `_data`.
    let root = s.engine.data_root.join("volumes");
    berth_testutil::eventually("only the store left", || {
        let left: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".spare")
            .collect();
        (left == ["state.redb"]).then_some(())
    });
    for spare in std::fs::read_dir(root.join(".spare")).into_iter().flatten() {
        let spare = spare.unwrap().path();
        let inside: Vec<_> = std::fs::read_dir(&spare).unwrap().collect();
        assert_eq!(inside.len(), 1, "{}", spare.display());
        assert_eq!(std::fs::read_dir(spare.join("_data")).unwrap().count(), 0);
    }
    no_mounts_under(s.engine.dir.path());
}

#[test]
fn running_containers_keep_their_volumes_across_a_volumes_service_kill() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let id = s.docker(&[
        "run", "-d", "--name", "runner", "-v", "kept:/k", img, "sleep", "60",
    ]);
    s.engine.kill_and_await_restart("berth-volumes");
    eventually("the volumes service back", || {
        let (code, out, _) = s.status(&["volume", "ls", "-q"]);
        (code == 0).then_some(out)
    });
    s.docker(&["exec", "runner", "sh", "-c", "echo still > /k/y"]);
    let (_, out) = s.fails(&["volume", "rm", "kept"]);
    assert!(out.contains(&format!("volume is in use - [{id}]")), "{out}");
    s.docker(&["rm", "-f", "runner"]);
    assert_eq!(
        s.docker(&["run", "--rm", "-v", "kept:/k", img, "cat", "/k/y"]),
        "still"
    );
    s.docker(&["volume", "rm", "kept"]);
    no_mounts_under(s.engine.dir.path());
}

/// The image's VOLUMEs become anonymous volumes filled from the image (owners and modes
/// kept, links as links); a mount target or copy-up source that is a symlink out of the
/// image stays inside the container's root.
#[test]
fn image_volumes_are_anonymous_volumes_filled_from_the_image() {
    let s = BusyboxEngine::new();
    let secret = s.engine.dir.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("secret.txt"), "host only\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(&dir.path().join("layout"));
    let info = ImageBuilder::new(&layout, MediaTypes::Oci)
        .layer(LayerCompression::Gzip, &busybox_entries(), "busybox")
        .layer(
            LayerCompression::Gzip,
            &[
                Entry::dir("data", 0o750),
                Entry::file("data/seed.txt", 0o640, "seed\n").owner(65534, 65534),
                Entry::symlink("data/link", "/etc/passwd"),
                Entry::symlink("evil", &secret.display().to_string()),
            ],
            "data",
        )
        .set("Cmd", serde_json::json!(["sh"]))
        .set("Volumes", serde_json::json!({"/data": {}}))
        .write(Some("latest"));
    push_layout(&info.layout, "busyvol:latest", &s.registry, None).unwrap();
    let img = s.registry.image("busyvol:latest");
    s.docker(&["pull", &img]);

    assert_eq!(
        s.docker(&["run", "--rm", &img, "cat", "/data/seed.txt"]),
        "seed"
    );
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");

    s.docker(&["create", "--name", "iv", &img, "true"]);
    let c = s.inspect("iv");
    assert_eq!(c["Config"]["Volumes"], serde_json::json!({"/data": {}}));
    let m = &c["Mounts"][0];
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Name"].as_str().unwrap().len(), 64);
    let data = std::path::PathBuf::from(m["Source"].as_str().unwrap());
    let seed = std::fs::metadata(data.join("seed.txt")).unwrap();
    assert_eq!((seed.uid(), seed.mode() & 0o7777), (65534, 0o640));
    assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    s.docker(&["rm", "-v", "iv"]);
    assert!(!data.exists());

    // A named volume over the image's VOLUME takes its place.
    s.docker(&["create", "--name", "nv", "-v", "mine:/data", &img, "true"]);
    assert_eq!(s.inspect("nv")["Mounts"].as_array().unwrap().len(), 1);
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "mine");
    s.docker(&["rm", "-v", "nv"]);
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "mine");
    s.docker(&["volume", "rm", "mine"]);

    // /evil points at a host directory: inside the container it resolves in the root.
    let out = s.docker(&["run", "--rm", "-v", "ev:/evil", &img, "ls", "-A", "/evil"]);
    assert!(!out.contains("secret.txt"), "{out}");
    s.docker(&[
        "run",
        "--rm",
        "-v",
        "ev:/evil",
        &img,
        "touch",
        "/evil/written",
    ]);
    assert_eq!(
        std::fs::read_dir(&secret).unwrap().count(),
        1,
        "the host directory was written"
    );
    s.docker(&["volume", "rm", "ev"]);
    no_mounts_under(s.engine.dir.path());
}
