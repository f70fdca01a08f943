//! Images through the real docker CLI against a private registry: pull (OCI and Docker media
//! types, by tag and by digest, multi-layer, multi-platform), errors, registry auth, tag, rmi,
//! history, prune, concurrent pulls, df/info, events and a corrupted blob.

use std::{
    io::Write,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
    process::Stdio,
};

use berth_testutil::{
    Engine, EngineOptions, ImageInfo, MediaTypes, Registry, eventually,
    images::{
        CREATED, MULTILAYER_FILES, PATH_ENV, PLATFORM_LABEL, busybox_layout, large_layout,
        multilayer_layout, sha256_digest, two_platform_index,
    },
    push_layout, text,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// One JSON object per line (`--format '{{json .}}'`).
fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(json)
        .collect()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            x.as_str()
                .unwrap_or_else(|| panic!("not a string: {x}"))
                .to_owned()
        })
        .collect()
}

/// The 12 hex characters `docker images` shows for an ID or digest.
fn short(digest: &str) -> &str {
    &digest.strip_prefix("sha256:").unwrap_or(digest)[..12]
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("a sha256 digest")
}

/// Chain IDs of a list of diff IDs (OCI image spec).
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256_digest(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Builds an image layout with `build` in a new temporary directory and pushes it to `reg` as
/// `name_tag`. The directory lives as long as the returned guard.
fn push_image(
    reg: &Registry,
    name_tag: &str,
    build: impl FnOnce(&Path) -> ImageInfo,
) -> (tempfile::TempDir, ImageInfo) {
    let dir = tempfile::tempdir().expect("tempdir");
    let info = build(&dir.path().join("layout"));
    let digest = push_layout(&info.layout, name_tag, reg, reg.credentials())
        .unwrap_or_else(|e| panic!("push {name_tag}: {e:#}\n{}", reg.logs()));
    assert_eq!(digest, info.manifest_digest);
    (dir, info)
}

fn push_busybox(
    reg: &Registry,
    name_tag: &str,
    media: MediaTypes,
) -> (tempfile::TempDir, ImageInfo) {
    push_image(reg, name_tag, |d| busybox_layout(d, media))
}

/// An engine; `berth up` reports it up once the API and every backend answer, so the first
/// image command must succeed at once.
fn up() -> Engine {
    let engine = Engine::up(EngineOptions::default());
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

/// `docker image inspect NAME` (the one object).
fn inspect(engine: &Engine, name: &str) -> serde_json::Value {
    let v = json(&engine.docker_ok(&["image", "inspect", name]));
    let arr = v.as_array().expect("inspect gives an array");
    assert_eq!(arr.len(), 1, "{v}");
    arr[0].clone()
}

/// The rows of `docker images --format '{{json .}}'` plus `extra` flags.
fn image_rows(engine: &Engine, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["images", "--format", "{{json .}}"];
    args.extend_from_slice(extra);
    json_lines(&engine.docker_ok(&args))
}

/// The row of `repository:tag` in `docker images`.
fn image_row(engine: &Engine, extra: &[&str], repo: &str, tag: &str) -> serde_json::Value {
    let rows = image_rows(engine, extra);
    rows.iter()
        .find(|r| r["Repository"] == repo && r["Tag"] == tag)
        .unwrap_or_else(|| panic!("no {repo}:{tag} in docker images: {rows:?}"))
        .clone()
}

/// The images service's data directory.
fn images_root(engine: &Engine) -> PathBuf {
    engine.data_root.join("images")
}

/// A layer's directory, `overlay2/<chain id hex>`.
fn layer_dir(engine: &Engine, chain_id: &str) -> PathBuf {
    images_root(engine).join("overlay2").join(hex(chain_id))
}

/// A blob in the content store.
fn blob_file(engine: &Engine, digest: &str) -> PathBuf {
    images_root(engine).join("blobs/sha256").join(hex(digest))
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

/// The names in a directory (empty if it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The engine's clock, for `docker events --since/--until`.
fn system_time(engine: &Engine) -> String {
    engine
        .docker_ok(&["info", "--format", "{{.SystemTime}}"])
        .trim()
        .to_owned()
}

/// Every layer directory and blob of `info` exists (`true`) or none does (`false`).
fn assert_stored(engine: &Engine, info: &ImageInfo, present: bool) {
    for c in chain_ids(&info.diff_ids()) {
        let d = layer_dir(engine, &c);
        assert_eq!(d.join("diff").is_dir(), present, "{}", d.display());
    }
    let mut blobs = info.layer_digests();
    blobs.push(info.config_digest.clone());
    blobs.push(info.manifest_digest.clone());
    for b in blobs {
        let f = blob_file(engine, &b);
        assert_eq!(f.is_file(), present, "{}", f.display());
        if present {
            assert_eq!(
                sha256_digest(&std::fs::read(&f).unwrap()),
                b,
                "{} holds other bytes",
                f.display()
            );
        }
    }
}

/// The registry's stored copy of a blob (filesystem driver layout).
fn registry_blob_path(reg: &Registry, digest: &str) -> PathBuf {
    let h = hex(digest);
    reg.storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&h[..2])
        .join(h)
        .join("data")
}

/// How many times the registry answered `GET` for this blob of this repository.
fn blob_gets(reg: &Registry, repo: &str, digest: &str) -> usize {
    let path = format!("/v2/{repo}/blobs/{digest}");
    reg.logs()
        .lines()
        .filter(|l| l.contains(&format!("\"GET {path} ")))
        .count()
}

/// Where a path of the merged root filesystem comes from, looking through the layers' diff
/// directories top down as overlayfs does: `None` if a whiteout or an opaque directory hides it.
fn resolve_in_layers(layers_top_down: &[PathBuf], path: &str) -> Option<PathBuf> {
    for layer in layers_top_down {
        let p = layer.join(path);
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            if m.file_type().is_char_device() && m.rdev() == 0 {
                return None;
            }
            return Some(p);
        }
        // An opaque parent directory in this layer hides what is below.
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if opaque_xattr(&layer.join(dir)).as_deref() == Some(b"y".as_slice()) {
                return None;
            }
            parent = dir.parent();
        }
    }
    None
}

/// `trusted.overlay.opaque` of a directory, if set.
fn opaque_xattr(dir: &Path) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    match rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// A child process killed (and reaped) on drop, so that a hanging CLI does not outlive its test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs docker with `stdin` (then closed); gives up (and kills it) after half the patience.
fn docker_with_deadline(
    engine: &Engine,
    args: &[&str],
    stdin: &[u8],
) -> Result<std::process::Output, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = KillOnDrop(
        engine
            .docker_cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("spawn docker"),
    );
    let mut input = child.0.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let limit = berth_testutil::patience() / 2;
    let deadline = std::time::Instant::now() + limit;
    let status = eventually("docker to exit or the deadline", || {
        match child.0.try_wait().expect("try_wait") {
            Some(s) => Some(Some(s)),
            None if std::time::Instant::now() > deadline => Some(None),
            None => None,
        }
    });
    let stdout = std::fs::read(&out_path).unwrap_or_default();
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    match status {
        Some(status) => Ok(std::process::Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(format!(
            "docker {args:?} still running after {limit:?}:\n{}\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        )),
    }
}

/// Starts `docker pull` without waiting.
fn spawn_pull(engine: &Engine, reference: &str) -> std::process::Child {
    engine
        .docker_cmd()
        .args(["pull", reference])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker pull")
}

// ---------------------------------------------------------------------------------------------
// 1. docker pull, both media types
// ---------------------------------------------------------------------------------------------

fn pull_busybox_and_check(media: MediaTypes) {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", media);
    let engine = up();
    let reference = reg.image("busybox:latest");
    let repo = reg.image("busybox");

    let out = engine.docker_ok(&["pull", &reference]);
    assert!(
        out.contains(&format!("{}: Pull complete", short(&info.layers[0].digest))),
        "{out}"
    );
    assert!(
        out.contains(&format!("Digest: {}", info.manifest_digest)),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some(reference.as_str()), "{out}");

    // docker images: the short ID in the table, the full one with --no-trunc.
    let row = image_row(&engine, &[], &repo, "latest");
    assert_eq!(row["ID"], short(&info.config_digest), "{row}");
    let row = image_row(&engine, &["--no-trunc"], &repo, "latest");
    assert_eq!(row["ID"], info.config_digest.as_str(), "{row}");
    let row = image_row(&engine, &["--digests"], &repo, "latest");
    assert_eq!(row["Digest"], info.manifest_digest.as_str(), "{row}");
    assert_eq!(image_rows(&engine, &[]).len(), 1);

    let v = inspect(&engine, &reference);
    assert_eq!(v["Id"], info.config_digest.as_str(), "{v}");
    assert_eq!(strs(&v["RepoTags"]), [reference.as_str()]);
    let digest_ref = format!("{repo}@{}", info.manifest_digest);
    assert!(strs(&v["RepoDigests"]).contains(&digest_ref), "{v}");
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(strs(&v["RootFS"]["Layers"]), info.diff_ids());
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["Config"]["Env"], serde_json::json!([PATH_ENV]));
    assert_eq!(v["Config"]["Labels"][PLATFORM_LABEL], "linux/amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Created"], CREATED);
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    assert!(v["Size"].as_u64().unwrap() > 0, "{v}");
    // The same image by ID, short ID and digest reference.
    for name in [
        info.config_digest.as_str(),
        short(&info.config_digest),
        &digest_ref,
    ] {
        assert_eq!(inspect(&engine, name)["Id"], info.config_digest.as_str());
    }
    assert_stored(&engine, &info, true);
    // The unpacked layer is the busybox root filesystem.
    let diff = layer_dir(&engine, &info.diff_ids()[0]).join("diff");
    let busybox = std::fs::metadata(diff.join("bin/busybox")).unwrap();
    assert_eq!(busybox.mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_link(diff.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );

    // Again: nothing to download.
    let again = engine.docker_ok(&["pull", &reference]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {reference}")),
        "{again}"
    );
    assert!(
        again.contains(&format!("Digest: {}", info.manifest_digest)),
        "{again}"
    );
    assert!(!again.contains("Pull complete"), "{again}");
    assert!(!again.contains("Downloading"), "{again}");
    assert_eq!(image_rows(&engine, &[]).len(), 1);
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
}

#[test]
fn pull_busybox_with_oci_media_types() {
    pull_busybox_and_check(MediaTypes::Oci);
}

#[test]
fn pull_busybox_with_docker_media_types() {
    pull_busybox_and_check(MediaTypes::Docker);
}

// ---------------------------------------------------------------------------------------------
// 2. Pull by digest
// ---------------------------------------------------------------------------------------------

#[test]
fn pull_by_digest_gives_an_untagged_image_with_its_repo_digest() {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();
    let repo = reg.image("busybox");
    let by_digest = format!("{repo}@{}", info.manifest_digest);

    let out = engine.docker_ok(&["pull", &by_digest]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    let v = inspect(&engine, &by_digest);
    assert_eq!(v["Id"], info.config_digest.as_str());
    assert_eq!(strs(&v["RepoTags"]), Vec::<String>::new(), "{v}");
    assert_eq!(strs(&v["RepoDigests"]), [by_digest.as_str()], "{v}");
    let rows = image_rows(&engine, &["--digests"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Repository"], repo.as_str());
    assert_eq!(rows[0]["Tag"], "<none>");
    assert_eq!(rows[0]["Digest"], info.manifest_digest.as_str());
    assert_eq!(rows[0]["ID"], short(&info.config_digest));
    let again = engine.docker_ok(&["pull", &by_digest]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {by_digest}")),
        "{again}"
    );
    // No tag was invented.
    let missing = docker_fails(&engine, &["image", "inspect", &reg.image("busybox:latest")]);
    assert!(missing.contains("No such image"), "{missing}");

    // Pulling the tag then names the same image: nothing to download.
    let tagged = reg.image("busybox:latest");
    let out = engine.docker_ok(&["pull", &tagged]);
    assert!(!out.contains("Pull complete"), "{out}");
    let v = inspect(&engine, &tagged);
    assert_eq!(v["Id"], info.config_digest.as_str());
    assert_eq!(strs(&v["RepoTags"]), [tagged.as_str()]);
    assert_eq!(strs(&v["RepoDigests"]), [by_digest]);
    assert_eq!(image_rows(&engine, &[]).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. The multilayer image on disk
// ---------------------------------------------------------------------------------------------

#[test]
fn pull_multilayer_unpacks_whiteouts_opaque_dirs_hardlinks_and_owners() {
    let reg = Registry::start();
    let (_dir, info) = push_image(&reg, "multi/layer:latest", multilayer_layout);
    let engine = up();
    let reference = reg.image("multi/layer:latest");
    let out = engine.docker_ok(&["pull", &reference]);
    for l in &info.layers {
        assert!(
            out.contains(&format!("{}: Pull complete", short(&l.digest))),
            "{out}"
        );
    }

    let v = inspect(&engine, &reference);
    assert_eq!(strs(&v["RootFS"]["Layers"]), info.diff_ids());
    assert_eq!(v["Config"]["WorkingDir"], "/data");
    let chain = chain_ids(&info.diff_ids());
    assert_eq!(chain.len(), 3);
    let diff = |i: usize| layer_dir(&engine, &chain[i]).join("diff");
    let data = &v["GraphDriver"]["Data"];
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    assert_eq!(data["UpperDir"], diff(2).display().to_string(), "{v}");
    assert_eq!(
        data["LowerDir"],
        format!("{}:{}", diff(1).display(), diff(0).display()),
        "{v}"
    );
    let mut on_disk = names_in(&images_root(&engine).join("overlay2"));
    on_disk.retain(|n| !n.starts_with('.'));
    let mut want: Vec<String> = chain.iter().map(|c| hex(c).to_owned()).collect();
    want.sort();
    assert_eq!(on_disk, want);

    // Top layer: whiteouts are character devices 0:0, the opaque directory has its xattr.
    for wh in ["data/gone.txt", "etc/motd"] {
        let m = std::fs::symlink_metadata(diff(2).join(wh))
            .unwrap_or_else(|e| panic!("{wh} in the top layer: {e}"));
        assert!(m.file_type().is_char_device(), "{wh}: {m:?}");
        assert_eq!(m.rdev(), 0, "{wh}");
        assert_eq!((m.uid(), m.gid()), (0, 0), "{wh}");
    }
    assert_eq!(
        opaque_xattr(&diff(2).join("opaque")).as_deref(),
        Some(b"y".as_slice())
    );
    assert_eq!(names_in(&diff(2).join("opaque")), ["new.txt"]);
    assert_eq!(opaque_xattr(&diff(1).join("opaque")), None);
    assert_eq!(opaque_xattr(&diff(2).join("data")), None);
    // No OCI whiteout file was written as such.
    for d in [
        diff(2).join("data"),
        diff(2).join("etc"),
        diff(2).join("opaque"),
    ] {
        let names = names_in(&d);
        assert!(
            names.iter().all(|n| !n.starts_with(".wh.")),
            "{}: {names:?}",
            d.display()
        );
    }

    // Middle layer: the hardlinked pair is one inode; owners, modes, the symlink.
    let h1 = std::fs::metadata(diff(1).join("data/hard1")).unwrap();
    let h2 = std::fs::metadata(diff(1).join("data/hard2")).unwrap();
    assert_eq!((h1.ino(), h1.nlink()), (h2.ino(), 2));
    let nobody = std::fs::metadata(diff(1).join("data/nobody.txt")).unwrap();
    assert_eq!(
        (nobody.uid(), nobody.gid(), nobody.mode() & 0o7777),
        (65534, 65534, 0o600)
    );
    let sub = std::fs::metadata(diff(1).join("data/sub")).unwrap();
    assert!(sub.is_dir());
    assert_eq!(sub.mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::read_link(diff(1).join("data/link")).unwrap(),
        Path::new("a.txt")
    );
    let a = std::fs::metadata(diff(1).join("data/a.txt")).unwrap();
    assert_eq!(a.mtime(), berth_testutil::images::MTIME as i64);
    // Bottom layer: busybox, with the modes of its tar.
    let tmp = std::fs::metadata(diff(0).join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    let root = std::fs::metadata(diff(0).join("root")).unwrap();
    assert_eq!(root.mode() & 0o7777, 0o700);
    assert_eq!(
        std::fs::read_to_string(diff(0).join("etc/motd")).unwrap(),
        "welcome\n"
    );

    // The merged view (as overlayfs would show it) is MULTILAYER_FILES.
    let top_down = [diff(2), diff(1), diff(0)];
    for (path, content) in MULTILAYER_FILES {
        let got = resolve_in_layers(&top_down, path)
            .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path}: {e}")));
        assert_eq!(got.as_deref(), *content, "{path}");
    }
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
}

// ---------------------------------------------------------------------------------------------
// 4. Platforms
// ---------------------------------------------------------------------------------------------

fn pull_platforms(media: MediaTypes) {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let index = two_platform_index(&dir.path().join("layout"), media);
    push_layout(&index.layout, "multi:latest", &reg, None).unwrap();
    let amd = index.for_platform("linux", "amd64").unwrap();
    let arm = index.for_platform("linux", "arm64").unwrap();
    let engine = up();
    let reference = reg.image("multi:latest");

    let out = engine.docker_ok(&["pull", "--platform", "linux/arm64", &reference]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert!(out.contains(&format!("Digest: {}", index.digest)), "{out}");
    let v = inspect(&engine, &reference);
    assert_eq!(v["Id"], arm.config_digest.as_str(), "{v}");
    assert_eq!(v["Architecture"], "arm64");
    assert_eq!(v["Variant"], "v8");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Config"]["Labels"][PLATFORM_LABEL], "linux/arm64/v8");

    // The host's platform by default: amd64. The tag moves; the shared layer is not fetched again.
    let out = engine.docker_ok(&["pull", &reference]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert!(
        out.contains(&format!("{}: Already exists", short(&amd.layers[0].digest))),
        "{out}"
    );
    let v = inspect(&engine, &reference);
    assert_eq!(v["Id"], amd.config_digest.as_str(), "{v}");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Config"]["Labels"][PLATFORM_LABEL], "linux/amd64");
    // The arm64 image is still there, without its tag.
    let v = inspect(&engine, &arm.config_digest);
    assert_eq!(strs(&v["RepoTags"]), Vec::<String>::new());
    assert_eq!(image_rows(&engine, &[]).len(), 2);

    let err = docker_fails(&engine, &["pull", "--platform", "linux/s390x", &reference]);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
    assert_eq!(image_rows(&engine, &[]).len(), 2);
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
}

#[test]
fn pull_platform_from_an_oci_index() {
    pull_platforms(MediaTypes::Oci);
}

#[test]
fn pull_platform_from_a_docker_manifest_list() {
    pull_platforms(MediaTypes::Docker);
}

/// After `--platform linux/arm64` then the default pull of the same index, the index digest
/// reference belongs to the amd64 image only (as in Docker, where the reference store moves
/// it); removing the arm64 image must not take the amd64 image's digest reference with it.
#[test]
fn a_moved_digest_reference_leaves_the_previous_image() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let index = two_platform_index(&dir.path().join("layout"), MediaTypes::Oci);
    push_layout(&index.layout, "multi:latest", &reg, None).unwrap();
    let amd = index.for_platform("linux", "amd64").unwrap();
    let arm = index.for_platform("linux", "arm64").unwrap();
    let engine = up();
    let reference = reg.image("multi:latest");
    let by_digest = format!("{}@{}", reg.image("multi"), index.digest);
    engine.docker_ok(&["pull", "--platform", "linux/arm64", &reference]);
    engine.docker_ok(&["pull", &reference]);

    assert_eq!(
        inspect(&engine, &by_digest)["Id"],
        amd.config_digest.as_str()
    );
    // Docker lists the arm64 image as `<none>` with no digest: the reference moved.
    let arm_digests = strs(&inspect(&engine, &arm.config_digest)["RepoDigests"]);
    let out = engine.docker_ok(&["rmi", &arm.config_digest]);
    // The amd64 image keeps its digest reference.
    let still = engine.docker(&["image", "inspect", &by_digest]);
    assert!(
        still.status.success(),
        "removing the arm64 image took the amd64 image's {by_digest}:\n{out}\n{:?}",
        text(&still)
    );
    assert!(!out.contains(&format!("Untagged: {by_digest}")), "{out}");
    assert_eq!(
        inspect(&engine, &by_digest)["Id"],
        amd.config_digest.as_str()
    );
    assert!(strs(&inspect(&engine, &reference)["RepoDigests"]).contains(&by_digest));
    assert_eq!(
        arm_digests,
        Vec::<String>::new(),
        "the arm64 image still claimed {by_digest}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn pull_errors_missing_tag_missing_repository_and_bad_reference() {
    let reg = Registry::start();
    let (_dir, _info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();

    let missing_tag = reg.image("busybox:nope");
    let err = docker_fails(&engine, &["pull", &missing_tag]);
    assert!(err.contains("manifest for"), "{err}");
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains(&missing_tag), "{err}");

    let missing_repo = reg.image("nothere/at-all:latest");
    let err = docker_fails(&engine, &["pull", &missing_repo]);
    assert!(
        err.contains("not found") || err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains(&reg.image("nothere/at-all")), "{err}");

    let err = docker_fails(&engine, &["pull", "bad::name"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let err = docker_fails(&engine, &["pull", &reg.image("Upper/Case:latest")]);
    assert!(
        err.contains("invalid reference format") || err.contains("must be lowercase"),
        "{err}"
    );

    // Nothing was stored.
    assert!(image_rows(&engine, &[]).is_empty());
    let info = json(&engine.docker_ok(&["info", "--format", "{{json .}}"]));
    assert_eq!(info["Images"], 0);
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
    assert!(
        names_in(&images_root(&engine).join("overlay2"))
            .iter()
            .all(|n| n.starts_with('.'))
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Registry auth
// ---------------------------------------------------------------------------------------------

#[test]
fn pull_from_an_auth_registry_after_docker_login() {
    let reg = Registry::with_auth("tester", "s3cret pass");
    let (_dir, info) = push_busybox(&reg, "private/busybox:latest", MediaTypes::Docker);
    let engine = up();
    let reference = reg.image("private/busybox:latest");
    assert_eq!(
        reg.status("/v2/", None),
        401,
        "the registry wants credentials"
    );

    let err = docker_fails(
        &engine,
        &["login", &reg.addr(), "-u", "tester", "-p", "wrong"],
    );
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("incorrect"),
        "{err}"
    );
    assert!(!err.contains("Login Succeeded"), "{err}");
    let config = engine.dir.path().join("docker-cli/config.json");
    let stored = std::fs::read_to_string(&config).unwrap_or_default();
    assert!(
        !stored.contains(&reg.addr()),
        "a failed login was stored: {stored}"
    );

    // The right password on stdin.
    let out = docker_with_deadline(
        &engine,
        &["login", &reg.addr(), "-u", "tester", "--password-stdin"],
        b"s3cret pass\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Login Succeeded"), "{stdout}\n{stderr}");
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(stored.contains(&reg.addr()), "{stored}");

    // The CLI now sends the stored credentials in X-Registry-Auth.
    let out = engine.docker_ok(&["pull", &reference]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{out}"
    );
    assert_eq!(
        inspect(&engine, &reference)["Id"],
        info.config_digest.as_str()
    );
    assert_stored(&engine, &info, true);
}

/// Without credentials, dockerd fails the pull with a plain error (for a basic-auth registry:
/// 500 `Head "http://…/manifests/latest": no basic auth credentials`; for a token registry:
/// 404 `pull access denied for …, repository does not exist or may require 'docker login'`).
/// A 401 from `POST /images/create` makes the docker CLI run its interactive login
/// (`Login prior to pull:` / `Username:`), which never returns without a terminal.
#[test]
fn pull_without_credentials_fails_at_once_without_a_login_prompt() {
    let reg = Registry::with_auth("tester", "s3cret pass");
    let (_dir, _info) = push_busybox(&reg, "private/busybox:latest", MediaTypes::Docker);
    let engine = up();
    let reference = reg.image("private/busybox:latest");
    let out =
        docker_with_deadline(&engine, &["pull", &reference], b"").unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("Login prior to pull"),
        "{stdout}\n{stderr}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        ["access", "unauthorized", "denied", "login", "credentials"]
            .iter()
            .any(|w| lower.contains(w)),
        "{stdout}\n{stderr}"
    );
    assert!(image_rows(&engine, &[]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 7. Tag and remove
// ---------------------------------------------------------------------------------------------

#[test]
fn tag_untag_and_remove_with_docker_conflict_rules() {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();
    let reference = reg.image("busybox:latest");
    let repo = reg.image("busybox");
    let digest_ref = format!("{repo}@{}", info.manifest_digest);
    let id = info.config_digest.as_str();
    engine.docker_ok(&["pull", &reference]);

    engine.docker_ok(&["tag", &reference, "other/name:v1"]);
    engine.docker_ok(&["tag", id, &reg.image("busybox:v2")]);
    for (r, t) in [
        (repo.as_str(), "latest"),
        ("other/name", "v1"),
        (repo.as_str(), "v2"),
    ] {
        assert_eq!(image_row(&engine, &[], r, t)["ID"], short(id));
    }
    let mut tags = strs(&inspect(&engine, id)["RepoTags"]);
    tags.sort();
    let mut want = vec![
        reference.clone(),
        "other/name:v1".to_owned(),
        reg.image("busybox:v2"),
    ];
    want.sort();
    assert_eq!(tags, want);

    // Untag while other tags remain: nothing deleted.
    let out = engine.docker_ok(&["rmi", &reg.image("busybox:v2")]);
    assert_eq!(out.trim(), format!("Untagged: {}", reg.image("busybox:v2")));
    assert_stored(&engine, &info, true);

    // By ID with references in two repositories: a 409 unless forced.
    let err = docker_fails(&engine, &["rmi", short(id)]);
    assert!(err.contains("must be forced"), "{err}");
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(id)
        )),
        "{err}"
    );
    assert_stored(&engine, &info, true);
    let out = engine.docker_ok(&["rmi", "-f", short(id)]);
    assert!(out.contains(&format!("Untagged: {reference}")), "{out}");
    assert!(out.contains("Untagged: other/name:v1"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(image_rows(&engine, &[]).is_empty());
    assert_stored(&engine, &info, false);
    let err = docker_fails(&engine, &["image", "inspect", id]);
    assert!(err.contains("No such image"), "{err}");

    // The last tag: untagged, its digest reference too, then deleted with its layers.
    engine.docker_ok(&["pull", &reference]);
    assert_stored(&engine, &info, true);
    let out = engine.docker_ok(&["rmi", &reference]);
    assert!(out.contains(&format!("Untagged: {reference}")), "{out}");
    assert!(out.contains(&format!("Untagged: {digest_ref}")), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(
        out.contains(&format!("Deleted: {}", info.diff_ids()[0])),
        "{out}"
    );
    assert!(image_rows(&engine, &[]).is_empty());
    assert_stored(&engine, &info, false);
    assert!(
        names_in(&images_root(&engine).join("blobs/sha256")).is_empty(),
        "{:?}",
        names_in(&images_root(&engine).join("blobs/sha256"))
    );

    let err = docker_fails(&engine, &["rmi", "nope"]);
    assert!(err.contains("No such image: nope"), "{err}");
}

/// Docker refuses `docker rmi <id>` without `-f` when the image has more than one tag, even in
/// one repository (moby `isSingleReference`: at most one tag, all references in one repository).
#[test]
fn rmi_by_id_with_two_tags_in_one_repository_must_be_forced() {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();
    let reference = reg.image("busybox:latest");
    engine.docker_ok(&["pull", &reference]);
    engine.docker_ok(&["tag", &reference, &reg.image("busybox:v2")]);
    let err = docker_fails(&engine, &["rmi", short(&info.config_digest)]);
    assert!(err.contains("must be forced"), "{err}");
    assert_stored(&engine, &info, true);
    assert_eq!(image_rows(&engine, &[]).len(), 2);
}

/// Removing the last tag of a repository also removes that repository's digest references
/// (moby's ImageDelete: "If a tag reference was removed and the only remaining references to the
/// same repository are digest references, then clean up those digest references").
#[test]
fn rmi_of_the_last_tag_of_a_repository_drops_its_digest_references() {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();
    let reference = reg.image("busybox:latest");
    let digest_ref = format!("{}@{}", reg.image("busybox"), info.manifest_digest);
    engine.docker_ok(&["pull", &reference]);
    engine.docker_ok(&["tag", &reference, "other/name:v1"]);
    let out = engine.docker_ok(&["rmi", &reference]);
    assert!(out.contains(&format!("Untagged: {reference}")), "{out}");
    assert!(out.contains(&format!("Untagged: {digest_ref}")), "{out}");
    assert!(!out.contains("Deleted:"), "{out}");
    let v = inspect(&engine, "other/name:v1");
    assert_eq!(strs(&v["RepoTags"]), ["other/name:v1"]);
    assert_eq!(strs(&v["RepoDigests"]), Vec::<String>::new(), "{v}");
}

// ---------------------------------------------------------------------------------------------
// 8. History and prune
// ---------------------------------------------------------------------------------------------

#[test]
fn history_and_prune_of_a_dangling_image() {
    let reg = Registry::start();
    let (_d1, old) = push_busybox(&reg, "app:latest", MediaTypes::Oci);
    let engine = up();
    let reference = reg.image("app:latest");
    engine.docker_ok(&["pull", &reference]);

    let rows = json_lines(&engine.docker_ok(&["history", "--format", "{{json .}}", &reference]));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["ID"], short(&old.config_digest));
    assert!(
        rows[0]["CreatedBy"].as_str().unwrap().contains("CMD"),
        "{rows:?}"
    );
    assert_eq!(rows[0]["Size"], "0B");
    assert_eq!(rows[1]["ID"], "<missing>");
    assert!(
        rows[1]["CreatedBy"]
            .as_str()
            .unwrap()
            .contains("busybox base layer"),
        "{rows:?}"
    );
    assert_ne!(rows[1]["Size"], "0B");
    let full = json_lines(&engine.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{json .}}",
        &reference,
    ]));
    assert_eq!(full[0]["ID"], old.config_digest.as_str());
    let plain = engine.docker_ok(&["history", &reference]);
    assert!(plain.contains("CREATED BY"), "{plain}");
    assert_eq!(plain.lines().count(), 3, "{plain}");

    // Another image under the same tag: the old one keeps only its digest, dangling.
    let (_d2, new) = push_image(&reg, "app:latest", multilayer_layout);
    engine.docker_ok(&["pull", &reference]);
    assert_eq!(
        inspect(&engine, &reference)["Id"],
        new.config_digest.as_str()
    );
    let dangling = image_rows(&engine, &["--filter", "dangling=true"]);
    assert_eq!(dangling.len(), 1, "{dangling:?}");
    assert_eq!(dangling[0]["ID"], short(&old.config_digest));
    assert_eq!(dangling[0]["Tag"], "<none>");

    let out = engine.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(
        out.contains(&format!("deleted: {}", old.config_digest)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "untagged: {}@{}",
            reg.image("app"),
            old.manifest_digest
        )),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");
    let rows = image_rows(&engine, &["--no-trunc"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["ID"], new.config_digest.as_str());
    assert_stored(&engine, &old, false);
    assert_stored(&engine, &new, true);

    // Nothing left to prune.
    let out = engine.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(image_rows(&engine, &[]).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 9. Concurrent pulls
// ---------------------------------------------------------------------------------------------

#[test]
fn two_concurrent_pulls_fetch_each_layer_once() {
    let reg = Registry::start();
    let (_dir, info) = push_image(&reg, "big:latest", |d| {
        large_layout(d, MediaTypes::Docker, 24 << 20)
    });
    let engine = up();
    let reference = reg.image("big:latest");
    // The registry logs one access line per request.
    let before: Vec<usize> = info
        .layers
        .iter()
        .map(|l| blob_gets(&reg, "big", &l.digest))
        .collect();

    let a = spawn_pull(&engine, &reference);
    let b = spawn_pull(&engine, &reference);
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{stdout}\n{stderr}\n--- engine ---\n{}",
            engine.logs()
        );
        assert!(stdout.contains("Status: "), "{stdout}");
        assert!(
            stdout.contains(&format!("Digest: {}", info.manifest_digest)),
            "{stdout}"
        );
    }
    let logs = reg.logs();
    for (l, before) in info.layers.iter().zip(before) {
        assert_eq!(
            blob_gets(&reg, "big", &l.digest) - before,
            1,
            "layer {} fetched other than once:\n{logs}",
            l.digest
        );
    }
    assert_eq!(image_rows(&engine, &[]).len(), 1);
    assert_stored(&engine, &info, true);
    // Each blob once: manifest, config, layers, nothing else.
    let mut want: Vec<String> = info
        .layer_digests()
        .into_iter()
        .chain([info.config_digest.clone(), info.manifest_digest.clone()])
        .map(|d| hex(&d).to_owned())
        .collect();
    want.sort();
    assert_eq!(names_in(&images_root(&engine).join("blobs/sha256")), want);
    let mut layers: Vec<String> = chain_ids(&info.diff_ids())
        .iter()
        .map(|c| hex(c).to_owned())
        .collect();
    layers.sort();
    let mut on_disk = names_in(&images_root(&engine).join("overlay2"));
    on_disk.retain(|n| !n.starts_with('.'));
    assert_eq!(on_disk, layers);
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
}

// ---------------------------------------------------------------------------------------------
// 10. docker system df and docker info
// ---------------------------------------------------------------------------------------------

fn df_images(engine: &Engine) -> serde_json::Value {
    let rows = json_lines(&engine.docker_ok(&["system", "df", "--format", "{{json .}}"]));
    rows.into_iter()
        .find(|r| r["Type"] == "Images")
        .expect("an Images row in docker system df")
}

fn info_images(engine: &Engine) -> serde_json::Value {
    json(&engine.docker_ok(&["info", "--format", "{{json .}}"]))["Images"].clone()
}

#[test]
fn system_df_and_info_count_pulled_images() {
    let reg = Registry::start();
    let (_d1, bb) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let (_d2, _ml) = push_image(&reg, "multi/layer:latest", multilayer_layout);
    let engine = up();
    assert_eq!(info_images(&engine), 0);
    assert_eq!(df_images(&engine)["TotalCount"], "0");

    engine.docker_ok(&["pull", &reg.image("busybox:latest")]);
    engine.docker_ok(&["pull", &reg.image("multi/layer:latest")]);
    assert_eq!(info_images(&engine), 2);
    let df = df_images(&engine);
    assert_eq!(df["TotalCount"], "2", "{df}");
    assert_eq!(df["Active"], "0", "{df}");
    assert_ne!(df["Size"], "0B", "{df}");
    let plain = engine.docker_ok(&["info"]);
    assert!(plain.contains(" Images: 2"), "{plain}");
    let verbose = engine.docker_ok(&["system", "df", "-v"]);
    assert!(verbose.contains(&reg.image("busybox")), "{verbose}");
    assert!(verbose.contains(&reg.image("multi/layer")), "{verbose}");

    engine.docker_ok(&["rmi", &reg.image("busybox:latest")]);
    assert_eq!(info_images(&engine), 1);
    assert_eq!(df_images(&engine)["TotalCount"], "1");
    assert_stored(&engine, &bb, false);
}

// ---------------------------------------------------------------------------------------------
// 11. Events
// ---------------------------------------------------------------------------------------------

#[test]
fn image_events_pull_tag_untag_delete() {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();
    let reference = reg.image("busybox:latest");
    let id = info.config_digest.as_str();
    let since = system_time(&engine);

    engine.docker_ok(&["pull", &reference]);
    engine.docker_ok(&["tag", &reference, "mine:v1"]);
    engine.docker_ok(&["rmi", "mine:v1"]);
    engine.docker_ok(&["rmi", &reference]);

    let events = eventually("pull, tag, untag and delete events", || {
        let until = system_time(&engine);
        let out = engine.docker_ok(&[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=image",
            "--format",
            "{{json .}}",
        ]);
        let events = json_lines(&out);
        let actions: Vec<&str> = events.iter().filter_map(|e| e["Action"].as_str()).collect();
        ["pull", "tag", "untag", "delete"]
            .iter()
            .all(|a| actions.contains(a))
            .then_some(events)
    });
    let first = |action: &str| {
        events
            .iter()
            .position(|e| e["Action"] == action)
            .unwrap_or_else(|| panic!("no {action}: {events:?}"))
    };
    assert!(first("pull") < first("tag"), "{events:?}");
    assert!(first("tag") < first("untag"), "{events:?}");
    assert!(first("untag") < first("delete"), "{events:?}");
    for e in &events {
        assert_eq!(e["Type"], "image", "{e}");
        assert_eq!(e["scope"], "local", "{e}");
        assert!(e["timeNano"].as_i64().unwrap() > 0, "{e}");
    }
    let pull = &events[first("pull")];
    assert_eq!(pull["Actor"]["ID"], reference.as_str(), "{pull}");
    assert_eq!(
        pull["Actor"]["Attributes"]["name"],
        reg.image("busybox").as_str(),
        "{pull}"
    );
    let tag = &events[first("tag")];
    assert_eq!(tag["Actor"]["ID"], id, "{tag}");
    assert_eq!(tag["Actor"]["Attributes"]["name"], "mine:v1", "{tag}");
    let untag = &events[first("untag")];
    assert_eq!(untag["Actor"]["ID"], id, "{untag}");
    let delete = &events[first("delete")];
    assert_eq!(delete["Actor"]["ID"], id, "{delete}");
    // Untagged twice (mine:v1, then the last tag with the image) and deleted once.
    let count = |a: &str| events.iter().filter(|e| e["Action"] == a).count();
    assert!(count("untag") >= 2, "{events:?}");
    assert_eq!(count("delete"), 1, "{events:?}");
    assert_eq!(count("pull"), 1, "{events:?}");
    // The image filter selects by reference.
    let until = system_time(&engine);
    let only = json_lines(&engine.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=pull",
        "--format",
        "{{json .}}",
    ]));
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["Action"], "pull");
}

// ---------------------------------------------------------------------------------------------
// 12. A corrupted blob
// ---------------------------------------------------------------------------------------------

#[test]
fn a_corrupted_layer_blob_fails_the_pull_and_leaves_nothing_behind() {
    let reg = Registry::start();
    let (_dir, info) = push_busybox(&reg, "busybox:latest", MediaTypes::Oci);
    let engine = up();
    let reference = reg.image("busybox:latest");
    let layer = &info.layers[0];
    let stored = registry_blob_path(&reg, &layer.digest);
    let original = std::fs::read(&stored)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", stored.display(), reg.logs()));
    assert_eq!(original.len() as u64, layer.size);
    let mut corrupt = original.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&stored, &corrupt).unwrap();

    let err = docker_fails(&engine, &["pull", &reference]);
    let lower = err.to_lowercase();
    assert!(lower.contains("digest") || lower.contains("verif"), "{err}");
    assert!(err.contains(&layer.digest), "{err}");
    assert!(!err.contains("Pull complete"), "{err}");
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
    assert!(!blob_file(&engine, &layer.digest).exists());
    assert!(!layer_dir(&engine, &layer.diff_id).exists());
    assert!(image_rows(&engine, &[]).is_empty());
    assert_eq!(info_images(&engine), 0);
    let missing = docker_fails(&engine, &["image", "inspect", &reference]);
    assert!(missing.contains("No such image"), "{missing}");

    std::fs::write(&stored, &original).unwrap();
    let out = engine.docker_ok(&["pull", &reference]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {reference}")),
        "{out}"
    );
    assert_stored(&engine, &info, true);
    assert!(leftovers(&engine).is_empty(), "{:?}", leftovers(&engine));
}
