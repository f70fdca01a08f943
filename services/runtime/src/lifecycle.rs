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
use berth_errors::HasKind;
use berth_proto::{images::v1 as images, runtime::v1 as pb};
use berth_service::Channel;
use berth_shim_proto::{ShimClient, v1 as shimpb};
use berth_types::{Actor, ErrorKind, Event, EventType};

use crate::{
    attach::Attacher,
    container::Container,
    container_error::ContainerError,
    failpoint, shim,
    store::{Prefix, Store},
};

/// The containers and what they need: the store, the images service, the bus.
pub(crate) struct Containers {
    pub(crate) store: Arc<Store>,
    pub(crate) images: Channel,
    /// The network service (Attach and Detach around a container's run).
    pub(crate) network: Channel,
    /// The volumes service (Acquire at create, Release at remove).
    pub(crate) volumes: Channel,
    /// `<exec-root>/netns`: the containers' network namespaces.
    pub(crate) netns_dir: PathBuf,
    pub(crate) events: EventPublisher,
    /// `<data-root>/runtime/containers`: the logs.
    pub(crate) data_dir: PathBuf,
    /// `<exec-root>/runtime/containers`: the bundles.
    pub(crate) run_dir: PathBuf,
    /// `<exec-root>/s`: the shims' sockets (short paths).
    pub(crate) socket_dir: PathBuf,
    /// The daemon's log driver and its options (a container's by default).
    pub(crate) log_driver: String,
    pub(crate) log_opts: HashMap<String, String>,
    /// Serializes changes to records.
    pub(crate) lock: tokio::sync::Mutex<()>,
    /// Bumped after every change, to wake waiters ([`crate::changes`]).
    pub(crate) changed: crate::changes::Changes,
    /// Attaches to containers not started yet, by container ID: subscribed to the shim
    /// when it is started, before the process is released.
    pub(crate) pending_attaches: std::sync::Mutex<HashMap<String, Vec<Attacher>>>,
    /// The execs, by exec ID.
    pub(crate) execs: std::sync::Mutex<HashMap<String, crate::exec::ExecRecord>>,
    /// The restart policy's last delay and when it was set, by container.
    pub(crate) restart_delays:
        std::sync::Mutex<HashMap<String, (std::time::Duration, std::time::Instant)>>,
    /// What the host's cgroups offer, and its CPUs, for the limits' checks.
    pub(crate) cgroups: berth_cgroup::CgroupInfo,
    pub(crate) cpus: u32,
    /// Containers being created: their snapshot may exist before their record.
    pub(crate) creating: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Containers whose record is gone and whose files are being removed: a wait for their
    /// removal ends once this is done.
    pub(crate) removing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The last state of recently removed containers, for waits that learn of the removal
    /// after the record is gone (`docker run --rm` waits for `removed`); the newest
    /// `REMOVED_KEPT`.
    pub(crate) removed:
        std::sync::Mutex<std::collections::VecDeque<(String, crate::container::State)>>,
    /// A prune is under way (dockerd runs one at a time).
    pub(crate) pruning: std::sync::atomic::AtomicBool,
    /// Per container: filesystem views of a stopped container (which mount its snapshot
    /// read-write) hold it shared, a start holds it exclusively, so the snapshot is never
    /// mounted read-write twice.
    pub(crate) fs_locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    /// Compiled seccomp filters.
    pub(crate) seccomp: crate::seccomp::SeccompCache,
    /// Per container: serializes freezing and thawing its cgroup (`pause.rs`).
    pub(crate) freeze_locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Containers whose exit is recorded and whose leftovers are being released outside
    /// the records' lock (`settle.rs`).
    pub(crate) settling: std::sync::Mutex<HashMap<String, crate::settle::Settling>>,
    /// With the systemd cgroup driver: the connection to systemd (`systemd_scope.rs`).
    pub(crate) systemd: Option<crate::systemd_scope::SystemdDriver>,
    /// The streamed stats' collector (`stats/collector.rs`).
    pub(crate) stats_collector: crate::stats::Collector,
}

/// SIGKILL's number.
const SIGKILL: i32 = 9;

/// How long a killed container has to show its exit, and how long more after every process
/// of its cgroup was killed (dockerd: 10 s, then 2 s).
const KILL_WAIT: Duration = Duration::from_secs(10);
const KILL_AGAIN_WAIT: Duration = Duration::from_secs(2);

/// How many removed containers' last states are kept for waits.
const REMOVED_KEPT: usize = 256;

impl Containers {
    pub(crate) fn new(
        store: Arc<Store>,
        images: Channel,
        network: Channel,
        volumes: Channel,
        events: EventPublisher,
        cfg: &berth_config::DaemonConfig,
        data_dir: PathBuf,
    ) -> Containers {
        Containers {
            store,
            images,
            network,
            volumes,
            netns_dir: cfg.exec_root.join("netns"),
            events,
            data_dir: data_dir.join("containers"),
            run_dir: cfg.exec_root.join("runtime").join("containers"),
            socket_dir: cfg.exec_root.join("s"),
            log_driver: cfg.log_driver.clone(),
            log_opts: cfg
                .log_opts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            lock: tokio::sync::Mutex::new(()),
            changed: Default::default(),
            pending_attaches: std::sync::Mutex::new(HashMap::new()),
            execs: std::sync::Mutex::new(HashMap::new()),
            restart_delays: std::sync::Mutex::new(HashMap::new()),
            cgroups: berth_cgroup::CgroupInfo::detect_host(),
            cpus: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
            creating: std::sync::Mutex::new(std::collections::HashSet::new()),
            removing: std::sync::Mutex::new(std::collections::HashSet::new()),
            removed: std::sync::Mutex::new(std::collections::VecDeque::new()),
            pruning: std::sync::atomic::AtomicBool::new(false),
            fs_locks: std::sync::Mutex::new(HashMap::new()),
            seccomp: crate::seccomp::SeccompCache::new(cfg.seccomp_profile.clone()),
            freeze_locks: std::sync::Mutex::new(HashMap::new()),
            settling: std::sync::Mutex::new(HashMap::new()),
            systemd: None,
            stats_collector: crate::stats::Collector::default(),
        }
    }

    /// With the systemd cgroup driver: runs are placed in systemd scopes through `driver`.
    pub(crate) fn with_systemd(
        mut self,
        driver: Option<crate::systemd_scope::SystemdDriver>,
    ) -> Self {
        if driver.is_some() {
            self.cgroups.driver = berth_cgroup::CgroupDriver::Systemd;
        }
        self.systemd = driver;
        self
    }

    /// The container's filesystem lock (see `fs_locks`).
    pub(crate) fn fs_lock(&self, id: &str) -> Arc<tokio::sync::RwLock<()>> {
        self.fs_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
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

    /// Wakes the waiters on container `id` (the others look and go back to sleep).
    pub(crate) fn bump(&self, id: &str) {
        self.changed.bump_for(id);
    }

    /// Publishes a container event with the name and image attributes (one that reports no
    /// stored change: those are written with the change, from [`Containers::container_event`]).
    pub(crate) fn event(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        for ev in self.container_event(c, action, extra) {
            self.events.publish(&ev);
        }
    }

    /// A container event with the name and image attributes (none if `action` is malformed).
    pub(crate) fn container_event(
        &self,
        c: &Container,
        action: &str,
        extra: &[(&str, String)],
    ) -> Vec<Event> {
        let mut actor = Actor {
            id: c.id.clone(),
            ..Actor::default()
        };
        actor
            .attributes
            .insert("name".to_owned(), c.short_name().to_owned());
        actor
            .attributes
            .insert("image".to_owned(), c.image().to_owned());
        for (k, v) in &c.spec.labels {
            actor.attributes.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            actor.attributes.insert((*k).to_owned(), v.clone());
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        match action.parse() {
            Ok(a) => vec![Event::new(EventType::Container, a, actor, now)],
            Err(e) => {
                tracing::error!(error = %e, "bad event action");
                Vec::new()
            }
        }
    }

    /// Full ID, exact name, or unique ID prefix.
    pub(crate) fn find(&self, name: &str) -> Result<Container, ContainerError> {
        if let Some(c) = self.store.get(name)? {
            return Ok(c);
        }
        let bare = name.strip_prefix('/').unwrap_or(name);
        if let Some(id) = self.store.id_by_name(bare)?
            && let Some(c) = self.store.get(&id)?
        {
            return Ok(c);
        }
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            match self.store.by_prefix(name)? {
                Prefix::One(id) => {
                    if let Some(c) = self.store.get(&id)? {
                        return Ok(c);
                    }
                }
                Prefix::Many => {
                    return Err(ContainerError::invalid(format!(
                        "multiple IDs found with provided prefix: {name}"
                    )));
                }
                Prefix::None => {}
            }
        }
        Err(ContainerError::not_found(format!(
            "No such container: {name}"
        )))
    }

    pub(crate) fn inspect(&self, name: &str) -> Result<pb::ContainerInfo, ContainerError> {
        let c = self.find(name)?;
        Ok(self.info(&c, None))
    }

    /// What inspect and list answer for a container.
    pub(crate) fn info(
        &self,
        c: &Container,
        sizes: Option<crate::container::Sizes>,
    ) -> pb::ContainerInfo {
        let etc = |f: &str| self.bundle(&c.id).join("etc").join(f).display().to_string();
        pb::ContainerInfo {
            container: Some(c.to_proto()),
            log_path: if crate::spec::log_rotation(&c.spec).is_some() {
                self.log_path(&c.id).display().to_string()
            } else {
                String::new()
            },
            resolv_conf_path: etc("resolv.conf"),
            hostname_path: etc("hostname"),
            hosts_path: etc("hosts"),
            exec_ids: self.running_execs(c),
            size_rw: sizes.map(|s| s.rw),
            size_root_fs: sizes.map(|s| s.root_fs),
        }
    }

    /// A client on the shim of a running container.
    pub(crate) async fn running_shim(&self, c: &Container) -> Result<ShimClient, ContainerError> {
        let address = shim::address(&self.bundle(&c.id))
            .filter(|_| c.state.running())
            .ok_or_else(|| {
                ContainerError::conflict(format!("container {} is not running", c.id))
            })?;
        shim::connect(&address).await
    }

    async fn signal(&self, c: &Container, sig: i32, all: bool) -> Result<(), ContainerError> {
        let client = self.running_shim(c).await?;
        client
            .kill(shimpb::KillRequest {
                exec_id: String::new(),
                signal: sig as u32,
                all,
            })
            .await
            .map_err(|e| ContainerError::shim(&e))?;
        self.event(c, "kill", &[("signal", sig.to_string())]);
        // A paused container gets the signal that ends it once thawed, as dockerd resumes it
        // after signalling (daemon/kill.go); other signals wait for unpause.
        if sig == SIGKILL || parse_signal(&c.stop_signal()).ok() == Some(sig) {
            self.thaw_for_exit(&c.id).await?;
        }
        Ok(())
    }

    /// docker kill. With SIGKILL it returns once the exit is recorded, as dockerd's `Kill`
    /// does (daemon/kill.go): an inspect or an rm right after sees the container stopped.
    /// Other signals return once sent.
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
        // Marked before the signal, so that the exit it causes finds the mark: a kill is a
        // manual stop, and cancels the restart policy when dockerd's would.
        let cancel = crate::restart::kill_cancels_restart(&c.spec.stop_signal, sig);
        self.mark_signalled_by_user(&c.id, cancel).await?;
        self.signal(&c, sig, false).await?;
        if sig != SIGKILL {
            return Ok(());
        }
        self.wait_killed(&c).await
    }

    /// After a SIGKILL: waits for the exit (`KILL_WAIT`); if none comes, kills every process
    /// of the container's cgroup and waits `KILL_AGAIN_WAIT` more, then gives up with
    /// dockerd's error.
    async fn wait_killed(&self, c: &Container) -> Result<(), ContainerError> {
        if self
            .wait_stopped(&c.id, Some(Instant::now() + KILL_WAIT))
            .await?
        {
            return Ok(());
        }
        tracing::warn!(
            id = c.id,
            "the container did not exit within {KILL_WAIT:?} of SIGKILL; killing all its processes"
        );
        if let Err(e) = self.signal(c, SIGKILL, true).await {
            // It may have stopped in the meantime.
            if self.wait_stopped(&c.id, Some(Instant::now())).await? {
                return Ok(());
            }
            return Err(e);
        }
        if self
            .wait_stopped(&c.id, Some(Instant::now() + KILL_AGAIN_WAIT))
            .await?
        {
            return Ok(());
        }
        Err(ContainerError::Internal(anyhow::anyhow!(
            "tried to kill container, but did not receive an exit event"
        )))
    }

    /// docker stop, first half: checks, then sends the stop signal. `stop_finish` waits.
    pub(crate) async fn stop_begin(
        &self,
        req: &pb::StopRequest,
    ) -> Result<Stopping, ContainerError> {
        use crate::container::Status;
        let c = self.find(&req.id)?;
        // Running, waiting to be restarted by its policy, or just exited with its policy about
        // to restart it: the user's stop is marked first, so that no restart by the policy
        // (due, or under way) undoes it; then the container is looked at again.
        let restartable = c.state.running()
            || c.state.status == Status::Restarting
            || (c.state.status == Status::Exited && crate::restart::should_restart(&c));
        if !restartable {
            return Err(ContainerError::new(ErrorKind::NotModified, ""));
        }
        let was_waiting = self.mark_stopped_by_user(&c.id).await?;
        let c = self.find(&c.id)?;
        if !c.state.running() {
            // A container waiting to be restarted is stopped for good.
            if was_waiting {
                self.event(&c, "stop", &[]);
            }
            return Err(ContainerError::new(ErrorKind::NotModified, ""));
        }
        let stop_signal = c.stop_signal();
        let sig = parse_signal(if req.signal.is_empty() {
            &stop_signal
        } else {
            &req.signal
        })?;
        let timeout = req.timeout.or_else(|| c.stop_timeout()).unwrap_or(10);
        let deadline = (timeout >= 0).then(|| Instant::now() + Duration::from_secs(timeout as u64));
        self.signal(&c, sig, false).await?;
        Ok(Stopping { c, deadline })
    }

    /// docker stop, second half: SIGKILL after the timeout, then the `stop` event.
    pub(crate) async fn stop_finish(&self, s: Stopping) -> Result<(), ContainerError> {
        let Stopping { c, deadline } = s;
        if !self.wait_stopped(&c.id, deadline).await? {
            self.signal(&c, SIGKILL, true).await?;
            self.wait_stopped(&c.id, None).await?;
        }
        self.event(&c, "stop", &[]);
        Ok(())
    }

    /// docker restart: stop when running, start, then the `restart` event.
    pub(crate) async fn restart(
        self: &Arc<Self>,
        req: &pb::StopRequest,
    ) -> Result<(), ContainerError> {
        match self.stop_begin(req).await {
            Ok(stopping) => self.stop_finish(stopping).await?,
            Err(e) if e.kind() == ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        self.start(&req.id).await?;
        let c = self.find(&req.id)?;
        self.event(&c, "restart", &[]);
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
        let old = std::mem::replace(&mut c.name, new);
        let renamed = self.container_event(&c, "rename", &[("oldName", old.clone())]);
        if let Err(other) = self
            .store
            .rename(&c, old.trim_start_matches('/'), &renamed)?
        {
            return Err(crate::names::conflict(&c.name, &other));
        }
        if c.network.is_some() {
            self.network_rename(&mut c, old.trim_start_matches('/'))
                .await;
            self.store.put(&c)?;
        }
        self.bump(&c.id);
        Ok(())
    }

    /// docker rm.
    pub(crate) async fn remove(&self, req: &pb::RemoveRequest) -> Result<(), ContainerError> {
        let c = self.find(&req.id)?;
        if c.state.running() {
            if !req.force && c.state.paused {
                return Err(ContainerError::conflict(format!(
                    "cannot remove container \"{}\": container is paused and must be unpaused first",
                    c.name
                )));
            }
            if !req.force {
                return Err(ContainerError::conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.signal(&c, SIGKILL, true).await?;
            self.wait_stopped(&c.id, None).await?;
        }
        // The record goes first, with its name, in one transaction: that is the removal.
        // What the container leaves (shim files, logs, snapshot) goes after; if the runtime
        // dies before that, the next start collects it.
        {
            // Once what its last run held is released.
            let _guard = self.lock_settled(&c.id).await?;
            let now = self.find(&c.id)?;
            if now.state.running() {
                return Err(ContainerError::conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    now.name
                )));
            }
            self.removing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(now.id.clone());
            self.store
                .delete(&now, &self.container_event(&now, "destroy", &[]))?;
            let mut removed = self
                .removed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if removed.len() >= REMOVED_KEPT {
                removed.pop_front();
            }
            removed.push_back((now.id.clone(), now.state.clone()));
        }
        failpoint::hit("remove-after-record");
        self.forget_execs(&c.id);
        self.pending_attaches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&c.id);
        self.release_files(&c.id).await;
        self.stop_scope(&c.id).await;
        {
            // Once no filesystem view has the snapshot mounted.
            let fs = self.fs_lock(&c.id);
            let _views_done = fs.write().await;
            self.remove_snapshot(&c.id).await;
            self.fs_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&c.id);
        }
        self.forget_freezer(&c.id);
        self.release_volumes(&c.id, req.volumes).await;
        self.removing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&c.id);
        self.bump(&c.id);
        Ok(())
    }

    /// Whether the files of a container whose record is gone are still being removed.
    pub(crate) fn still_removing(&self, id: &str) -> bool {
        self.removing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(id)
    }

    /// The last state of a container removed lately.
    pub(crate) fn removed_state(&self, id: &str) -> Option<crate::container::State> {
        self.removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .find(|(r, _)| r == id)
            .map(|(_, s)| s.clone())
    }

    /// The bundle (after its shim cleaned up) and the logs of a container that is gone.
    async fn release_files(&self, id: &str) {
        let bundle = self.bundle(id);
        delete_shim(&bundle).await;
        self.network_down(id).await;
        let _ = std::fs::remove_dir_all(&bundle);
        let _ = std::fs::remove_dir_all(self.data_dir.join(id));
    }

    /// Removes what containers that are not recorded left behind: snapshots (of a create that
    /// died before its record, of a remove that died after it), bundles and logs. Runs at
    /// start, in the background, until the images service has answered.
    pub(crate) async fn collect_garbage(&self) {
        let recorded: std::collections::HashSet<String> = match self.store.all() {
            Ok(all) => all.into_iter().map(|c| c.id).collect(),
            Err(e) => {
                tracing::error!(error = %e, "garbage collection: reading the store");
                return;
            }
        };
        let orphan = |id: &str| {
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !recorded.contains(id)
        };
        for dir in [&self.run_dir, &self.data_dir] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if orphan(&name) && self.store.get(&name).ok().flatten().is_none() {
                    tracing::info!(id = name, "removing what a removed container left");
                    self.release_files(&name).await;
                }
            }
        }
        let mut delay = Duration::from_millis(100);
        let snapshots = loop {
            match self
                .images_client()
                .snapshots(images::SnapshotsRequest {})
                .await
            {
                Ok(r) => break r.into_inner().snapshots,
                Err(e) if delay < Duration::from_secs(30) => {
                    tracing::debug!(error = %e, "garbage collection: images not ready");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "garbage collection: no snapshot list");
                    return;
                }
            }
        };
        for s in snapshots {
            // A create under way has its snapshot before its record, and leaves `creating`
            // only once recorded: checked in this order, neither is taken for garbage.
            let creating = self
                .creating
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&s.key);
            if !creating && orphan(&s.key) && self.store.get(&s.key).ok().flatten().is_none() {
                tracing::info!(
                    key = s.key,
                    "removing the snapshot of an unrecorded container"
                );
                self.remove_snapshot(&s.key).await;
            }
        }
    }
}

/// A stop under way: the container and when to SIGKILL it.
pub(crate) struct Stopping {
    c: Container,
    deadline: Option<Instant>,
}

/// Asks the bundle's shim (if one is there) to clean up and exit. Callers hold a record
/// that is not running, so a process the shim still runs is a run that was never recorded
/// (the runtime died between the shim's start and the record): it is killed first, or the
/// shim would refuse and outlive its bundle.
pub(crate) async fn delete_shim(bundle: &std::path::Path) {
    if let Some(address) = shim::address(bundle)
        && let Ok(client) = shim::connect(&address).await
    {
        let mut r = client.delete(shimpb::DeleteRequest {}).await;
        if matches!(&r, Err(e) if e.code() == berth_shim_proto::Code::FailedPrecondition) {
            tracing::warn!(bundle = %bundle.display(), "killing a run that was never recorded");
            let kill = shimpb::KillRequest {
                exec_id: String::new(),
                signal: SIGKILL as u32,
                all: true,
            };
            if let Err(e) = client.kill(kill).await {
                tracing::warn!(error = %e, bundle = %bundle.display(), "shim kill");
            }
            let waited = tokio::time::timeout(KILL_WAIT, client.wait(shimpb::WaitRequest {})).await;
            if !matches!(waited, Ok(Ok(_))) {
                tracing::warn!(bundle = %bundle.display(), "the killed run did not exit");
            }
            r = client.delete(shimpb::DeleteRequest {}).await;
        }
        if let Err(e) = r {
            tracing::warn!(error = %e, bundle = %bundle.display(), "shim delete");
        }
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
}
