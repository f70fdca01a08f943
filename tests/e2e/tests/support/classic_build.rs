//! The classic builder through the real docker CLI, shared by the build tests.

use std::path::Path;

use berth_testutil::{BusyboxEngine, run, text};

/// `DOCKER_BUILDKIT=0 docker <args>`: (exit code, stdout, stderr).
pub(crate) fn classic(s: &BusyboxEngine, args: &[&str]) -> (i32, String, String) {
    let out = run(s.engine.docker_cmd().env("DOCKER_BUILDKIT", "0").args(args));
    let (o, e) = text(&out);
    (out.status.code().unwrap_or(-1), o, e)
}

pub(crate) fn classic_ok(s: &BusyboxEngine, args: &[&str]) -> String {
    let (code, out, err) = classic(s, args);
    assert_eq!(
        code,
        0,
        "docker {args:?} failed:\n{out}\n{err}\n--- engine ---\n{}",
        s.engine.logs()
    );
    out
}

pub(crate) fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}
