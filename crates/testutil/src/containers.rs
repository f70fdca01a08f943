//! The container tests' fixture: an engine with busybox pulled from a private registry.

use crate::{Engine, EngineOptions, MediaTypes, Registry, images::busybox_layout, push_layout};

/// An engine (`berth up`) with a busybox image pushed to a private docker-registry and pulled.
/// Removes every container on drop, before the engine and the registry go.
pub struct BusyboxEngine {
    pub engine: Engine,
    /// The pulled image, `127.0.0.1:<port>/busybox:latest`.
    pub image: String,
    pub registry: Registry,
    _dir: tempfile::TempDir,
}

impl BusyboxEngine {
    /// busybox:latest pushed and pulled.
    pub fn new() -> BusyboxEngine {
        BusyboxEngine::with_tags(&[])
    }

    /// Also pushes busybox under `more` tags (not pulled).
    pub fn with_tags(more: &[&str]) -> BusyboxEngine {
        BusyboxEngine::with_options(more, EngineOptions::default())
    }

    /// An engine started with `opts`, busybox pushed (also under `more` tags) and pulled.
    pub fn with_options(more: &[&str], opts: EngineOptions) -> BusyboxEngine {
        let registry = Registry::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let info = busybox_layout(&dir.path().join("layout"), MediaTypes::Oci);
        for tag in std::iter::once(&"latest").chain(more) {
            push_layout(&info.layout, &format!("busybox:{tag}"), &registry, None)
                .expect("push busybox");
        }
        let engine = Engine::up(opts);
        let image = registry.image("busybox:latest");
        engine.docker_ok(&["pull", &image]);
        BusyboxEngine {
            engine,
            image,
            registry,
            _dir: dir,
        }
    }

    /// Runs docker, asserts it succeeded; trimmed stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        self.engine.docker_ok(args).trim().to_owned()
    }

    /// `docker run -d --name NAME EXTRA... IMAGE sleep 1000`.
    pub fn sleeper(&self, name: &str, extra: &[&str]) {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&self.image, "sleep", "1000"]);
        self.docker(&args);
    }

    /// SIGKILLs the network service and waits until `berth up` has restarted it and it
    /// answers `docker network ls`.
    pub fn restart_network_service(&self) {
        self.engine.kill_and_await_restart("berth-network");
        crate::eventually_explained("the network service to answer", || {
            let (code, out, err) = self.status(&["network", "ls"]);
            if code == 0 {
                Ok(())
            } else {
                Err(format!("{out}{err}"))
            }
        });
    }

    /// Runs docker; (exit code, stdout, stderr).
    pub fn status(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.engine.docker(args);
        let (o, e) = crate::text(&out);
        (out.status.code().unwrap_or(-1), o, e)
    }

    /// Runs docker, asserts it failed; (exit code, stdout + stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let (code, o, e) = self.status(args);
        assert_ne!(code, 0, "docker {args:?} should fail:\n{o}\n{e}");
        (code, format!("{o}\n{e}"))
    }

    /// A request on the engine's API socket: (response head, body).
    fn api(&self, method: &str, path: &str, body: &str) -> (String, String) {
        use std::io::{Read, Write};
        let mut s = self.engine.api_socket();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("request");
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("response");
        let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
        (head.to_owned(), body.to_owned())
    }

    /// A GET on the engine's API socket; the JSON body (asserting a 200).
    pub fn api_get(&self, path: &str) -> serde_json::Value {
        let (head, body) = self.api("GET", path, "");
        assert!(head.contains(" 200 "), "GET {path}: {head}\n{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// A POST of a JSON body on the engine's API socket; the response body (asserting a 2xx).
    pub fn api_post(&self, path: &str, json: &str) -> String {
        let (head, body) = self.api("POST", path, json);
        assert!(head.contains(" 20"), "POST {path}: {head}\n{body}");
        body
    }

    /// The events of container `name` since `since`: (action, attributes).
    pub fn container_events(&self, since: u64, name: &str) -> Vec<(String, serde_json::Value)> {
        let out = self.engine.docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &(crate::unix_now() + 1).to_string(),
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Action}} {{json .Actor.Attributes}}",
        ]);
        crate::text(&out)
            .0
            .lines()
            .filter_map(|l| {
                let (action, attrs) = l.split_once(" {\"")?;
                let attrs = serde_json::from_str(&format!("{{\"{attrs}")).ok()?;
                Some((action.to_owned(), attrs))
            })
            .collect()
    }

    /// `docker inspect` of one object.
    pub fn inspect(&self, id: &str) -> serde_json::Value {
        let out = self.docker(&["inspect", id]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }
}

impl Default for BusyboxEngine {
    fn default() -> BusyboxEngine {
        BusyboxEngine::new()
    }
}

impl Drop for BusyboxEngine {
    fn drop(&mut self) {
        let out = self.engine.docker(&["ps", "-aq"]);
        for id in crate::text(&out).0.split_whitespace() {
            let _ = self.engine.docker(&["rm", "-f", id]);
        }
    }
}
