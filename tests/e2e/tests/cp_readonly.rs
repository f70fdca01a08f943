//! docker cp into read-only mounts nested in a writable one (a volume at `/data`, another
//! read-only at `/data/ro`, a read-only bind at `/data/bind` with a tmpfs mounted below it on
//! the host), running and stopped, compared with Debian's dockerd: a copy whose destination
//! is in a read-only mount is refused, and a tree copied into the writable mount that reaches
//! into the read-only ones (or the bind's submount) writes nothing there.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use berth_testutil::{BusyboxEngine, text};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A tmpfs the test mounted, unmounted at the end even when the test fails.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// dockerd checks a destination against its mounts in Go's map order (random): the read-only
/// mount's own refusal, or the writable parent's pass and then the kernel's.
const REFUSED: &str = "Error response from daemon: mounted volume is marked read-only";

/// `docker cp - <to>` with `tar` on stdin.
fn cp_tar(mut cmd: Command, tar: &[u8], to: &str) -> Output {
    let mut child = cmd
        .args(["cp", "-", to])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(tar).unwrap();
    child.wait_with_output().unwrap()
}

/// A tar of one file at `name`, without entries for its directories (as a client may send
/// it): nothing is written on the way there.
fn bare_tar(name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(5);
    b.append_data(&mut h, name, &b"deep\n"[..]).unwrap();
    b.into_inner().unwrap()
}

/// What each copy answered ("ok" or its error), then what the read-only places hold.
fn steps(docker_cmd: &dyn Fn() -> Command, image: &str, dir: &Path) -> Vec<String> {
    let docker = |args: &[&str]| berth_testutil::run(docker_cmd().args(args));
    let ok = |args: &[&str]| {
        let out = docker(args);
        let (o, e) = text(&out);
        assert!(out.status.success(), "docker {args:?}: {o}\n{e}");
        o.trim().to_owned()
    };
    let cp = |from: &str, to: &str| {
        let out = match from.strip_prefix("tar:") {
            Some(name) => cp_tar(docker_cmd(), &bare_tar(name), to),
            None => docker(&["cp", from, to]),
        };
        if out.status.success() {
            return "ok".to_owned();
        }
        // dockerd 20.10 extracts in a re-executed child and prefixes its errors with this;
        // moby 25 and later (the API Berth speaks) extract in-process, without it.
        text(&out)
            .1
            .trim()
            .replace("Error processing tar file(exit status 1): ", "")
    };
    let file = dir.join("f");
    std::fs::write(&file, "copied\n").unwrap();
    // Trees that land in the read-only volume and in the bind's submount when copied to /data.
    let into_ro = dir.join("into-ro");
    std::fs::create_dir_all(into_ro.join("ro")).unwrap();
    std::fs::write(into_ro.join("ro/deep"), "deep\n").unwrap();
    let into_sub = dir.join("into-sub");
    std::fs::create_dir_all(into_sub.join("bind/sub")).unwrap();
    std::fs::write(into_sub.join("bind/sub/deep"), "deep\n").unwrap();
    let host = dir.join("host");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    mount(
        Some("tmpfs"),
        &host.join("sub"),
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let _tmpfs = Tmpfs(host.join("sub"));
    let bind = format!("{}:/data/bind:ro", host.display());
    ok(&["volume", "create", "cpro-rw"]);
    ok(&["volume", "create", "cpro-ro"]);
    // The child mounts listed before their parent.
    ok(&[
        "run",
        "-d",
        "--name",
        "cpro",
        "--network",
        "none",
        "-v",
        "cpro-ro:/data/ro:ro",
        "-v",
        &bind,
        "-v",
        "cpro-rw:/data",
        image,
        "sleep",
        "300",
    ]);
    let f = file.display().to_string();
    // Their contents, as `docker cp dir/. c:/data/`.
    let (ro_tree, sub_tree) = (
        format!("{}/.", into_ro.display()),
        format!("{}/.", into_sub.display()),
    );
    let mut answers = Vec::new();
    for phase in ["running", "stopped"] {
        if phase == "stopped" {
            ok(&["stop", "-t", "0", "cpro"]);
        }
        for (name, from, to) in [
            ("f", &f, "cpro:/data/"),
            ("f", &f, "cpro:/data/ro/"),
            ("f", &f, "cpro:/data/ro/f2"),
            ("f", &f, "cpro:/data/bind/"),
            ("f", &f, "cpro:/data/bind/sub/"),
            ("into-ro", &ro_tree, "cpro:/data/"),
            ("into-sub", &sub_tree, "cpro:/data/"),
            ("bare-ro", &"tar:ro/deep".to_owned(), "cpro:/data/"),
            ("bare-sub", &"tar:bind/sub/deep".to_owned(), "cpro:/data/"),
        ] {
            answers.push(format!("{phase}: {name} to {to}: {}", cp(from, to)));
        }
    }
    ok(&["rm", "-f", "cpro"]);
    answers.push(ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "cpro-ro:/v",
        image,
        "ls",
        "-A",
        "/v",
    ]));
    let mut on_host: Vec<String> = walk(&host);
    on_host.sort();
    answers.push(on_host.join(" "));
    // What reached the writable volume: the copies and the trees' writable parts.
    answers.push(ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "cpro-rw:/v",
        image,
        "sh",
        "-c",
        "cd /v && find . | sort | tr '\\n' ' '",
    ]));
    ok(&["volume", "rm", "cpro-rw", "cpro-ro"]);
    answers
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.strip_prefix(dir).unwrap().display().to_string());
        if p.is_dir() {
            out.extend(
                walk(&p)
                    .into_iter()
                    .map(|s| format!("{}/{s}", p.file_name().unwrap().to_string_lossy())),
            );
        }
    }
    out
}

#[test]
fn copies_into_read_only_submounts_are_refused_as_dockerd_refuses_them() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let berth = steps(&|| s.engine.docker_cmd(), &s.image, dir.path());
    let expected = |phase: &str| {
        let erofs = |op: &str, p: &str| {
            format!("Error response from daemon: {op} {p}: read-only file system")
        };
        vec![
            format!("{phase}: f to cpro:/data/: ok"),
            format!("{phase}: f to cpro:/data/ro/: {REFUSED}"),
            format!("{phase}: f to cpro:/data/ro/f2: {REFUSED}"),
            format!("{phase}: f to cpro:/data/bind/: {REFUSED}"),
            format!("{phase}: f to cpro:/data/bind/sub/: {REFUSED}"),
            // The trees' entries for the read-only directories come first.
            format!(
                "{phase}: into-ro to cpro:/data/: {}",
                erofs("lchown", "/data/ro")
            ),
            format!(
                "{phase}: into-sub to cpro:/data/: {}",
                erofs("lchown", "/data/bind")
            ),
            format!(
                "{phase}: bare-ro to cpro:/data/: {}",
                erofs("open", "/data/ro/deep")
            ),
            format!(
                "{phase}: bare-sub to cpro:/data/: {}",
                erofs("open", "/data/bind/sub/deep")
            ),
        ]
    };
    let mut want = expected("running");
    want.extend(expected("stopped"));
    want.extend([
        String::new(),
        "sub".to_owned(),
        ". ./bind ./f ./ro".to_owned(),
    ]);
    assert_eq!(berth, want);

    assert!(
        Path::new(berth_testutil::DOCKERD).is_file(),
        "{} is missing: scripts/setup-debian.sh installs Debian's docker.io",
        berth_testutil::DOCKERD
    );
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = berth_testutil::Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    let ddir = tempfile::tempdir().unwrap();
    let dockerd = steps(&|| dk.docker_cmd(), &s.image, ddir.path());
    // Debian's dockerd (20.10, API 1.41) predates recursive read-only binds (API 1.44, the
    // default for `:ro` that Berth and moby 25 follow): the bind's submount stays writable.
    let mut want = berth.clone();
    for (i, a) in want.iter_mut().enumerate() {
        if a.contains(": bare-sub to ") {
            *a = format!("{}: ok", a.split_once(": Error").unwrap().0);
        } else if i == berth.len() - 2 {
            *a = "sub sub/deep".to_owned();
        }
    }
    // The same refusals and the same data written: where dockerd's map order let the
    // writable parent decide, its kernel refuses the write instead, except under the bind's
    // submount, which dockerd 20.10 leaves writable.
    assert_eq!(dockerd.len(), want.len(), "{dockerd:#?}");
    let sub_written = dockerd
        .iter()
        .any(|d| d.ends_with(" to cpro:/data/bind/sub/: ok"));
    for (i, (d, b)) in dockerd.iter().zip(&want).enumerate() {
        if sub_written && i == want.len() - 2 {
            // What the bind's submount holds, then with the file dockerd wrote there.
            assert_eq!(*d, format!("{b} sub/f"), "{dockerd:#?}");
            continue;
        }
        if d != b {
            let (head, _) = b
                .rsplit_once(REFUSED)
                .unwrap_or_else(|| panic!("dockerd: {d}\nberth: {b}"));
            let writable_sub = head.contains(" to cpro:/data/bind/sub/: ") && d.ends_with(": ok");
            assert!(
                d.starts_with(head) && (d.ends_with(": read-only file system") || writable_sub),
                "dockerd: {d}\nberth: {b}"
            );
        }
    }
}
