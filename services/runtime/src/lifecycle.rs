//! The containers' lifecycle: lookup, start, the exit watchers, wait, kill, stop, rename,
//! remove, list and inspect. Every durable change is written to the store before its event
//! is published and before waiters are woken.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use berth_bus::EventPublisher;
use berth_proto::{images::v1 as images, runtime::v1 as pb, shim::v1 as shimpb};
use berth_types::{Actor, ErrorKind, Event, EventType};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

use crate::{
    container::{Container, Status, now_rfc3339},
    container_error::ContainerError,
    shim,
    store::Store,
};

/// The containers and what they need: the store, the images service, the bus.
pub(crate) struct Containers {
    pub(crate) store: Arc<Store>,
    pub(crate) images: Channel,
    events: EventPublisher,
    /// `<data-root>/runtime/containers`: the logs.
    pub(crate) data_dir: PathBuf,
    /// `<exec-root>/runtime/containers`: the bundles.
    pub(crate) run_dir: PathBuf,
    /// `<exec-root>/s`: the shims' sockets (short paths).
    socket_dir: PathBuf,
    pub(crate) log_max_size: u64,
    pub(crate) log_max_file: u32,
    /// Serializes changes to records.
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// Bumped after every change, to wake waiters.
    changed: watch::Sender<u64>,
    /// Attaches to containers not started yet, by container ID: subscribed to the shim
    /// when it is started, before the process is released.
    pending_attaches: std::sync::Mutex<HashMap<String, Vec<Attacher>>>,
}

/// The receiving end of an attach.
pub(crate) type AttachReceiver = mpsc::Receiver<Result<pb::AttachFrame, tonic::Status>>;

/// One attach: where the frames go and which streams it wants.
struct Attacher {
    tx: mpsc::Sender<Result<pb::AttachFrame, tonic::Status>>,
    stdout: bool,
    stderr: bool,
}

impl Containers {
    pub(crate) fn new(
        store: Arc<Store>,
        images: Channel,
        events: EventPublisher,
        cfg: &berth_config::DaemonConfig,
        data_dir: PathBuf,
    ) -> Containers {
        let log_max_size = cfg
            .log_opts
            .get("max-size")
            .and_then(|s| shim::parse_size(s))
            .unwrap_or(0);
        let log_max_file = cfg
            .log_opts
            .get("max-file")
            .and_then(|s| s.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        Containers {
            store,
            images,
            events,
            data_dir: data_dir.join("containers"),
            run_dir: cfg.exec_root.join("runtime").join("containers"),
            socket_dir: cfg.exec_root.join("s"),
            log_max_size,
            log_max_file,
            lock: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
            pending_attaches: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn images_client(&self) -> images::images_client::ImagesClient<Channel> {
        images::images_client::ImagesClient::new(self.images.clone())
    }

    pub(crate) fn bundle(&self, id: &str) -> PathBuf {
        self.run_dir.join(id)
    }

    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.data_dir.join(id).join(format!("{id}-json.log"))
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Publishes a container event with the name and image attributes.
    pub(crate) fn event(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let mut actor = Actor {
            id: c.id.clone(),
            ..Actor::default()
        };
        actor
            .attributes
            .insert("name".to_owned(), c.short_name().to_owned());
        actor.attributes.insert("image".to_owned(), c.image.clone());
        if let Value::Object(labels) = &c.config["Labels"] {
            for (k, v) in labels {
                if let Some(v) = v.as_str() {
                    actor.attributes.insert(k.clone(), v.to_owned());
                }
            }
        }
        for (k, v) in extra {
            actor.attributes.insert((*k).to_owned(), v.clone());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        match action.parse() {
            Ok(a) => self
                .events
                .publish(&Event::new(EventType::Container, a, actor, now)),
            Err(e) => tracing::error!(error = %e, "bad event action"),
        }
    }

    /// Full ID, exact name, or unique ID prefix.
    pub(crate) fn find(&self, name: &str) -> Result<Container, ContainerError> {
        let all = self.store.all()?;
        if let Some(c) = all.iter().find(|c| c.id == name) {
            return Ok(c.clone());
        }
        let slashed = format!("/{}", name.trim_start_matches('/'));
        if let Some(c) = all.iter().find(|c| c.name == slashed) {
            return Ok(c.clone());
        }
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut matches = all.iter().filter(|c| c.id.starts_with(name));
            if let Some(c) = matches.next() {
                if matches.next().is_some() {
                    return Err(ContainerError::invalid(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )));
                }
                return Ok(c.clone());
            }
        }
        Err(ContainerError::not_found(format!(
            "No such container: {name}"
        )))
    }

    pub(crate) fn inspect(&self, name: &str) -> Result<pb::JsonResponse, ContainerError> {
        let c = self.find(name)?;
        let log = self.log_path(&c.id).display().to_string();
        Ok(pb::JsonResponse {
            json: c.inspect(&log, &self.bundle(&c.id)).to_string(),
        })
    }

    pub(crate) fn list(&self, req: &pb::ListRequest) -> Result<pb::JsonResponse, ContainerError> {
        let filters = Filters::parse(&req.filters)?;
        let mut all = self.store.all()?;
        all.sort_by(|a, b| b.created.cmp(&a.created));
        let all_wanted = req.all || req.limit > 0 || filters.has("status");
        let out: Vec<Value> = all
            .iter()
            .filter(|c| all_wanted || c.state.running())
            .filter(|c| filters.matches(c))
            .take(if req.limit > 0 {
                req.limit as usize
            } else {
                usize::MAX
            })
            .map(Container::summary)
            .collect();
        Ok(pb::JsonResponse {
            json: Value::Array(out).to_string(),
        })
    }

    /// Starts a created or stopped container.
    pub(crate) async fn start(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let mut c = self.find(name)?;
        if c.state.running() {
            return Err(ContainerError::new(ErrorKind::NotModified, ""));
        }
        if c.rootfs.is_null() {
            return Err(ContainerError::conflict(format!(
                "container {} has no root filesystem",
                c.id
            )));
        }
        let bundle = self.bundle(&c.id);
        delete_shim(&bundle).await;
        let net = match c.network_mode().as_str() {
            "default" | "none" => Value::from("new"),
            "host" => Value::from("host"),
            other => {
                return Err(ContainerError::invalid(format!(
                    "network mode {other:?} is not supported yet: use \"none\" or \"host\""
                )));
            }
        };
        let (uid, gid) = parse_user(c.config["User"].as_str().unwrap_or_default())?;
        let env = c.config["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let cwd = match c.config["WorkingDir"].as_str().unwrap_or_default() {
            "" => "/".to_owned(),
            w => w.to_owned(),
        };
        let log_path = self.log_path(&c.id);
        let spec = shim::BundleSpec {
            id: &c.id,
            rootfs: &c.rootfs,
            args: std::iter::once(c.path.clone())
                .chain(c.args.iter().cloned())
                .collect(),
            env,
            cwd,
            uid,
            gid,
            net,
            log_path: &log_path,
            max_size: self.log_max_size,
            max_file: self.log_max_file,
            stop_signal: c.stop_signal(),
            socket: self.socket_dir.join(format!("{}.sock", &c.id[..20])),
        };
        shim::write_bundle(&bundle, &spec)?;
        match shim::start(&bundle).await {
            Err((kind, message)) => {
                let code = match kind.as_str() {
                    "not-found" => 127,
                    "permission" => 126,
                    _ => 125,
                };
                let text = format!("failed to create task for container: {message}");
                c.state.exit_code = code;
                c.state.error = text.clone();
                self.store.put(&c)?;
                self.bump();
                Err(ContainerError::new(
                    if code == 125 {
                        ErrorKind::Internal
                    } else {
                        ErrorKind::InvalidArgument
                    },
                    text,
                ))
            }
            Ok(address) => {
                let mut client = shim::connect(&address).await?;
                let attachers = self
                    .pending_attaches
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&c.id)
                    .unwrap_or_default();
                for a in attachers {
                    subscribe(&mut client, a).await;
                }
                let started = client
                    .start(shimpb::StartRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim start: {e}")))?
                    .into_inner();
                if let Some(err) = started.error {
                    let code = match err.kind.as_str() {
                        "not-found" => 127,
                        "permission" => 126,
                        _ => 125,
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        client.wait(shimpb::WaitRequest {}),
                    )
                    .await;
                    delete_shim(&bundle).await;
                    let text = format!("failed to create task for container: {}", err.message);
                    c.state.exit_code = code;
                    c.state.error = text.clone();
                    self.store.put(&c)?;
                    self.bump();
                    return Err(ContainerError::new(
                        if code == 125 {
                            ErrorKind::Internal
                        } else {
                            ErrorKind::InvalidArgument
                        },
                        text,
                    ));
                }
                let st = client
                    .state(shimpb::StateRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim state: {e}")))?
                    .into_inner();
                c.state.status = Status::Running;
                c.state.pid = st.pid;
                c.state.exit_code = 0;
                c.state.error.clear();
                c.state.oom_killed = false;
                c.state.started_at = now_rfc3339();
                self.store.put(&c)?;
                self.bump();
                self.event(&c, "start", &[]);
                self.watch_exit(c.id.clone());
                Ok(())
            }
        }
    }

    /// docker attach: the live output of the main process. On a container that is not
    /// running, the attach waits for the next start.
    pub(crate) async fn attach(
        &self,
        req: &pb::AttachRequest,
    ) -> Result<AttachReceiver, ContainerError> {
        let _guard = self.lock.lock().await;
        let c = self.find(&req.id)?;
        let (tx, rx) = mpsc::channel(64);
        let a = Attacher {
            tx,
            stdout: req.stdout,
            stderr: req.stderr,
        };
        if c.state.running() {
            let address = shim::address(&self.bundle(&c.id)).ok_or_else(|| {
                ContainerError::conflict(format!("container {} is not running", c.id))
            })?;
            let mut client = shim::connect(&address).await?;
            subscribe(&mut client, a).await;
        } else {
            self.pending_attaches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(c.id.clone())
                .or_default()
                .push(a);
        }
        Ok(rx)
    }

    /// A background task that learns the exit of a running container from its shim (or,
    /// when the shim is gone, from exit.json) and records it.
    pub(crate) fn watch_exit(self: &Arc<Self>, id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let bundle = this.bundle(&id);
            let mut exit = None;
            if let Some(address) = shim::address(&bundle)
                && let Ok(mut client) = shim::connect(&address).await
                && let Ok(r) = client.wait(shimpb::WaitRequest {}).await
            {
                let r = r.into_inner();
                exit = Some((r.exit_code as i64, r.exited_at, r.oom_killed));
            }
            let exit =
                exit.or_else(|| shim::exit_file(&bundle))
                    .unwrap_or((255, String::new(), false));
            if let Err(e) = this.record_exit(&id, exit).await {
                tracing::error!(error = %e, id, "recording an exit");
            }
            let auto_remove = matches!(this.store.get(&id), Ok(Some(c))
                if !c.state.running() && c.host_config["AutoRemove"].as_bool() == Some(true));
            if auto_remove {
                let req = pb::RemoveRequest {
                    id: id.clone(),
                    force: false,
                    volumes: false,
                };
                if let Err(e) = this.remove(&req).await {
                    tracing::warn!(error = %e, id, "auto-remove");
                }
            }
        });
    }

    async fn record_exit(
        &self,
        id: &str,
        (code, at, oom): (i64, String, bool),
    ) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let Some(mut c) = self.store.get(id)? else {
            return Ok(());
        };
        if !c.state.running() {
            return Ok(());
        }
        c.state.status = Status::Exited;
        c.state.pid = 0;
        c.state.exit_code = code;
        c.state.oom_killed = oom;
        c.state.finished_at = if at.is_empty() { now_rfc3339() } else { at };
        c.state.exits += 1;
        self.store.put(&c)?;
        self.bump();
        self.event(&c, "die", &[("exitCode", code.to_string())]);
        Ok(())
    }

    /// On start: watch the containers recorded as running (their shims outlive us).
    pub(crate) fn reconnect(self: &Arc<Self>) -> Result<(), ContainerError> {
        for c in self.store.all()? {
            if c.state.running() {
                self.watch_exit(c.id);
            }
        }
        Ok(())
    }

    /// Waits until `id` is not running; false when the deadline passed first.
    async fn wait_stopped(
        &self,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, ContainerError> {
        let mut rx = self.changed.subscribe();
        loop {
            match self.store.get(id)? {
                Some(c) if c.state.running() => {}
                _ => return Ok(true),
            }
            match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                        return Ok(false);
                    }
                }
                None => {
                    let _ = rx.changed().await;
                }
            }
        }
    }

    /// Registers a wait (the condition is checked against changes from now on); `finish`
    /// returns when it is met.
    pub(crate) fn wait_start(&self, req: &pb::WaitRequest) -> Result<Waiter, ContainerError> {
        let cond = wait_condition(&req.condition)?;
        let rx = self.changed.subscribe();
        let last = self.find(&req.id)?;
        Ok(Waiter {
            cond,
            rx,
            exits: last.state.exits,
            last,
        })
    }

    /// docker wait.
    pub(crate) async fn finish(&self, w: Waiter) -> Result<pb::WaitResponse, ContainerError> {
        let Waiter {
            cond,
            mut rx,
            exits,
            mut last,
        } = w;
        loop {
            match self.store.get(&last.id)? {
                None => {
                    return Ok(pb::WaitResponse {
                        status_code: last.state.exit_code,
                        error: String::new(),
                    });
                }
                Some(c) => {
                    let done = match cond {
                        "not-running" => !c.state.running(),
                        "next-exit" => c.state.exits > exits,
                        _ => false,
                    };
                    last = c;
                    if done {
                        return Ok(pb::WaitResponse {
                            status_code: last.state.exit_code,
                            error: last.state.error.clone(),
                        });
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(ContainerError::new(ErrorKind::Unavailable, "shutting down"));
            }
        }
    }

    async fn signal(&self, c: &Container, sig: i32, all: bool) -> Result<(), ContainerError> {
        let address = shim::address(&self.bundle(&c.id)).ok_or_else(|| {
            ContainerError::conflict(format!("container {} is not running", c.id))
        })?;
        let mut client = shim::connect(&address).await?;
        client
            .kill(shimpb::KillRequest {
                exec_id: String::new(),
                signal: sig as u32,
                all,
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?;
        self.event(c, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// docker kill.
    pub(crate) async fn kill(&self, req: &pb::KillRequest) -> Result<(), ContainerError> {
        let c = self.find(&req.id)?;
        let sig = parse_signal(if req.signal.is_empty() {
            "SIGKILL"
        } else {
            &req.signal
        })?;
        if !c.state.running() {
            return Err(ContainerError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        self.signal(&c, sig, false).await
    }

    /// docker stop: the stop signal, then SIGKILL after the timeout.
    pub(crate) async fn stop(&self, req: &pb::StopRequest) -> Result<(), ContainerError> {
        let c = self.find(&req.id)?;
        if !c.state.running() {
            return Err(ContainerError::new(ErrorKind::NotModified, ""));
        }
        let stop_signal = c.stop_signal();
        let sig = parse_signal(if req.signal.is_empty() {
            &stop_signal
        } else {
            &req.signal
        })?;
        let timeout = req
            .timeout
            .or_else(|| c.config["StopTimeout"].as_i64().map(|t| t as i32))
            .unwrap_or(10);
        let deadline = (timeout >= 0).then(|| Instant::now() + Duration::from_secs(timeout as u64));
        self.signal(&c, sig, false).await?;
        if !self.wait_stopped(&c.id, deadline).await? {
            self.signal(&c, 9, true).await?;
            self.wait_stopped(&c.id, None).await?;
        }
        self.event(&c, "stop", &[]);
        Ok(())
    }

    /// docker rename.
    pub(crate) async fn rename(&self, req: &pb::RenameRequest) -> Result<(), ContainerError> {
        let new = crate::names::validate(&req.name)?;
        let _guard = self.lock.lock().await;
        let mut c = self.find(&req.id)?;
        if c.name == new {
            return Err(ContainerError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Some(other) = self.store.all()?.into_iter().find(|o| o.name == new) {
            return Err(crate::names::conflict(&new, &other.id));
        }
        let old = std::mem::replace(&mut c.name, new);
        self.store.put(&c)?;
        self.bump();
        self.event(&c, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// docker rm.
    pub(crate) async fn remove(&self, req: &pb::RemoveRequest) -> Result<(), ContainerError> {
        let c = self.find(&req.id)?;
        if c.state.running() {
            if !req.force {
                return Err(ContainerError::conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.signal(&c, 9, true).await?;
            self.wait_stopped(&c.id, None).await?;
        }
        let _guard = self.lock.lock().await;
        let bundle = self.bundle(&c.id);
        delete_shim(&bundle).await;
        let _ = std::fs::remove_dir_all(&bundle);
        let _ = std::fs::remove_dir_all(self.data_dir.join(&c.id));
        if let Err(e) = self
            .images_client()
            .remove_snapshot(images::SnapshotKey { key: c.id.clone() })
            .await
            && e.code() != tonic::Code::NotFound
        {
            return Err(ContainerError::upstream(&e));
        }
        self.store.delete(&c.id)?;
        self.bump();
        self.event(&c, "destroy", &[]);
        Ok(())
    }
}

fn wait_condition(c: &str) -> Result<&'static str, ContainerError> {
    match c {
        "" | "not-running" => Ok("not-running"),
        "next-exit" => Ok("next-exit"),
        "removed" => Ok("removed"),
        other => Err(ContainerError::invalid(format!(
            "invalid condition: {other:?}"
        ))),
    }
}

/// A registered `docker wait`.
pub(crate) struct Waiter {
    cond: &'static str,
    rx: watch::Receiver<u64>,
    exits: u64,
    last: Container,
}

/// Subscribes `a` to the shim's output of the main process and relays it in the background.
async fn subscribe(client: &mut shimpb::shim_client::ShimClient<Channel>, a: Attacher) {
    let mut stream = match client
        .attach(shimpb::AttachRequest {
            exec_id: String::new(),
        })
        .await
    {
        Ok(s) => s.into_inner(),
        Err(e) => {
            let _ = a.tx.send(Err(e)).await;
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    let n = match shimpb::Stream::try_from(chunk.stream) {
                        Ok(shimpb::Stream::Stderr) if a.stderr => 2,
                        Ok(shimpb::Stream::Stdout) if a.stdout => 1,
                        _ => continue,
                    };
                    let frame = pb::AttachFrame {
                        stream: n,
                        data: chunk.data,
                    };
                    if a.tx.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = a.tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
}

/// Asks the bundle's shim (if one is there) to clean up and exit.
async fn delete_shim(bundle: &std::path::Path) {
    if let Some(address) = shim::address(bundle)
        && let Ok(mut client) = shim::connect(&address).await
        && let Err(e) = client.delete(shimpb::DeleteRequest {}).await
    {
        tracing::warn!(error = %e, bundle = %bundle.display(), "shim delete");
    }
    let _ = std::fs::remove_file(bundle.join("address"));
}

/// `SIGTERM`, `TERM`, `15`.
pub(crate) fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    } else {
        let up = s.to_uppercase();
        let name = if up.starts_with("SIG") {
            up
        } else {
            format!("SIG{up}")
        };
        if let Ok(sig) = name.parse::<nix::sys::signal::Signal>() {
            return Ok(sig as i32);
        }
    }
    Err(ContainerError::invalid(format!("Invalid signal: {s}")))
}

/// Numeric `uid[:gid]`, or `root`.
fn parse_user(user: &str) -> Result<(u32, u32), ContainerError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let num = |s: &str| -> Result<u32, ContainerError> {
        match s {
            "" | "root" => Ok(0),
            s => s.parse().map_err(|_| {
                ContainerError::invalid(format!(
                    "unable to find user {s}: only numeric users are supported yet"
                ))
            }),
        }
    };
    let uid = num(u)?;
    let gid = if g.is_empty() { uid } else { num(g)? };
    Ok((uid, gid))
}

/// The filters of GET /containers/json that Berth applies: status, name, id, label.
struct Filters(std::collections::BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(text: &str) -> Result<Filters, ContainerError> {
        let mut out = std::collections::BTreeMap::new();
        if text.trim().is_empty() {
            return Ok(Filters(out));
        }
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ContainerError::invalid(format!("invalid filter: {e}")))?;
        for (k, vals) in v.as_object().into_iter().flatten() {
            let list: Vec<String> = match vals {
                Value::Object(m) => m.keys().cloned().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn matches(&self, c: &Container) -> bool {
        self.0.iter().all(|(k, vals)| {
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "status" => c.state.status.as_str() == v,
                    "name" => c.short_name().contains(v.trim_start_matches('/')),
                    "id" => c.id.starts_with(v.as_str()),
                    "label" => {
                        let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                        match c.config["Labels"][lk].as_str() {
                            Some(val) => lv.is_empty() && !v.contains('=') || val == lv,
                            None => false,
                        }
                    }
                    _ => true,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("HUP").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn users() {
        assert_eq!(parse_user("").unwrap(), (0, 0));
        assert_eq!(parse_user("1000").unwrap(), (1000, 1000));
        assert_eq!(parse_user("1:2").unwrap(), (1, 2));
        assert!(parse_user("nobody").is_err());
    }
}
