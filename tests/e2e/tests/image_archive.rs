//! Image archives and pushes through the real docker CLI: docker save and load (Berth's format,
//! Docker 20.10's legacy format, bad archives), docker import with changes, docker push to
//! private registries (with auth, layers already there, cross-repository mounts), pull jobs
//! shared by two images instances over NATS, and a round trip with
//! Debian's dockerd 20.10.

use std::{
    collections::HashSet,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use berth_testutil::{
    DOCKERD, Dockerd, Engine, EngineOptions, ImageInfo, MediaTypes, Nats, Registry, bin,
    eventually,
    images::{
        blob_path, busybox_entries, busybox_layout, layer_tar, sha256_digest, two_platform_index,
    },
    push_layout, run, text,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// An engine; `berth up` reports it up once the API and every backend answer.
fn up(opts: EngineOptions) -> Engine {
    let engine = Engine::up(opts);
    engine.docker_ok(&["images"]);
    engine
}

/// Runs docker, asserts it failed, and returns stdout and stderr together.
fn docker_fails(engine: &Engine, args: &[&str]) -> String {
    let out = engine.docker(args);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "docker {args:?} should have failed:\n{stdout}\n{stderr}"
    );
    format!("{stdout}\n{stderr}")
}

/// Runs docker with stdin from `file`; returns the output.
fn docker_stdin(engine: &Engine, args: &[&str], file: &Path) -> std::process::Output {
    let f = std::fs::File::open(file).expect("input file");
    run(engine.docker_cmd().args(args).stdin(Stdio::from(f)))
}

fn inspect(engine: &Engine, name: &str) -> serde_json::Value {
    let v = json(&engine.docker_ok(&["image", "inspect", name]));
    v[0].clone()
}

fn image_id(engine: &Engine, name: &str) -> String {
    inspect(engine, name)["Id"]
        .as_str()
        .expect("an Id")
        .to_owned()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("a string").to_owned())
        .collect()
}

/// How many images (not rows: an image with two tags is one).
fn image_count(engine: &Engine) -> usize {
    engine
        .docker_ok(&["images", "-aq", "--no-trunc"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<HashSet<_>>()
        .len()
}

fn images_root(engine: &Engine) -> PathBuf {
    engine.data_root.join("images")
}

/// Half-written things: anything in `ingest/`, any `overlay2/tmp-*`.
fn leftovers(engine: &Engine) -> Vec<PathBuf> {
    let root = images_root(engine);
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("ingest"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    if let Ok(d) = std::fs::read_dir(root.join("overlay2")) {
        out.extend(
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("tmp-"))
                .map(|e| e.path()),
        );
    }
    out
}

fn count_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Blobs in the content store and unpacked layers.
fn stored(engine: &Engine) -> (usize, usize) {
    let root = images_root(engine);
    (
        count_in(&root.join("blobs/sha256")),
        count_in(&root.join("overlay2")),
    )
}

/// A busybox layout pushed to `reg` as `name_tag` and pulled into `engine`; returns the layout
/// (kept alive by the guard) and the reference pulled.
fn pull_busybox(
    engine: &Engine,
    reg: &Registry,
    name_tag: &str,
) -> (tempfile::TempDir, ImageInfo, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let info = busybox_layout(&dir.path().join("layout"), MediaTypes::Oci);
    push_layout(&info.layout, name_tag, reg, reg.credentials())
        .unwrap_or_else(|e| panic!("push {name_tag}: {e:#}\n{}", reg.logs()));
    let reference = reg.image(name_tag);
    engine.docker_ok(&["pull", &reference]);
    (dir, info, reference)
}

/// The busybox root filesystem as an uncompressed tar file in `dir`.
fn rootfs_tar(dir: &Path) -> (PathBuf, String) {
    let tar = layer_tar(&busybox_entries());
    let path = dir.join("rootfs.tar");
    std::fs::write(&path, &tar).expect("write rootfs.tar");
    (path, sha256_digest(&tar))
}

/// The regular files of a tar (path → content).
fn tar_files(path: &Path) -> Vec<(String, Vec<u8>)> {
    let out = run(Command::new("tar").arg("-tf").arg(path));
    assert!(out.status.success(), "tar -tf {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|name| {
            let o = run(Command::new("tar").arg("-xOf").arg(path).arg(name));
            (name.to_owned(), o.stdout)
        })
        .collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(p, _)| p == name)
        .unwrap_or_else(|| panic!("{name} not in the archive"))
        .1
}

/// `GET path` on the engine's socket (HTTP/1.0: the body ends with the connection); asserts a
/// 200 and returns the body.
fn get_over_unix(engine: &Engine, path: &str) -> Vec<u8> {
    let mut s = engine.api_socket();
    write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..end]);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: application/x-tar"),
        "{head}"
    );
    raw[end + 4..].to_vec()
}

/// Packs `names` (relative to `dir`, in this order) into the tar `out` with GNU tar.
fn pack(dir: &Path, names: &[&str], out: &Path) {
    let o = run(Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .args(names));
    assert!(o.status.success(), "tar: {}", text(&o).1);
}

// ---------------------------------------------------------------------------------------------
// docker save / docker load
// ---------------------------------------------------------------------------------------------

#[test]
fn save_rmi_load_round_trip_keeps_ids_tags_and_layers() {
    let engine = up(EngineOptions::default());
    let reg = Registry::start();
    let (_layout, info, pulled) = pull_busybox(&engine, &reg, "library/busybox:latest");
    engine.docker_ok(&["tag", &pulled, "bb:1"]);
    let before = inspect(&engine, "bb:1");
    assert_eq!(before["Id"], info.image_id());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bb.tar");
    engine.docker_ok(&["save", "bb:1", &pulled, "-o", archive.to_str().unwrap()]);

    // The archive: moby's format, blobs as stored (the pulled gzip layer), verified names.
    let files = tar_files(&archive);
    for (path, data) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256_digest(data), format!("sha256:{hex}"), "{path}");
        }
    }
    assert_eq!(
        file(&files, "oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let legacy = json(&String::from_utf8_lossy(file(&files, "manifest.json")));
    assert_eq!(legacy.as_array().unwrap().len(), 1, "{legacy}");
    let mut tags = strs(&legacy[0]["RepoTags"]);
    tags.sort();
    assert_eq!(tags, [pulled.clone(), "bb:1".to_owned()]);
    assert_eq!(
        legacy[0]["Config"],
        format!("blobs/sha256/{}", &info.config_digest[7..])
    );
    assert_eq!(
        strs(&legacy[0]["Layers"]),
        [format!("blobs/sha256/{}", &info.layers[0].digest[7..])]
    );
    let index = json(&String::from_utf8_lossy(file(&files, "index.json")));
    let names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(
                m["digest"],
                info.manifest_digest.as_str(),
                "the pulled manifest"
            );
            m["annotations"]["io.containerd.image.name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        names.contains(&"docker.io/library/bb:1".to_owned()),
        "{names:?}"
    );
    let repositories = json(&String::from_utf8_lossy(file(&files, "repositories")));
    assert!(repositories["bb"]["1"].is_string(), "{repositories}");

    // GET /images/{name}/get (docker-py's save) gives the same bytes: the archive is
    // deterministic (fixed times, one order).
    let again = get_over_unix(&engine, &format!("/v1.50/images/{pulled}/get"));
    let named = dir.path().join("named.tar");
    engine.docker_ok(&["save", "-o", named.to_str().unwrap(), &pulled]);
    assert!(
        again == std::fs::read(&named).unwrap(),
        "the two saves differ"
    );

    engine.docker_ok(&["rmi", "bb:1", &pulled]);
    assert_eq!(image_count(&engine), 0);
    let out = engine.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: bb:1"), "{out}");
    assert!(out.contains(&format!("Loaded image: {pulled}")), "{out}");
    let after = inspect(&engine, "bb:1");
    assert_eq!(after["Id"], before["Id"]);
    assert_eq!(after["RootFS"], before["RootFS"]);
    assert_eq!(
        after["RootFS"]["Layers"],
        serde_json::json!(info.diff_ids())
    );
    assert_eq!(after["Config"], before["Config"]);
    assert_eq!(image_id(&engine, &pulled), info.image_id());
    // The files, without a container: the layer directory inspect names.
    let upper = after["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert_eq!(
        std::fs::read(Path::new(upper).join("bin/busybox")).unwrap(),
        berth_testutil::images::busybox_binary()
    );
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));

    // docker load from stdin, of an image that is already there: the same answer.
    let out = docker_stdin(&engine, &["load"], &archive);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("Loaded image: bb:1"));
    assert_eq!(image_count(&engine), 1);

    // Events: save and load, with the image ID.
    for action in ["save", "load"] {
        wait_for_event(&engine, &format!("{action} {}", info.image_id()));
    }
}

/// Waits until `docker events` (replayed up to now) has a line `<action> <actor ID>`.
fn wait_for_event(engine: &Engine, line: &str) {
    eventually(&format!("the event {line}"), || {
        engine
            .docker_ok(&[
                "events",
                "--since",
                "10m",
                "--until",
                "0s",
                "--filter",
                "type=image",
                "--format",
                "{{.Action}} {{.Actor.ID}}",
            ])
            .lines()
            .any(|l| l == line)
            .then_some(())
    });
}

#[test]
fn save_two_images_to_stdout_and_load_them_into_another_engine() {
    let engine = up(EngineOptions::default());
    let reg = Registry::start();
    let (_layout, info, pulled) = pull_busybox(&engine, &reg, "two/busybox:1");
    let dir = tempfile::tempdir().unwrap();
    let (rootfs, _) = rootfs_tar(dir.path());
    let imported = engine
        .docker_ok(&["import", rootfs.to_str().unwrap(), "imported:v1"])
        .trim()
        .to_owned();
    let archive = dir.path().join("two.tar");
    // docker save > file
    let out = run(engine
        .docker_cmd()
        .args(["save", &pulled, "imported:v1"])
        .stdout(Stdio::from(std::fs::File::create(&archive).unwrap())));
    assert!(out.status.success(), "{:?}", text(&out));
    let legacy = json(&String::from_utf8_lossy(file(
        &tar_files(&archive),
        "manifest.json",
    )));
    assert_eq!(legacy.as_array().unwrap().len(), 2, "{legacy}");

    let other = up(EngineOptions::default());
    let out = other.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("Loaded image: imported:v1"), "{out}");
    assert!(out.contains(&format!("Loaded image: {pulled}")), "{out}");
    assert_eq!(image_id(&other, &pulled), info.image_id());
    assert_eq!(image_id(&other, "imported:v1"), imported);
    assert_eq!(image_count(&other), 2);
    // An untagged save loads untagged, by ID.
    let by_id = dir.path().join("id.tar");
    other.docker_ok(&["save", "-o", by_id.to_str().unwrap(), &imported[7..19]]);
    engine.docker_ok(&["rmi", "imported:v1"]);
    let out = engine.docker_ok(&["load", "-i", by_id.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image ID: {imported}"));
}

/// A tar as dockerd 20.10's `docker save` writes it: `<v1 id>/layer.tar` (uncompressed) with
/// `json` and `VERSION`, the config as `<id>.json`, `manifest.json` and `repositories`.
fn legacy_archive(dir: &Path) -> (PathBuf, String, String) {
    let layer = layer_tar(&busybox_entries());
    let diff_id = sha256_digest(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"from": "docker-20.10"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "legacy"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let id = sha256_digest(&config);
    let v1 = &sha256_digest(b"a v1 layer id")[7..];
    let root = dir.join("legacy");
    std::fs::create_dir_all(root.join(v1)).unwrap();
    std::fs::write(root.join(v1).join("layer.tar"), &layer).unwrap();
    std::fs::write(root.join(v1).join("VERSION"), "1.0").unwrap();
    std::fs::write(root.join(v1).join("json"), format!(r#"{{"id":"{v1}"}}"#)).unwrap();
    std::fs::write(root.join(format!("{}.json", &id[7..])), &config).unwrap();
    std::fs::write(
        root.join("manifest.json"),
        serde_json::to_vec(&serde_json::json!([{
            "Config": format!("{}.json", &id[7..]),
            "RepoTags": ["legacy/busybox:20.10"],
            "Layers": [format!("{v1}/layer.tar")],
        }]))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        root.join("repositories"),
        format!(r#"{{"legacy/busybox":{{"20.10":"{v1}"}}}}"#),
    )
    .unwrap();
    let out = dir.join("legacy.tar");
    let layer_path = format!("{v1}/layer.tar");
    let json_path = format!("{v1}/json");
    let version_path = format!("{v1}/VERSION");
    let config_path = format!("{}.json", &id[7..]);
    pack(
        &root,
        &[
            &version_path,
            &json_path,
            &layer_path,
            &config_path,
            "manifest.json",
            "repositories",
        ],
        &out,
    );
    (out, id, diff_id)
}

#[test]
fn load_legacy_and_oci_archives_and_refuse_bad_ones() {
    let engine = up(EngineOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (archive, id, diff_id) = legacy_archive(dir.path());
    let out = engine.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: legacy/busybox:20.10");
    let img = inspect(&engine, "legacy/busybox:20.10");
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert_eq!(img["Config"]["Labels"]["from"], "docker-20.10");
    let upper = img["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(Path::new(upper).join("bin/busybox").is_file());

    // An OCI image layout alone (no manifest.json), as skopeo or buildx write it: a bare tag
    // names no repository, so the image loads untagged; containerd's name annotation tags it.
    let oci = busybox_layout(&dir.path().join("oci-only"), MediaTypes::Oci);
    let config = format!("blobs/sha256/{}", &oci.config_digest[7..]);
    let manifest = format!("blobs/sha256/{}", &oci.manifest_digest[7..]);
    let layer = format!("blobs/sha256/{}", &oci.layers[0].digest[7..]);
    let contents = ["oci-layout", "index.json", &config, &manifest, &layer];
    let oci_tar = dir.path().join("oci-only.tar");
    pack(&oci.layout, &contents, &oci_tar);
    let out = engine.docker_ok(&["load", "-i", oci_tar.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image ID: {}", oci.image_id()));
    let index_path = oci.layout.join("index.json");
    let mut index = json(&std::fs::read_to_string(&index_path).unwrap());
    index["manifests"][0]["annotations"]["io.containerd.image.name"] =
        "docker.io/library/oci-only:1".into();
    std::fs::write(&index_path, index.to_string()).unwrap();
    pack(&oci.layout, &contents, &oci_tar);
    let out = engine.docker_ok(&["load", "-q", "-i", oci_tar.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: oci-only:1");
    assert_eq!(image_id(&engine, "oci-only:1"), oci.image_id());

    // An OCI layout whose index.json names a manifest list: the host's platform is loaded.
    let multi = two_platform_index(&dir.path().join("multi"), MediaTypes::Docker);
    let mut contents: Vec<String> = vec!["oci-layout".into(), "index.json".into()];
    for e in std::fs::read_dir(multi.layout.join("blobs/sha256")).unwrap() {
        contents.push(format!(
            "blobs/sha256/{}",
            e.unwrap().file_name().to_string_lossy()
        ));
    }
    let contents: Vec<&str> = contents.iter().map(String::as_str).collect();
    let multi_tar = dir.path().join("multi.tar");
    pack(&multi.layout, &contents, &multi_tar);
    let out = engine.docker_ok(&["load", "-i", multi_tar.to_str().unwrap()]);
    let amd64 = multi.for_platform("linux", "amd64").unwrap();
    assert_eq!(out.trim(), format!("Loaded image ID: {}", amd64.image_id()));

    let images = image_count(&engine);
    let (blobs, layers) = stored(&engine);
    let unchanged = |what: &str| {
        assert_eq!(image_count(&engine), images, "images after {what}");
        assert_eq!(
            stored(&engine),
            (blobs, layers),
            "blobs, layers after {what}"
        );
        assert!(
            leftovers(&engine).is_empty(),
            "leftovers after {what}: {:?}",
            leftovers(&engine)
        );
    };

    // Not a tar at all.
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(
        &garbage,
        b"this is not a tar archive, not even close\n".repeat(40),
    )
    .unwrap();
    let err = docker_fails(&engine, &["load", "-i", garbage.to_str().unwrap()]);
    assert!(err.contains("invalid tar archive"), "{err}");
    unchanged("garbage");

    // A tar, but not docker save's.
    let plain = dir.path().join("plain.tar");
    let (rootfs, _) = rootfs_tar(dir.path());
    std::fs::copy(&rootfs, &plain).unwrap();
    let err = docker_fails(&engine, &["load", "-i", plain.to_str().unwrap()]);
    assert!(
        err.contains("neither manifest.json nor index.json"),
        "{err}"
    );
    unchanged("a rootfs tar");

    // An OCI layout whose layer blob is not what its name says.
    let info = busybox_layout(&dir.path().join("oci"), MediaTypes::Oci);
    let blob = blob_path(&info.layout, &info.layers[0].digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let bad = dir.path().join("bad-digest.tar");
    let blobs_dir = format!("blobs/sha256/{}", &info.layers[0].digest[7..]);
    let config = format!("blobs/sha256/{}", &info.config_digest[7..]);
    let manifest = format!("blobs/sha256/{}", &info.manifest_digest[7..]);
    pack(
        &info.layout,
        &["oci-layout", "index.json", &config, &manifest, &blobs_dir],
        &bad,
    );
    let err = docker_fails(&engine, &["load", "-i", bad.to_str().unwrap()]);
    assert!(
        err.contains("does not hold the blob its name says"),
        "{err}"
    );
    unchanged("a wrong digest");

    // A layer that is not the config's diff_id.
    let liar_dir = dir.path().join("liar");
    std::fs::create_dir_all(liar_dir.join("l")).unwrap();
    std::fs::write(
        liar_dir.join("l/layer.tar"),
        layer_tar(&busybox_entries()[..3]),
    )
    .unwrap();
    std::fs::write(
        liar_dir.join("c.json"),
        serde_json::to_vec(&serde_json::json!({"os": "linux", "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]}}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        liar_dir.join("manifest.json"),
        r#"[{"Config":"c.json","RepoTags":["liar:1"],"Layers":["l/layer.tar"]}]"#,
    )
    .unwrap();
    let liar = dir.path().join("liar.tar");
    pack(
        &liar_dir,
        &["l/layer.tar", "c.json", "manifest.json"],
        &liar,
    );
    let err = docker_fails(&engine, &["load", "-i", liar.to_str().unwrap()]);
    assert!(err.contains("does not match the image's diff_id"), "{err}");
    unchanged("a wrong diff_id");
}

/// docker load of something that is not an archive: 200 and an error line, as dockerd (whose
/// postImagesLoad writes its headers before it loads); docker-py raises ImageLoadError from
/// it, the CLI prints it and fails.
#[test]
fn load_of_a_non_archive_is_an_error_line_in_a_200_stream() {
    let engine = up(EngineOptions::default());
    let garbage = b"this is not a tar archive, not even close\n".repeat(40);
    let mut sock = engine.api_socket();
    write!(
        sock,
        "POST /v1.50/images/load?quiet=1 HTTP/1.0\r\nHost: berth\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        garbage.len()
    )
    .expect("request");
    sock.write_all(&garbage).expect("body");
    let mut raw = String::new();
    sock.read_to_string(&mut raw).expect("response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let line = json(body.trim_end());
    let message = line["error"].as_str().unwrap_or_default();
    assert!(message.contains("invalid tar archive"), "{body}");
    assert_eq!(line["errorDetail"]["message"], message, "{body}");

    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
try:
    c.images.load(b"this is not a tar archive, not even close\\n" * 40)
except docker.errors.ImageLoadError as e:
    assert "invalid tar archive" in str(e), e
else:
    raise AssertionError("loaded")
print("ok")
"#;
    let out = run(Command::new("python3").args(["-c", script, &engine.docker_host]));
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
    assert_eq!(image_count(&engine), 0);
}

// ---------------------------------------------------------------------------------------------
// docker import
// ---------------------------------------------------------------------------------------------

/// Serves `body` once over HTTP on 127.0.0.1; returns the URL.
fn serve_once(body: Vec<u8>) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/rootfs.tar", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
            head.push(b[0]);
        }
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
    });
    (url, t)
}

#[test]
fn import_applies_changes_and_reads_stdin_and_urls() {
    let engine = up(EngineOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let (rootfs, diff_id) = rootfs_tar(dir.path());
    let out = engine.docker_ok(&[
        "import",
        "--change",
        r#"CMD ["sh", "-c", "echo hi"]"#,
        "--change",
        "ENV GREETING=hello PATH=/bin",
        "--change",
        "WORKDIR /srv/app",
        "--change",
        "LABEL org.example.kind=imported",
        "--change",
        "EXPOSE 8080",
        "-m",
        "imported for a test",
        rootfs.to_str().unwrap(),
        "imported/busybox:changes",
    ]);
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let img = inspect(&engine, "imported/busybox:changes");
    assert_eq!(img["Id"], id);
    let c = &img["Config"];
    assert_eq!(c["Cmd"], serde_json::json!(["sh", "-c", "echo hi"]));
    assert_eq!(c["Env"], serde_json::json!(["GREETING=hello", "PATH=/bin"]));
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Labels"]["org.example.kind"], "imported");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(img["Comment"], "imported for a test");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Layers"], serde_json::json!([diff_id]));
    let upper = img["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(Path::new(upper).join("bin/busybox").is_file());
    let history = engine.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}",
        "imported/busybox:changes",
    ]);
    assert_eq!(history.trim(), "imported for a test");

    // From stdin, gzipped: the same layer, the default comment.
    let gz = dir.path().join("rootfs.tar.gz");
    let o = run(Command::new("gzip").arg("-k").arg("-n").arg(&rootfs));
    assert!(o.status.success());
    let out = docker_stdin(&engine, &["import", "-", "from-stdin"], &gz);
    assert!(out.status.success(), "{:?}", text(&out));
    let img = inspect(&engine, "from-stdin:latest");
    assert_eq!(img["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert_eq!(img["Comment"], "Imported from -");

    // From a URL on the loopback interface.
    let (url, server) = serve_once(std::fs::read(&rootfs).unwrap());
    engine.docker_ok(&["import", &url, "from-url:1"]);
    server.join().unwrap();
    let img = inspect(&engine, "from-url:1");
    assert_eq!(img["Comment"], format!("Imported from {url}"));

    // Refused: a change Docker does not take, a URL elsewhere, a body that is no tar.
    let images = image_count(&engine);
    let err = docker_fails(
        &engine,
        &[
            "import",
            "--change",
            "RUN rm -rf /",
            rootfs.to_str().unwrap(),
        ],
    );
    assert!(err.contains("RUN is not a valid change command"), "{err}");
    let err = docker_fails(
        &engine,
        &["import", "--change", "BOGUS x", rootfs.to_str().unwrap()],
    );
    assert!(err.contains("unknown instruction: BOGUS"), "{err}");
    let err = docker_fails(&engine, &["import", "http://192.0.2.1/rootfs.tar"]);
    assert!(
        err.contains("only http:// URLs on the loopback interface"),
        "{err}"
    );
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x42u8; 4096]).unwrap();
    let err = docker_fails(&engine, &["import", garbage.to_str().unwrap(), "nope"]);
    assert!(err.contains("invalid tar archive"), "{err}");
    assert_eq!(image_count(&engine), images);
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));

    wait_for_event(&engine, &format!("import {id}"));
}

// ---------------------------------------------------------------------------------------------
// docker push
// ---------------------------------------------------------------------------------------------

/// Imports the busybox root filesystem as `name` (an image no registry has seen).
fn import_busybox(engine: &Engine, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (rootfs, _) = rootfs_tar(dir.path());
    engine
        .docker_ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            rootfs.to_str().unwrap(),
            name,
        ])
        .trim()
        .to_owned()
}

#[test]
fn push_then_pull_into_another_engine_then_layers_exist_and_mount_across_repositories() {
    let engine = up(EngineOptions::default());
    let reg = Registry::start();
    let one = reg.image("one/busybox:1");
    let id = import_busybox(&engine, &one);
    let out = engine.docker_ok(&["push", &one]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}]",
            reg.image("one/busybox")
        )),
        "{out}"
    );
    assert!(out.contains("Pushed"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("1: digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line: {out}"));
    let digest = line.split_whitespace().nth(2).unwrap().to_owned();
    let size: usize = line.rsplit(' ').next().unwrap().parse().unwrap();

    // What the registry holds: the manifest pushed, with a gzip layer (the import was a plain
    // tar: compressed for the push) and the config.
    let m = reg.manifest("one/busybox", "1").unwrap().expect("pushed");
    assert_eq!(m.digest, digest);
    assert_eq!(m.body.len(), size);
    let manifest = m.json();
    assert_eq!(manifest["config"]["digest"], id.as_str());
    assert!(
        manifest["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("gzip"),
        "{manifest}"
    );
    let repo_digests = inspect(&engine, &one)["RepoDigests"].clone();
    assert_eq!(
        strs(&repo_digests),
        [format!("{}@{digest}", reg.image("one/busybox"))]
    );

    // Again: nothing to upload, the same digest.
    let out = engine.docker_ok(&["push", &one]);
    assert!(out.contains("Layer already exists"), "{out}");
    assert!(out.contains(&format!("1: digest: {digest}")), "{out}");

    // To another repository of the same registry: mounted, not uploaded.
    let two = reg.image("two/busybox:2");
    engine.docker_ok(&["tag", &one, &two]);
    let out = engine.docker_ok(&["push", &two]);
    assert!(out.contains("Mounted from one/busybox"), "{out}");
    assert!(!out.contains("Pushed"), "{out}");
    assert!(out.contains(&format!("2: digest: {digest}")), "{out}");

    // Another engine pulls it: the same image.
    let other = up(EngineOptions::default());
    other.docker_ok(&["pull", &two]);
    assert_eq!(image_id(&other, &two), id);
    other.docker_ok(&["pull", &one]);
    assert_eq!(image_id(&other, &one), id);

    // A tag nothing has.
    let err = docker_fails(&engine, &["push", &reg.image("one/busybox:nope")]);
    assert!(err.contains("does not exist locally"), "{err}");

    wait_for_event(&engine, &format!("push {two}"));
}

#[test]
fn push_a_pulled_image_keeps_its_manifest_and_needs_login_on_an_auth_registry() {
    let engine = up(EngineOptions::default());
    let open = Registry::start();
    let (_layout, info, pulled) = pull_busybox(&engine, &open, "src/busybox:latest");
    let reg = Registry::with_auth("pusher", "s3cret");
    let target = reg.image("private/busybox:v1");
    engine.docker_ok(&["tag", &pulled, &target]);

    let err = docker_fails(&engine, &["push", &target]);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(reg.manifest("private/busybox", "v1").unwrap().is_none());

    let mut child = engine
        .docker_cmd()
        .args(["login", "-u", "pusher", "--password-stdin", &reg.addr()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret\n")
        .expect("password");
    let login = child.wait_with_output().expect("docker login");
    assert!(
        text(&login).0.contains("Login Succeeded"),
        "{:?}",
        text(&login)
    );
    let out = engine.docker_ok(&["push", &target]);
    assert!(out.contains("Pushed"), "{out}");
    // A pulled image goes out with the manifest it was pulled with.
    assert!(
        out.contains(&format!(
            "v1: digest: {} size: {}",
            info.manifest_digest, info.manifest_size
        )),
        "{out}"
    );
    let m = reg.manifest("private/busybox", "v1").unwrap().unwrap();
    assert_eq!(m.body, info.manifest_bytes());
}

// ---------------------------------------------------------------------------------------------
// Pull jobs over NATS
// ---------------------------------------------------------------------------------------------

/// A second images service process (its own data and run roots, the engine's NATS). Killed on
/// drop.
struct SecondImages {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl SecondImages {
    fn start(nats_url: &str) -> SecondImages {
        let dir = tempfile::Builder::new()
            .prefix("berth-images2")
            .tempdir()
            .unwrap();
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, r#"{"berth": {"heartbeat-interval-ms": 300}}"#).unwrap();
        let log = dir.path().join("images.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin("berth-images"))
            .arg("--config")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--run-root")
            .arg(dir.path().join("run"))
            .arg("--nats-url")
            .arg(nats_url)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("berth-images");
        SecondImages {
            child,
            _dir: dir,
            log,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SecondImages {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pull_jobs_on_nats_are_shared_by_two_images_instances() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::start(dir.path().join("nats"));
    let engine = up(EngineOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    });
    let second = SecondImages::start(&nats.url());
    let reg = Registry::start();
    let layout = busybox_layout(&dir.path().join("layout"), MediaTypes::Docker);
    for tag in ["1", "2", "3"] {
        push_layout(&layout.layout, &format!("jobs/busybox:{tag}"), &reg, None).unwrap();
    }
    let want = layout.image_id().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine_pid = engine
        .pid_of("berth-images")
        .expect("the engine's images service");
    let second_pid = second.child.id();
    rt.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .request_timeout(Some(Duration::from_secs(120)))
            .connect(nats.url())
            .await
            .unwrap();
        // Both instances are up (and subscribed) once both send heartbeats.
        let mut beats = client.subscribe("berth.health.images").await.unwrap();
        let mut seen = HashSet::new();
        tokio::time::timeout(berth_testutil::patience(), async {
            while seen.len() < 2 {
                let m = futures::StreamExt::next(&mut beats).await.unwrap();
                let hb = json(&String::from_utf8_lossy(&m.payload));
                seen.insert(hb["pid"].as_u64().unwrap() as u32);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("heartbeats: {seen:?}\n{}", second.logs()));
        assert_eq!(
            seen,
            HashSet::from([engine_pid as u32, second_pid]),
            "the two instances"
        );

        // One job with its progress.
        let mut progress = client
            .subscribe("berth.jobs.pull.job-first.progress")
            .await
            .unwrap();
        client.flush().await.unwrap();
        let job = serde_json::json!({"reference": reg.image("jobs/busybox:1"), "id": "job-first"});
        let reply = client
            .request("berth.jobs.pull", job.to_string().into())
            .await
            .unwrap();
        let reply = json(&String::from_utf8_lossy(&reply.payload));
        assert_eq!(reply["error"], "", "{reply}");
        assert_eq!(reply["id"], want.as_str(), "{reply}");
        assert_eq!(reply["job"], "job-first");
        let mut statuses = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(
            Duration::from_secs(2),
            futures::StreamExt::next(&mut progress),
        )
        .await
        {
            statuses.push(json(&String::from_utf8_lossy(&m.payload))["status"].clone());
        }
        assert!(
            statuses
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.starts_with("Digest: sha256:"))),
            "{statuses:?}"
        );

        // Batches of jobs until both instances took some (each job goes to one of them).
        let mut instances = HashSet::new();
        let mut pids = HashSet::new();
        let mut sent = 0;
        while pids.len() < 2 && sent < 64 {
            let batch: Vec<_> = (0..8)
                .map(|i| {
                    let tag = ["1", "2", "3"][(sent + i) % 3];
                    let job = serde_json::json!({
                        "reference": reg.image(&format!("jobs/busybox:{tag}")),
                        "id": format!("job-{}", sent + i),
                    });
                    client.request("berth.jobs.pull", job.to_string().into())
                })
                .collect();
            for r in futures::future::join_all(batch).await {
                let r = json(&String::from_utf8_lossy(&r.expect("a reply").payload));
                assert_eq!(r["error"], "", "{r}");
                assert_eq!(r["id"], want.as_str(), "{r}");
                instances.insert(r["instance"].as_str().unwrap().to_owned());
                pids.insert(r["pid"].as_u64().unwrap() as u32);
            }
            sent += 8;
        }
        assert_eq!(
            pids,
            HashSet::from([engine_pid as u32, second_pid]),
            "both instances took jobs ({sent} sent)"
        );
        assert_eq!(instances.len(), 2);

        // A bad job gets an error reply, not silence.
        let r = client
            .request("berth.jobs.pull", "{\"reference\": \"NOT VALID\"}".into())
            .await
            .unwrap();
        let r = json(&String::from_utf8_lossy(&r.payload));
        assert_ne!(r["error"], "", "{r}");
        assert_eq!(r["error_kind"], "invalid-argument", "{r}");
    });
    // The engine's instance has the image, as docker sees it.
    let tags = engine.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(tags.contains(&want[7..19]), "{tags}");
}

// ---------------------------------------------------------------------------------------------
// dockerd 20.10
// ---------------------------------------------------------------------------------------------

#[test]
fn archives_round_trip_with_dockerd_20_10() {
    assert!(
        Path::new(DOCKERD).is_file(),
        "{DOCKERD} is missing: scripts/setup-debian.sh installs Debian's docker.io"
    );
    let engine = up(EngineOptions::default());
    let reg = Registry::start();
    let (_layout, info, pulled) = pull_busybox(&engine, &reg, "dk/busybox:1");
    let imported = import_busybox(&engine, "berth-imported:1");
    let dir = tempfile::tempdir().unwrap();
    let from_berth = dir.path().join("from-berth.tar");
    engine.docker_ok(&[
        "save",
        "-o",
        from_berth.to_str().unwrap(),
        &pulled,
        "berth-imported:1",
    ]);

    let dockerd = Dockerd::start();
    let out = dockerd.docker_ok(&["load", "-i", from_berth.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {pulled}")), "{out}");
    assert!(out.contains("Loaded image: berth-imported:1"), "{out}");
    let id_in = |name: &str| {
        json(&dockerd.docker_ok(&["image", "inspect", name]))[0]["Id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(id_in(&pulled), info.image_id());
    assert_eq!(id_in("berth-imported:1"), imported);

    // And back: dockerd's own legacy archive (uncompressed layer.tar) of an image it imported.
    let (rootfs, diff_id) = rootfs_tar(dir.path());
    let dk_id = dockerd
        .docker_ok(&["import", rootfs.to_str().unwrap(), "from-dockerd:20.10"])
        .trim()
        .to_owned();
    let from_dockerd = dir.path().join("from-dockerd.tar");
    dockerd.docker_ok(&[
        "save",
        "-o",
        from_dockerd.to_str().unwrap(),
        "from-dockerd:20.10",
        &pulled,
    ]);
    engine.docker_ok(&["rmi", &pulled]);
    let out = engine.docker_ok(&["load", "-i", from_dockerd.to_str().unwrap()]);
    assert!(out.contains("Loaded image: from-dockerd:20.10"), "{out}");
    let img = inspect(&engine, "from-dockerd:20.10");
    assert_eq!(img["Id"], dk_id.as_str());
    assert_eq!(img["RootFS"]["Layers"], serde_json::json!([diff_id]));
    assert_eq!(image_id(&engine, &pulled), info.image_id());
    assert!(leftovers(&engine).is_empty());
    // The reference dockerd ran on a bridge of its own: the host's docker0, if it has one,
    // is untouched, and the test's bridge is gone with dockerd.
    let (had_docker0, bridge) = (dockerd.docker0, dockerd.bridge.name.clone());
    drop(dockerd);
    assert_eq!(berth_testutil::link_exists("docker0"), had_docker0);
    assert!(!berth_testutil::link_exists(&bridge));
}
