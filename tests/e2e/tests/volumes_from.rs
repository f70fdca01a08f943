//! `--volumes-from` through the real docker CLI: the other container's volumes and binds at
//! the same places, `:ro` enforced, the container's own mounts winning, references counted,
//! dockerd's errors.

use berth_testutil::BusyboxEngine;

fn mount_at<'a>(c: &'a serde_json::Value, dest: &str) -> &'a serde_json::Value {
    c["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == dest)
        .unwrap_or_else(|| panic!("no mount at {dest}: {c}"))
}

#[test]
fn volumes_from_shares_the_mounts_of_another_container() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let host = s.engine.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hf"), "from host\n").unwrap();
    let bind = format!("{}:/h", host.display());
    let src = s.docker(&[
        "create",
        "--name",
        "src",
        "-v",
        "shared:/data",
        "-v",
        &bind,
        "-v",
        "/anon",
        img,
        "true",
    ]);
    let out = s.docker(&[
        "run",
        "--name",
        "user",
        "--volumes-from",
        "src",
        img,
        "sh",
        "-c",
        "echo x > /data/f && cat /h/hf && echo a > /anon/a",
    ]);
    assert_eq!(out, "from host");
    let user = s.inspect("user");
    assert_eq!(
        user["HostConfig"]["VolumesFrom"],
        serde_json::json!(["src"])
    );
    let data = mount_at(&user, "/data");
    assert_eq!(data["Name"], "shared");
    assert_eq!(data["RW"], true);
    assert_eq!(data["Mode"], "");
    let anon = mount_at(&user, "/anon")["Name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(mount_at(&s.inspect("src"), "/anon")["Name"], anon.as_str());
    assert_eq!(mount_at(&user, "/h")["Type"], "bind");

    // :ro makes every inherited mount read-only.
    let (code, _, err) = s.status(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        img,
        "touch",
        "/data/g",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(
        s.docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "src:ro",
            img,
            "cat",
            "/data/f"
        ]),
        "x"
    );

    // The container's own mount at a destination wins over the inherited one.
    s.docker(&[
        "create",
        "--name",
        "over",
        "--volumes-from",
        "src",
        "-v",
        "mine:/data",
        img,
        "true",
    ]);
    assert_eq!(mount_at(&s.inspect("over"), "/data")["Name"], "mine");
    s.docker(&["rm", "over"]);
    s.docker(&["volume", "rm", "mine"]);

    // References: the volume stays in use by the user after its source goes; rm -v of the
    // source keeps the anonymous volume the user still references.
    s.docker(&["rm", "-v", &src]);
    let user_id = user["Id"].as_str().unwrap();
    let (_, out) = s.fails(&["volume", "rm", "shared"]);
    assert!(
        out.contains(&format!("remove shared: volume is in use - [{user_id}]")),
        "{out}"
    );
    assert!(s.docker(&["volume", "ls", "-q"]).lines().any(|l| l == anon));
    s.docker(&["rm", "-v", "user"]);
    assert!(!s.docker(&["volume", "ls", "-q"]).lines().any(|l| l == anon));
    s.docker(&["volume", "rm", "shared"]);

    // dockerd's errors.
    let (_, out) = s.fails(&["create", "--volumes-from", "nosuch", img, "true"]);
    assert!(out.contains("No such container: nosuch"), "{out}");
    let (_, out) = s.fails(&["create", "--volumes-from", "x:rshared", img, "true"]);
    assert!(out.contains("invalid mode: rshared"), "{out}");
    assert_eq!(s.docker(&["volume", "ls", "-q"]), "");
    assert_eq!(s.docker(&["ps", "-aq"]), "");
}
