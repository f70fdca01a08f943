//! Starting a container: the bundle, `berth-shim start`, the queued attaches, the release.

use std::{sync::Arc, time::Duration};

use berth_errors::HasKind;
use berth_shim_proto::v1 as shimpb;
use berth_types::ErrorKind;

use crate::{
    attach::subscribe,
    container::{Status, now_nanos},
    container_error::ContainerError,
    lifecycle::{Containers, delete_shim},
    shim,
    user::process_user,
};

impl Containers {
    /// Starts a created or stopped container. A container that fails to start is removed
    /// when it has AutoRemove (`docker run --rm`), as the CLI's wait for removal expects.
    pub(crate) async fn start(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
        self.start_as(name, false).await
    }

    /// A start by a user (which puts the container back under its restart policy) or by the
    /// policy (which a user's stop since then cancels).
    async fn start_as(self: &Arc<Self>, name: &str, by_policy: bool) -> Result<(), ContainerError> {
        // No filesystem view of the stopped container has its snapshot mounted meanwhile.
        let found = self.find(name).ok().map(|c| c.id);
        let fs_guard = match &found {
            Some(id) => Some(self.fs_lock(id).write_owned().await),
            None => None,
        };
        let r = self.start_locked(name, by_policy).await;
        drop(fs_guard);
        if let Err(e) = &r
            && e.kind() != ErrorKind::NotModified
            && let Some(id) = &found
        {
            self.after_failed_start(id, e).await;
        }
        r
    }

    /// A start by the restart policy; a failure leaves the container exited, with its error.
    pub(crate) async fn start_by_policy(self: &Arc<Self>, id: &str) -> Result<(), ContainerError> {
        let r = self.start_as(id, true).await;
        if r.is_err() {
            let _guard = self.lock.lock().await;
            if let Some(mut c) = self.store.get(id)?
                && c.state.status == Status::Restarting
            {
                c.state.status = Status::Exited;
                self.store.put(&c)?;
                self.bump(&c.id);
            }
        }
        r
    }

    async fn start_locked(
        self: &Arc<Self>,
        name: &str,
        by_policy: bool,
    ) -> Result<(), ContainerError> {
        // Once what its last run held is released (the exit's release would undo this run's).
        let _guard = self.lock_settled(&self.find(name)?.id).await?;
        let mut c = self.find(name)?;
        if c.state.running() {
            return Err(ContainerError::new(ErrorKind::NotModified, ""));
        }
        if by_policy && (c.state.stopped_by_user || c.state.status != Status::Restarting) {
            // Stopped, started or removed by a user while it waited.
            return Ok(());
        }
        let Some(rootfs) = c.rootfs.clone() else {
            return Err(ContainerError::conflict(format!(
                "container {} has no root filesystem",
                c.id
            )));
        };
        crate::propagation::check(&c.mount_points)?;
        self.mount_volumes(&c.id, crate::volume_use::volume_names(&c))
            .await?;
        crate::subpath::check(&c.mount_points)?;
        if c.mount_points.iter().any(crate::read_only::asks_recursion) {
            crate::read_only::probe_once().await;
        }
        let bundle = self.bundle(&c.id);
        delete_shim(&bundle).await;
        // Execs belong to one run of the container.
        self.forget_execs(&c.id);
        let link_env = self.links_env(&c)?;
        let net = self.network_up(&c).await?;
        let p = c.process();
        let user = process_user(&p.user, &p.additional_groups);
        let mut process = berth_bundle::Process::new(
            std::iter::once(c.path.clone())
                .chain(c.args.iter().cloned())
                .collect(),
        );
        process.env = crate::exec::exec_env(&p.env, &[], p.tty);
        process.env.extend(link_env);
        if !p.working_dir.is_empty() {
            process.cwd = p.working_dir.clone();
        }
        process.user = berth_bundle::User {
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
            name: user.name,
            additional_groups: user.additional_groups,
        };
        process.terminal = p.tty;
        process.stdin = p.open_stdin;
        if p.tty
            && let (Ok(height @ 1..), Ok(width @ 1..)) = (
                u16::try_from(p.console_height),
                u16::try_from(p.console_width),
            )
        {
            process.console_size = Some(berth_bundle::ConsoleSize { width, height });
        }
        let rootfs = berth_bundle::Mount {
            kind: rootfs.r#type,
            source: rootfs.source,
            options: rootfs.options,
        };
        let place = crate::cgroup_place::placement(&c, self.cgroups.driver)
            .map_err(ContainerError::invalid)?;
        let mut config =
            berth_bundle::Config::new(c.id.clone(), rootfs, process, place.path.clone());
        config.cgroup_keep_parents = place.keep_parents;
        config.namespaces.cgroup = crate::cgroup_place::private_cgroupns(&c);
        config.hostname = c.spec.hostname.clone();
        config.domainname = c.spec.domainname.clone();
        crate::mounts::into_bundle(&c, &mut config)?;
        config.init = c.spec.init;
        config.namespaces.net = net.netns.clone();
        let sec = c.spec.security.clone().unwrap_or_default();
        config.readonly_rootfs = sec.readonly_rootfs;
        config.capabilities = crate::spec::capabilities(&sec);
        config.no_new_privileges = sec
            .security_opt
            .iter()
            .any(|o| o == "no-new-privileges=true");
        if let Some(m) = sec.masked_paths.clone() {
            config.masked_paths = m.values;
        }
        if let Some(r) = sec.readonly_paths.clone() {
            config.readonly_paths = r.values;
        }
        let res = c.spec.resources.clone().unwrap_or_default();
        config.resources = crate::limits::for_shim(&res);
        // Always written, 0 included, as dockerd sets process.oomScoreAdj.
        config.oom_score_adj = Some(res.oom_score_adj);
        crate::limits::device_io(&res, &mut config.resources)
            .map_err(|e| ContainerError::new(ErrorKind::Internal, e))?;
        let (nodes, rules) = crate::devices::for_container(&sec, &res)?;
        config.devices = nodes;
        config.device_rules = rules;
        if sec.privileged {
            // Every capability the host has, no masked or read-only paths, /sys writable.
            config.capabilities = Some(
                berth_bundle::ALL_CAPABILITIES
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect(),
            );
            config.masked_paths.clear();
            config.readonly_paths.clear();
            config.writable_sysfs = true;
        }
        config.seccomp = self
            .seccomp
            .for_container(&sec, config.capabilities.as_deref())?
            .map(|s| (*s).clone());
        config.sysctls = sec.sysctls.clone().into_iter().collect();
        config.shm_size = c
            .spec
            .resources
            .as_ref()
            .map_or(0, |r| u64::try_from(r.shm_size).unwrap_or(0));
        let ns = c.spec.namespaces.clone().unwrap_or_default();
        config.namespaces.pid = ns.pid != "host";
        config.namespaces.ipc = ns.ipc != "host";
        config.namespaces.uts = ns.uts != "host";
        // -1 is unlimited.
        let lim = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
        config.rlimits = p
            .rlimits
            .iter()
            .map(|r| berth_bundle::Rlimit {
                kind: r.name.clone(),
                soft: lim(r.soft),
                hard: lim(r.hard),
            })
            .collect();
        config.log = crate::spec::log_rotation(&c.spec).map(|(max_size, max_file)| {
            berth_bundle::LogConfig {
                max_size,
                max_file,
                ..berth_bundle::LogConfig::new(self.log_path(&c.id))
            }
        });
        config.stop_signal = c.stop_signal();
        config.socket = Some(self.socket_dir.join(format!("{}.sock", &c.id[..20])));
        // Held before exec until the Start call, so that attachers miss no output (and, with
        // the systemd driver, until its scope is started).
        config.wait_for_start = true;
        let limits = (config.resources.clone(), config.device_rules.clone());
        shim::write_bundle(&bundle, config, net.etc.as_ref())?;
        c.state.cgroup_path = place.path;
        // Taken now: if the start fails they are dropped, which ends their streams.
        let attachers = self
            .pending_attaches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&c.id)
            .unwrap_or_default();
        match shim::start(&bundle).await {
            Err((kind, message)) => {
                let (code, class, text) = crate::oci_error::start_failure(&kind, &message);
                c.state.exit_code = code;
                c.state.error = text.clone();
                self.store.put(&c)?;
                self.bump(&c.id);
                Err(ContainerError::new(class, text))
            }
            Ok(address) => {
                let client = shim::connect(&address).await?;
                for a in attachers {
                    subscribe(&client, "", a).await;
                }
                if let Some(scope) = &place.scope {
                    let placed = match client.state(shimpb::StateRequest {}).await {
                        Ok(st) => {
                            self.start_scope(&c, scope, st.pid, &limits.0, &limits.1)
                                .await
                        }
                        Err(e) => Err(ContainerError::Internal(anyhow::anyhow!("shim state: {e}"))),
                    };
                    if let Err(e) = placed {
                        // The init, held before exec, goes with its cgroup.
                        delete_shim(&bundle).await;
                        self.stop_scope(&c.id).await;
                        return Err(e);
                    }
                }
                let started = client
                    .start(shimpb::StartRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim start: {e}")))?;
                if let Some(err) = started.error {
                    let (code, class, text) =
                        crate::oci_error::start_failure(&err.kind, &err.message);
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        client.wait(shimpb::WaitRequest {}),
                    )
                    .await;
                    delete_shim(&bundle).await;
                    c.state.exit_code = code;
                    c.state.error = text.clone();
                    self.store.put(&c)?;
                    self.bump(&c.id);
                    return Err(ContainerError::new(class, text));
                }
                let st = client
                    .state(shimpb::StateRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim state: {e}")))?;
                crate::failpoint::hit("start-after-shim");
                c.state.status = Status::Running;
                c.state.paused = false;
                if !by_policy {
                    c.state.stopped_by_user = false;
                    c.state.manually_stopped = false;
                }
                c.network = net.state;
                c.state.pid = st.pid;
                c.state.exit_code = 0;
                c.state.error.clear();
                c.state.oom_killed = false;
                c.state.started_at = now_nanos();
                if crate::health::Settings::of(&c.spec).is_some() {
                    c.state.health = Some(crate::health::Health::starting(c.state.health.take()));
                }
                self.store
                    .put_with(&c, &self.container_event(&c, "start", &[]))?;
                self.bump(&c.id);
                self.refresh_link_parents(&c);
                self.volume_events(&c, "mount");
                self.watch_exit(c.id.clone());
                self.monitor_health(&c);
                Ok(())
            }
        }
    }
}
