//! Streamed uploads never fill the disk: with the data root on a small filesystem, `docker
//! import`, `docker load`, `docker cp` and `docker build`'s context of more than it holds stop
//! with a clear error before the filesystem is full, keep nothing of the upload, and the engine
//! goes on working.

use std::{io::Write, path::Path, process::Stdio};

use berth_testutil::{Engine, EngineOptions, text};

/// The data root's size, and the bigger upload's.
const DISK_MIB: u64 = 96;
const BIG_MIB: u64 = 128;

/// Bytes available on the filesystem holding `path`.
fn available(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).expect("statvfs");
    st.blocks_available() * st.fragment_size()
}

/// A tar stream holding one file `name` of `mib` MiB of zeros, written to `out` as it is made.
fn write_tar(out: impl Write, name: &str, mib: u64) {
    let mut t = tar::Builder::new(out);
    let mut h = tar::Header::new_gnu();
    h.set_size(mib << 20);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let zeros = std::io::Read::take(std::io::repeat(0), mib << 20);
    t.append_data(&mut h, name, zeros).expect("tar entry");
    t.finish().expect("tar end");
}

/// `docker <args>` with a generated tar of `mib` MiB on stdin: (success, stdout + stderr).
fn docker_with_tar(e: &Engine, args: &[&str], name: &str, mib: u64) -> (bool, String) {
    let mut child = e
        .docker_cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker");
    let stdin = child.stdin.take().expect("stdin");
    let name = name.to_owned();
    // The engine may stop reading early: a broken pipe on our side is expected then.
    let writer = std::thread::spawn(move || {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_tar(stdin, &name, mib);
        }));
    });
    let out = child.wait_with_output().expect("docker output");
    let _ = writer.join();
    let (o, err) = text(&out);
    (out.status.success(), format!("{o}{err}"))
}

fn assert_refused_for_space(ok: bool, out: &str, what: &str) {
    assert!(
        !ok,
        "{what} of {BIG_MIB} MiB fit on a {DISK_MIB} MiB disk: {out}"
    );
    assert!(
        out.contains("no space left on device") && out.contains("Berth keeps 16 MiB free"),
        "{what}: {out}"
    );
}

#[test]
fn uploads_stop_before_the_disk_is_full_and_keep_nothing() {
    let e = Engine::up(EngineOptions {
        data_root_mib: Some(DISK_MIB),
        ..EngineOptions::default()
    });
    // A small image to create a container from (its binary never runs).
    let (ok, out) = docker_with_tar(&e, &["import", "-", "small:1"], "hello", 1);
    assert!(ok, "{out}");
    let cid = e.docker_ok(&["create", "--name", "upload-target", "small:1", "/hello"]);
    let cid = cid.trim();
    let before = available(&e.data_root);

    let (ok, out) = docker_with_tar(&e, &["import", "-", "big:1"], "big", BIG_MIB);
    assert_refused_for_space(ok, &out, "docker import");

    // An archive in docker save's layout whose one blob is bigger than the disk.
    let blob = format!("blobs/sha256/{}", "ab".repeat(32));
    let (ok, out) = docker_with_tar(&e, &["load"], &blob, BIG_MIB);
    assert_refused_for_space(ok, &out, "docker load");

    // docker cp reads a file from the client's disk: a sparse one costs nothing there.
    let src = e.dir.path().join("big-file");
    std::fs::File::create(&src)
        .and_then(|f| f.set_len(BIG_MIB << 20))
        .expect("sparse file");
    let out = e
        .docker_cmd()
        .args(["cp", &src.display().to_string(), &format!("{cid}:/")])
        .output()
        .expect("docker cp");
    let (o, err) = text(&out);
    assert_refused_for_space(out.status.success(), &format!("{o}{err}"), "docker cp");
    std::fs::remove_file(&src).expect("remove the sparse file");

    // docker build sends its context the same way.
    let ctx = e.dir.path().join("big-context");
    std::fs::create_dir_all(&ctx).expect("context dir");
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY big /\n").expect("Dockerfile");
    std::fs::File::create(ctx.join("big"))
        .and_then(|f| f.set_len(BIG_MIB << 20))
        .expect("sparse file");
    let out = e
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "big:2", &ctx.display().to_string()])
        .output()
        .expect("docker build");
    let (o, err) = text(&out);
    assert_refused_for_space(out.status.success(), &format!("{o}{err}"), "docker build");
    std::fs::remove_dir_all(&ctx).expect("remove the context");

    // Nothing of the three uploads is kept (a little slack for the stores' own pages).
    let after = available(&e.data_root);
    assert!(
        after + (4 << 20) >= before,
        "{} MiB lost to the failed uploads",
        (before - after) >> 20
    );
    // And the engine goes on: a small upload of each kind works.
    let (ok, out) = docker_with_tar(&e, &["import", "-", "small:2"], "hello", 1);
    assert!(ok, "{out}");
    let small = e.dir.path().join("small-file");
    std::fs::write(&small, b"fits\n").expect("small file");
    e.docker_ok(&["cp", &small.display().to_string(), &format!("{cid}:/fits")]);
    let images = e.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.contains("small:1") && images.contains("small:2") && !images.contains("big"),
        "{images}"
    );
    e.docker_ok(&["rm", cid]);
}
