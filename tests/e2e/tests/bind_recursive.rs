//! `--mount type=bind,...,bind-recursive=...` through the real docker CLI, on a host directory
//! with a tmpfs mounted below it: what the container sees there and where it can write, for
//! each mode, and the read-only default of older API versions.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
};

use berth_testutil::BusyboxEngine;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A tmpfs the test mounted, unmounted at the end even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn at(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// Lists /m/sub and tries to write at /m and at /m/sub.
const PROBE: &str = "ls /m/sub | tr '\\n' ' '; \
    for d in /m /m/sub; do touch $d/w 2>/dev/null && echo -n \"$d:rw \" || echo -n \"$d:ro \"; \
    rm -f $d/w; done";

#[test]
fn each_bind_recursive_mode_as_dockerd_makes_it() {
    let s = BusyboxEngine::new();
    let img = s.image.as_str();
    let host = s.engine.dir.path().join("host");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    std::fs::write(host.join("sub/under"), "").unwrap();
    let tmpfs = Tmpfs::at(&host.join("sub"));
    std::fs::write(host.join("sub/on-tmpfs"), "").unwrap();
    let src = host.display().to_string();
    let run = |mount: &str| {
        let m = format!("type=bind,source={src},target=/m{mount}");
        s.docker(&["run", "--rm", "--mount", &m, img, "sh", "-c", PROBE])
    };
    assert_eq!(run(""), "on-tmpfs /m:rw /m/sub:rw");
    // Not recursive: the directory below the tmpfs.
    assert_eq!(run(",bind-recursive=disabled"), "under /m:rw /m/sub:rw");
    // Read-only binds are read-only with their submounts (API >= 1.44, kernel >= 5.12).
    assert_eq!(run(",readonly"), "on-tmpfs /m:ro /m/sub:ro");
    assert_eq!(
        run(",readonly,bind-recursive=enabled"),
        "on-tmpfs /m:ro /m/sub:ro"
    );
    assert_eq!(
        run(",readonly,bind-recursive=writable"),
        "on-tmpfs /m:ro /m/sub:rw"
    );
    assert_eq!(
        run(",readonly,bind-recursive=readonly,bind-propagation=rprivate"),
        "on-tmpfs /m:ro /m/sub:ro"
    );
    assert_eq!(
        run(",readonly,bind-recursive=disabled"),
        "under /m:ro /m/sub:ro"
    );
    // -v ...:ro as well.
    let v = format!("{src}:/m:ro");
    assert_eq!(
        s.docker(&["run", "--rm", "-v", &v, img, "sh", "-c", PROBE]),
        "on-tmpfs /m:ro /m/sub:ro"
    );
    // inspect shows the options as sent.
    let m = format!("type=bind,source={src},target=/m,readonly,bind-recursive=writable");
    s.docker(&["create", "--name", "shown", "--mount", &m, img, "true"]);
    assert_eq!(
        s.docker(&["inspect", "-f", "{{json .HostConfig.Mounts}}", "shown"]),
        format!(
            r#"[{{"Type":"bind","Source":"{src}","Target":"/m","ReadOnly":true,"BindOptions":{{"ReadOnlyNonRecursive":true}}}}]"#
        )
    );
    s.docker(&["rm", "shown"]);

    // Clients before API 1.44 get read-only binds that are read-only at the top only, and
    // cannot force them recursive.
    let old = |args: &[&str]| {
        let out = s
            .engine
            .docker_cmd()
            .env("DOCKER_API_VERSION", "1.43")
            .args(args)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (ok, out, err) = old(&["run", "--rm", "-v", &v, img, "sh", "-c", PROBE]);
    assert!(ok, "{err}");
    assert_eq!(out, "on-tmpfs /m:ro /m/sub:rw");
    // (The CLI refuses it itself; an SDK's request gets the daemon's 400.)
    let body = format!(
        r#"{{"Image":"{img}","HostConfig":{{"Mounts":[{{"Type":"bind","Source":"{src}",
        "Target":"/m","ReadOnly":true,"BindOptions":{{"ReadOnlyForceRecursive":true}}}}]}}}}"#
    );
    let mut sock = s.engine.api_socket();
    write!(
        sock,
        "POST /v1.43/containers/create HTTP/1.0\r\nHost: docker\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 400"), "{answer}");
    assert!(
        answer.contains(
            r#"{"message":"BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"}"#
        ),
        "{answer}"
    );
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    drop(tmpfs);
}

/// A kernel without mount_setattr, as the runtime finds it by trying (`berth-shim probe rro`,
/// here a wrapper that answers as such a kernel does and runs the real shim otherwise):
/// read-only binds fall back to the top only, and a mount that insists on recursion is
/// refused with dockerd's error.
#[test]
fn without_recursive_read_only_in_the_kernel_the_top_only_or_dockerds_error() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("berth-shim");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = probe ]; then\n\
             echo 'failed to call mount_setattr: function not implemented' >&2; exit 1\n\
             fi\n\
             exec {} \"$@\"\n",
            berth_testutil::bin("berth-shim").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = BusyboxEngine::with_options(
        &[],
        berth_testutil::EngineOptions {
            env: vec![("BERTH_SHIM_BIN".to_owned(), wrapper.display().to_string())],
            ..Default::default()
        },
    );
    let img = s.image.as_str();
    let host = s.engine.dir.path().join("host");
    std::fs::create_dir_all(host.join("sub")).unwrap();
    let tmpfs = Tmpfs::at(&host.join("sub"));
    std::fs::write(host.join("sub/on-tmpfs"), "").unwrap();
    let src = host.display().to_string();
    let v = format!("{src}:/m:ro");
    assert_eq!(
        s.docker(&["run", "--rm", "-v", &v, img, "sh", "-c", PROBE]),
        "on-tmpfs /m:ro /m/sub:rw"
    );
    let m = format!(
        "type=bind,source={src},target=/m,readonly,bind-recursive=readonly,bind-propagation=rprivate"
    );
    let (_, err) = s.fails(&["run", "--rm", "--mount", &m, img, "true"]);
    assert!(
        err.contains(
            "rro is not supported: failed to call mount_setattr: function not implemented \
             (kernel is older than 5.12?)"
        ),
        "{err}"
    );
    s.docker(&["container", "prune", "-f"]);
    drop(tmpfs);
}
