//! A private `docker-registry` (Debian's distribution 2.8) on 127.0.0.1, for pull and push tests.
//!
//! Each [`Registry`] has its own port, its own configuration file and its own storage in a
//! temporary directory; nothing is read from `/etc/docker/registry/config.yml` and the
//! `REGISTRY_*` environment variables that would override the configuration are removed.
//! Plain HTTP: the docker CLI and dockerd treat `127.0.0.0/8` as an insecure registry already.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::eventually;

/// The registry binary of Debian's `docker-registry` package.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Every manifest type a registry client accepts (without them distribution 2.8 may try to
/// convert a schema 2 manifest to schema 1).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A docker-registry owned by one test, on its own port and storage. Killed, and its storage
/// removed, on drop.
pub struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    auth: Option<(String, String)>,
    child: Option<Child>,
}

/// A manifest (or index) as the registry serves it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The `Content-Type` the registry answered with.
    pub media_type: String,
    /// The `Docker-Content-Digest` header.
    pub digest: String,
    pub body: Vec<u8>,
}

impl FetchedManifest {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("manifest JSON")
    }
}

impl Registry {
    /// A registry without authentication.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry with htpasswd basic authentication and this one user.
    pub fn with_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(auth: Option<(String, String)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).is_file(),
            "{REGISTRY_BIN} is missing (apt-get install docker-registry)"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-registry")
            .tempdir()
            .expect("tempdir");
        if let Some((user, password)) = &auth {
            // Cost 4 (bcrypt's minimum): the registry checks the hash on every request.
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n"))
                .expect("write htpasswd");
        }
        let mut reg = Registry {
            dir,
            port: 0,
            auth,
            child: None,
        };
        // free_port() releases the port before the registry binds it; another test may take
        // it in between, so try a few ports.
        for attempt in 1..=5 {
            reg.port = crate::free_port();
            match reg.spawn_and_wait() {
                Ok(()) => return reg,
                Err(log) if attempt < 5 && log.contains("address already in use") => continue,
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
        unreachable!()
    }

    fn write_config(&self) -> PathBuf {
        let d = self.dir.path();
        let auth = if self.auth.is_some() {
            format!(
                "auth:\n  htpasswd:\n    realm: berth-test-registry\n    path: {}\n",
                d.join("htpasswd").display()
            )
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: berth-test-registry-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
{auth}",
            storage = d.join("storage").display(),
            port = self.port,
        );
        let path = d.join("config.yml");
        std::fs::write(&path, config).expect("write registry config");
        path
    }

    /// Starts the registry on `self.port` and waits for `/v2/`; on failure returns its log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let config = self.write_config();
        let log_path = self.log_path();
        let log = std::fs::File::create(&log_path).expect("registry log");
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve")
            .arg(&config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        self.child = Some(cmd.spawn().expect("spawn docker-registry"));
        let want = if self.auth.is_some() { 401 } else { 200 };
        let agent = agent(Duration::from_secs(2));
        let url = format!("{}/v2/", self.url());
        let ready = eventually("docker-registry to answer GET /v2/", || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Some(Err(format!("exited with {status}\n{}", self.logs())));
            }
            match agent.get(&url).call() {
                Ok(r) if r.status().as_u16() == want => Some(Ok(())),
                Ok(r) => Some(Err(format!(
                    "GET /v2/ answered {} (expected {want})\n{}",
                    r.status(),
                    self.logs()
                ))),
                Err(_) => None,
            }
        });
        if ready.is_err() {
            self.kill();
        }
        ready
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `127.0.0.1:PORT/<name>`: an image reference in this registry.
    pub fn image(&self, name_and_tag: &str) -> String {
        format!("{}/{name_and_tag}", self.addr())
    }

    /// The user and password this registry was started with, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's storage directory (filesystem driver root).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// What the registry logged, for failure messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A client for this registry's HTTP API with these credentials (or none).
    pub fn client(&self, creds: Option<(&str, &str)>) -> RegistryClient {
        RegistryClient {
            base: self.url(),
            agent: agent(Duration::from_secs(120)),
            authorization: creds.map(|(u, p)| basic_auth(u, p)),
        }
    }

    /// A client with the registry's own credentials.
    fn own_client(&self) -> RegistryClient {
        self.client(self.credentials())
    }

    /// The HTTP status of `GET <path>` (`/v2/`, say) with these credentials.
    pub fn status(&self, path: &str, creds: Option<(&str, &str)>) -> u16 {
        self.client(creds)
            .get(path, None)
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.logs()))
    }

    /// `GET /v2/<name>/manifests/<reference>` with the registry's own credentials; `None` on 404.
    pub fn manifest(&self, name: &str, reference: &str) -> anyhow::Result<Option<FetchedManifest>> {
        self.own_client().manifest(name, reference)
    }

    /// `GET /v2/<name>/blobs/<digest>`; `None` on 404.
    pub fn blob(&self, name: &str, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.own_client().blob(name, digest)
    }

    /// The tags of a repository (`GET /v2/<name>/tags/list`); empty if it does not exist.
    pub fn tags(&self, name: &str) -> anyhow::Result<Vec<String>> {
        self.own_client().tags(name)
    }
}

impl Registry {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The storage goes with `dir` once the registry is dead.
        self.kill();
    }
}

/// A blocking HTTP client that never uses a proxy, follows no redirect and reports every
/// HTTP status as a response (not an error).
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

type Response = ureq::http::Response<ureq::Body>;

/// A small client for the registry HTTP API v2 (plain HTTP, optional basic auth).
pub struct RegistryClient {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn body_text(r: &mut Response) -> String {
    r.body_mut().read_to_string().unwrap_or_default()
}

impl RegistryClient {
    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn get(&self, path: &str, accept: Option<&str>) -> Result<Response, ureq::Error> {
        let mut req = self.agent.get(self.url(path));
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        req.call()
    }

    fn head(&self, path: &str) -> anyhow::Result<u16> {
        let mut req = self.agent.head(self.url(path));
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let r = req.call().with_context(|| format!("HEAD {path}"))?;
        Ok(r.status().as_u16())
    }

    /// `GET /v2/<name>/manifests/<reference>`, accepting every manifest type; `None` on 404.
    pub fn manifest(&self, name: &str, reference: &str) -> anyhow::Result<Option<FetchedManifest>> {
        let path = format!("/v2/{name}/manifests/{reference}");
        let mut r = self
            .get(&path, Some(MANIFEST_ACCEPT))
            .with_context(|| format!("GET {path}"))?;
        match r.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            s => bail!("GET {path}: {s}: {}", body_text(&mut r)),
        }
        let media_type = header(&r, "content-type").unwrap_or_default();
        let digest = header(&r, "docker-content-digest").unwrap_or_default();
        let body = r
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .with_context(|| format!("GET {path}: body"))?;
        Ok(Some(FetchedManifest {
            media_type,
            digest,
            body,
        }))
    }

    /// `GET /v2/<name>/blobs/<digest>`; `None` on 404.
    pub fn blob(&self, name: &str, digest: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = format!("/v2/{name}/blobs/{digest}");
        let mut r = self
            .get(&path, None)
            .with_context(|| format!("GET {path}"))?;
        match r.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            s => bail!("GET {path}: {s}: {}", body_text(&mut r)),
        }
        Ok(Some(
            r.body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .with_context(|| format!("GET {path}: body"))?,
        ))
    }

    /// Whether the repository has this blob (`HEAD /v2/<name>/blobs/<digest>`).
    pub fn has_blob(&self, name: &str, digest: &str) -> anyhow::Result<bool> {
        let path = format!("/v2/{name}/blobs/{digest}");
        match self.head(&path)? {
            200 => Ok(true),
            404 => Ok(false),
            s => bail!("HEAD {path}: {s}"),
        }
    }

    /// `GET /v2/<name>/tags/list`; empty if the repository does not exist.
    pub fn tags(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("/v2/{name}/tags/list");
        let mut r = self
            .get(&path, None)
            .with_context(|| format!("GET {path}"))?;
        match r.status().as_u16() {
            200 => {}
            404 => return Ok(Vec::new()),
            s => bail!("GET {path}: {s}: {}", body_text(&mut r)),
        }
        let v: serde_json::Value = serde_json::from_str(&body_text(&mut r))?;
        Ok(v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Uploads a blob from a file (`POST /v2/<name>/blobs/uploads/`, then a monolithic
    /// `PUT <location>&digest=`), unless the repository has it already.
    pub fn push_blob(&self, name: &str, digest: &str, file: &Path) -> anyhow::Result<()> {
        if self.has_blob(name, digest)? {
            return Ok(());
        }
        let path = format!("/v2/{name}/blobs/uploads/");
        let mut req = self.agent.post(self.url(&path));
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut r = req.send_empty().with_context(|| format!("POST {path}"))?;
        if r.status().as_u16() != 202 {
            bail!("POST {path}: {}: {}", r.status(), body_text(&mut r));
        }
        let location = header(&r, "location").context("upload without a Location")?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = self.url(&format!("{location}{sep}digest={digest}"));
        let f = std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
        let mut req = self
            .agent
            .put(&put_url)
            .header("Content-Type", "application/octet-stream");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut r = req
            .send(f)
            .with_context(|| format!("PUT blob {digest} to {name}"))?;
        if r.status().as_u16() != 201 {
            bail!(
                "PUT blob {digest} to {name}: {}: {}",
                r.status(),
                body_text(&mut r)
            );
        }
        Ok(())
    }

    /// `PUT /v2/<name>/manifests/<reference>`; returns the digest the registry computed.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> anyhow::Result<String> {
        let path = format!("/v2/{name}/manifests/{reference}");
        let mut req = self
            .agent
            .put(self.url(&path))
            .header("Content-Type", media_type);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut r = req.send(body).with_context(|| format!("PUT {path}"))?;
        if r.status().as_u16() != 201 {
            bail!("PUT {path}: {}: {}", r.status(), body_text(&mut r));
        }
        header(&r, "docker-content-digest").context("no Docker-Content-Digest")
    }

    /// `DELETE /v2/<name>/manifests/<digest>` (the registry has deletes enabled).
    pub fn delete_manifest(&self, name: &str, digest: &str) -> anyhow::Result<()> {
        let path = format!("/v2/{name}/manifests/{digest}");
        let mut req = self.agent.delete(self.url(&path));
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut r = req.call().with_context(|| format!("DELETE {path}"))?;
        if r.status().as_u16() != 202 {
            bail!("DELETE {path}: {}: {}", r.status(), body_text(&mut r));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn registry_serves_v2_and_cleans_up() {
        let reg = Registry::start();
        assert!(reg.addr().starts_with("127.0.0.1:"));
        assert_eq!(reg.url(), format!("http://127.0.0.1:{}", reg.port()));
        assert_eq!(reg.status("/v2/", None), 200);
        assert_eq!(reg.tags("nothing/here").unwrap(), Vec::<String>::new());
        assert!(reg.manifest("nothing/here", "latest").unwrap().is_none());
        let storage = reg.storage();
        let root = storage.parent().unwrap().to_owned();
        let pid = reg.child.as_ref().unwrap().id();
        drop(reg);
        assert!(!root.exists(), "{} left behind", root.display());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "docker-registry {pid} still running"
        );
    }

    #[test]
    fn auth_registry_requires_credentials() {
        let reg = Registry::with_auth("tester", "s3cret pass");
        assert_eq!(reg.credentials(), Some(("tester", "s3cret pass")));
        assert_eq!(reg.status("/v2/", None), 401);
        assert_eq!(reg.status("/v2/", Some(("tester", "wrong"))), 401);
        assert_eq!(reg.status("/v2/", Some(("nobody", "s3cret pass"))), 401);
        assert_eq!(reg.status("/v2/", Some(("tester", "s3cret pass"))), 200);
        // The challenge a docker client answers with basic auth.
        let r = reg.client(None).get("/v2/", None).unwrap();
        let challenge = header(&r, "www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }

    #[test]
    fn registries_run_side_by_side() {
        let a = Registry::start();
        let b = Registry::start();
        assert_ne!(a.port(), b.port());
        assert_eq!(a.status("/v2/", None), 200);
        assert_eq!(b.status("/v2/", None), 200);
    }
}
