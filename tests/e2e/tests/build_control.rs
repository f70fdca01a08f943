//! Around docker build (the classic builder, `DOCKER_BUILDKIT=0`): `docker builder prune`,
//! `docker system prune` and `system df` after builds, `POST /build/cancel` of a running build,
//! and the images service killed mid-RUN (the build fails with an error line; the restarted
//! service removes the RUN container).

use std::path::Path;

use berth_testutil::{BusyboxEngine, eventually, run, text};
use nix::sys::signal::Signal;

#[path = "support/classic_build.rs"]
mod classic_build;
use classic_build::{classic, classic_ok, write};

/// Every container the engine lists.
fn containers(s: &BusyboxEngine) -> Vec<String> {
    s.docker(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// As dockerd with the classic builder: a build-cache prune frees nothing (the classic cache is
/// the intermediate images, which go with the images they lead to), `system prune` succeeds and
/// keeps the cache of a tagged build, `system df` shows an empty build cache.
#[test]
fn builder_and_system_prune_report_as_dockerd() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!(
                "FROM {img} AS first\nRUN echo one > /one\nFROM {img}\nCOPY --from=first /one /one\nRUN echo two > /two\n",
                img = s.image
            ),
        )],
    );
    let dir = ctx.path().to_str().unwrap();
    classic_ok(&s, &["build", "-t", "pruned:1", dir]);

    let out = s.docker(&["builder", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let out = s.docker(&["builder", "prune", "-af", "--filter", "until=24h"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    let (code, err) = s.fails(&["builder", "prune", "-f", "--filter", "mutable=true"]);
    assert!(
        code != 0 && err.contains("invalid filter 'mutable'"),
        "{err}"
    );
    let (code, err) = s.fails(&["builder", "prune", "-f", "--filter", "until=soon"]);
    assert!(
        code != 0 && err.contains("filter expects a duration"),
        "{err}"
    );
    // docker-py's prune_builds.
    let out = run(std::process::Command::new("python3").args([
        "-c",
        r#"
import sys, docker
c = docker.APIClient(base_url=sys.argv[1], version="auto")
r = c.prune_builds(filters={"until": "24h"}, keep_storage=1000000, all=True)
assert r == {"CachesDeleted": [], "SpaceReclaimed": 0}, r
print("ok")
"#,
        &s.engine.docker_host,
    ]));
    let (o, e) = text(&out);
    assert!(out.status.success() && o.contains("ok"), "{o}\n{e}");

    let df = s.api_get("/system/df?type=build-cache");
    assert_eq!(df["BuildCache"], serde_json::json!([]), "{df}");
    let out = s.docker(&["system", "df"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Build Cache") && l.contains("0B")),
        "{out}"
    );
    // The images counted are those `docker images` lists (the intermediate ones are not).
    let listed = s.docker(&["images", "-q"]).lines().count();
    let all = s.docker(&["images", "-aq"]).lines().count();
    assert!(all > listed, "a build leaves intermediate images");
    let out = s.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(out.contains(&format!("Images {listed}\n")), "{out}");

    // system prune: the first stage's image (dangling, a leaf) goes with its intermediate
    // parents; the tagged image keeps its own, so a rebuild runs no step.
    let out = s.docker(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(out.contains("deleted: sha256:"), "{out}");
    let out = classic_ok(&s, &["build", "-t", "pruned:1", dir]);
    assert_eq!(
        out.matches(" ---> Using cache").count(),
        2,
        "the tagged image's steps stay cached:\n{out}"
    );
    // The first stage's step was pruned: it runs again.
    assert!(out.contains(" ---> Running in "), "{out}");

    // docker rmi of the built image takes its intermediate images with it.
    s.docker(&["rmi", "pruned:1"]);
    classic_ok(&s, &["image", "prune", "-f"]);
    let left: Vec<String> = s
        .docker(&["images", "-aq", "--no-trunc"])
        .lines()
        .map(str::to_owned)
        .collect();
    let busybox = s.docker(&["images", "-q", "--no-trunc", &s.image]);
    assert_eq!(left, [busybox.trim()], "only the base image is left");
}

/// The python script: a build through the API with a `buildid`, its stream printed line by
/// line.
const BUILD_WITH_ID: &str = r#"
import io, json, sys, tarfile, docker
api = docker.APIClient(base_url=sys.argv[1], version="auto")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    df = ("FROM %s\nRUN sleep 300\n" % sys.argv[2]).encode()
    info = tarfile.TarInfo("Dockerfile"); info.size = len(df)
    t.addfile(info, io.BytesIO(df))
resp = api._post(api._url("/build"), params={"buildid": sys.argv[3], "rm": "1"},
                 data=buf.getvalue(), headers={"Content-Type": "application/x-tar"}, stream=True)
for line in api._stream_helper(resp, decode=True):
    print(json.dumps(line), flush=True)
"#;

/// `POST /build/cancel?id=` stops the build that was started with that `buildid`: its stream
/// ends with `Build cancelled`, and the RUN container is removed.
#[test]
fn build_cancel_stops_the_build_and_removes_its_container() {
    let s = BusyboxEngine::new();
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            BUILD_WITH_ID,
            &s.engine.docker_host,
            &s.image,
            "cancel-me",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the RUN container running", || {
        (!s.docker(&["ps", "-q"]).is_empty()).then_some(())
    });
    // Another ID cancels nothing.
    s.api_post("/build/cancel?id=other", "");
    assert!(!s.docker(&["ps", "-q"]).is_empty());
    s.api_post("/build/cancel?id=cancel-me", "");
    let out = py.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap();
    assert_eq!(last["error"], "Build cancelled", "{stdout}");
    eventually("the RUN container removed", || {
        containers(&s).is_empty().then_some(())
    });
}

/// The images service killed while a RUN runs: the client reads an error (never a success),
/// and the restarted service removes the RUN container it had created, but not the one an
/// earlier build kept on purpose (a failed step's, as dockerd keeps it).
#[test]
fn images_killed_mid_run_fails_the_build_and_leaves_no_container() {
    let s = BusyboxEngine::new();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}\nRUN exit 4\n", s.image))],
    );
    let (code, out, _) = classic(&s, &["build", ctx.path().to_str().unwrap()]);
    assert_eq!(code, 4, "{out}");
    let kept = containers(&s);
    assert_eq!(kept.len(), 1, "the failed step's container is kept: {out}");
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}\nRUN sleep 300\n", s.image))],
    );
    let cli = s
        .engine
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", ctx.path().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = eventually("the RUN container running", || {
        let out = s.docker(&["ps", "-q", "--no-trunc"]);
        (!out.is_empty()).then_some(out)
    });
    let before = s.engine.pid_of("berth-images").expect("images running");
    s.engine.signal("berth-images", Signal::SIGKILL);
    let out = cli.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a build cut short is not a success:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("Successfully built"), "{stdout}");
    assert!(
        stderr.contains("the images service stopped before it finished"),
        "{stderr}"
    );
    eventually("a new images process", || {
        s.engine.pid_of("berth-images").filter(|p| *p != before)
    });
    eventually(
        "the RUN container removed by the restarted images service",
        || (!containers(&s).contains(&id.trim().to_owned())).then_some(()),
    );
    assert_eq!(containers(&s), kept, "the kept container stays");
    s.docker(&["rm", &kept[0]]);
    // The engine builds again.
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {}\nRUN echo again\n", s.image))],
    );
    let out = classic_ok(&s, &["build", "-q", ctx.path().to_str().unwrap()]);
    assert!(out.starts_with("sha256:"), "{out}");
}

/// What a build leaves and what the prunes free: Berth and a reference dockerd (the classic
/// builder) agree on every figure.
#[test]
fn prunes_after_a_build_agree_with_dockerd() {
    assert!(
        Path::new(berth_testutil::DOCKERD).is_file(),
        "{} is missing: scripts/setup-debian.sh installs Debian's docker.io",
        berth_testutil::DOCKERD
    );
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("busybox.tar");
    s.docker(&["save", "-o", saved.to_str().unwrap(), &s.image]);
    let dk = berth_testutil::Dockerd::start();
    dk.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {img} AS first\nRUN echo one > /one\nFROM {img}\nCOPY --from=first /one /one\nRUN echo two > /two\n",
                img = s.image
            ),
        )],
    );
    let ctx = ctx.to_str().unwrap();
    let figures = |docker: &dyn Fn(&[&str]) -> std::process::Output| {
        let ok = |args: &[&str]| {
            let out = docker(args);
            let (o, e) = text(&out);
            assert!(out.status.success(), "docker {args:?}: {o}\n{e}");
            o
        };
        let count = || ok(&["images", "-aq"]).lines().count();
        ok(&["build", "-t", "pruned:1", ctx]);
        let built = count();
        let builder = ok(&["builder", "prune", "-f"]);
        let system = ok(&["system", "prune", "-f"]);
        let after = count();
        let rebuild = ok(&["build", "-t", "pruned:1", ctx]);
        ok(&["rmi", "pruned:1"]);
        ok(&["image", "prune", "-f"]);
        (
            built,
            builder.trim().to_owned(),
            system.matches("deleted: sha256:").count() > 0,
            after,
            rebuild.matches(" ---> Using cache").count(),
            count(),
        )
    };
    let berth =
        figures(&|a: &[&str]| run(s.engine.docker_cmd().env("DOCKER_BUILDKIT", "0").args(a)));
    let dockerd = figures(&|a: &[&str]| dk.docker(a));
    assert_eq!(
        berth, dockerd,
        "(images after the build, builder prune, system prune deleted some, images after, cached steps on rebuild, images left)"
    );
}
