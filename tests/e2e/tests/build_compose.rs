//! `docker-compose build` (Debian's docker-compose 1.29, which builds through the Engine API's
//! classic builder) of a service with `build:` args and a target, through Berth.

use berth_testutil::{BusyboxEngine, run, text};

fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

#[test]
fn compose_builds_a_service_with_args_and_a_target() {
    let s = BusyboxEngine::new();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "app/Dockerfile",
                &format!(
                    "FROM {img} AS base\nARG GREETING=none\nRUN echo \"$GREETING\" > /greeting\n\
                     FROM base AS wanted\nRUN echo wanted > /stage\n\
                     FROM base AS last\nRUN echo last > /stage\n",
                    img = s.image
                ),
            ),
            (
                "docker-compose.yml",
                "version: \"3.8\"\nservices:\n  app:\n    image: composed-app:1\n    build:\n      context: ./app\n      target: wanted\n      args:\n        GREETING: hello-compose\n",
            ),
        ],
    );
    // Through docker-py's API call, then through the docker CLI (compose's two ways).
    for cli_build in ["0", "1"] {
        let out = run(std::process::Command::new("docker-compose")
            .current_dir(dir.path())
            .env("DOCKER_HOST", &s.engine.docker_host)
            .env("DOCKER_BUILDKIT", "0")
            .env("COMPOSE_DOCKER_CLI_BUILD", cli_build)
            .args(["-p", "berthcompose", "build"]));
        let (o, e) = text(&out);
        assert!(
            out.status.success(),
            "docker-compose build ({cli_build}):\n{o}\n{e}"
        );
        assert!(
            o.contains("Successfully tagged composed-app:1")
                || e.contains("Successfully tagged composed-app:1"),
            "{o}\n{e}"
        );
        assert_eq!(
            s.docker(&[
                "run",
                "--rm",
                "composed-app:1",
                "cat",
                "/greeting",
                "/stage"
            ]),
            "hello-compose\nwanted"
        );
        s.docker(&["rmi", "composed-app:1"]);
    }
}
