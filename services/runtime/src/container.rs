//! The container record: its effective spec, its root filesystem and its state. The store
//! keeps it as the `berth.runtime.v1.Container` message; the front end renders it.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_proto::runtime::v1 as pb;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Container {
    pub(crate) id: String,
    /// With the leading slash.
    pub(crate) name: String,
    /// Nanoseconds since the epoch.
    pub(crate) created: i64,
    /// The spec with the image's defaults merged in.
    pub(crate) spec: pb::ContainerSpec,
    pub(crate) path: String,
    pub(crate) args: Vec<String>,
    pub(crate) image_id: String,
    /// The root filesystem mount from images.Prepare; None until it is prepared.
    pub(crate) rootfs: Option<pb::RootfsMount>,
    pub(crate) state: State,
    pub(crate) restart_count: u64,
    /// The netns and endpoints while it runs on a network.
    pub(crate) network: Option<pb::NetworkState>,
    /// The mounts as resolved at create.
    pub(crate) mount_points: Vec<pb::MountPoint>,
}

pub(crate) type Status = pb::container_state::Status;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) status: Status,
    pub(crate) pid: u32,
    pub(crate) exit_code: i64,
    pub(crate) error: String,
    /// Nanoseconds since the epoch; 0: never.
    pub(crate) started_at: i64,
    pub(crate) finished_at: i64,
    pub(crate) oom_killed: bool,
    /// How many exits have been recorded (for `wait --condition next-exit`).
    pub(crate) exits: u64,
    /// Stopped or killed by a user: not restarted by the restart policy until started again.
    pub(crate) stopped_by_user: bool,
    /// Signalled by a user's kill or stop: not restarted by `unless-stopped` until started
    /// again (dockerd's HasBeenManuallyStopped; `stopped_by_user` is its restart manager's
    /// cancel).
    pub(crate) manually_stopped: bool,
    /// Set once a container with a health check has started.
    pub(crate) health: Option<crate::health::Health>,
    /// Running with its cgroup frozen (docker pause); the status stays Running, as dockerd
    /// keeps Running and Paused both true. The record's message says STATUS_PAUSED.
    pub(crate) paused: bool,
    /// The cgroup of the last run below the hierarchies' roots (as the driver placed it at
    /// start); empty in records from before it was kept.
    pub(crate) cgroup_path: String,
}

/// A container's disk usage: the bytes in its writable layer, and those plus its image's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub(crate) rw: i64,
    pub(crate) root_fs: i64,
}

impl State {
    pub(crate) fn running(&self) -> bool {
        self.status == Status::Running
    }

    /// The status as clients see it: Paused for a paused running container.
    pub(crate) fn shown(&self) -> Status {
        if self.paused && self.running() {
            Status::Paused
        } else {
            self.status
        }
    }
}

/// Now, in nanoseconds since the epoch.
pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Nanoseconds since the epoch of an RFC 3339 time; None for the zero time or garbage.
pub(crate) fn parse_nanos(t: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos())
        .ok()
        .filter(|n| *n > 0)
}

impl Container {
    pub(crate) fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    /// The image as the user named it.
    pub(crate) fn image(&self) -> &str {
        &self.spec.image
    }

    pub(crate) fn process(&self) -> pb::Process {
        self.spec.process.clone().unwrap_or_default()
    }

    pub(crate) fn auto_remove(&self) -> bool {
        self.spec.auto_remove
    }

    pub(crate) fn stop_signal(&self) -> String {
        match self.spec.stop_signal.as_str() {
            "" => "SIGTERM".to_owned(),
            s => s.to_owned(),
        }
    }

    pub(crate) fn stop_timeout(&self) -> Option<i32> {
        self.spec.stop_timeout
    }

    /// "bridge", "none", "host", ...
    pub(crate) fn network_mode(&self) -> &str {
        self.spec.network.as_ref().map_or("", |n| n.mode.as_str())
    }

    /// The record as the store and the API carry it.
    pub(crate) fn to_proto(&self) -> pb::Container {
        self.proto_with_spec(self.spec.clone(), self.rootfs.clone())
    }

    /// The record as `docker ps` needs it: of the spec only the image, the labels and the
    /// network; no root filesystem, no health probe log. A list of a thousand copies no more
    /// than it shows.
    pub(crate) fn summary_proto(&self) -> pb::Container {
        // No root filesystem: its layer paths are the longest part of a record.
        let mut p = self.proto_with_spec(
            pb::ContainerSpec {
                image: self.spec.image.clone(),
                labels: self.spec.labels.clone(),
                network: self.spec.network.clone(),
                ..Default::default()
            },
            None,
        );
        // The probes' log stays with inspect too.
        if let Some(h) = p.state.as_mut().and_then(|s| s.health.as_mut()) {
            h.log.clear();
        }
        p
    }

    fn proto_with_spec(
        &self,
        spec: pb::ContainerSpec,
        rootfs: Option<pb::RootfsMount>,
    ) -> pb::Container {
        let s = &self.state;
        pb::Container {
            id: self.id.clone(),
            name: self.short_name().to_owned(),
            created: self.created,
            spec: Some(spec),
            image_id: self.image_id.clone(),
            path: self.path.clone(),
            args: self.args.clone(),
            rootfs,
            state: Some(pb::ContainerState {
                status: s.shown() as i32,
                pid: s.pid,
                exit_code: s.exit_code,
                error: s.error.clone(),
                started_at: s.started_at,
                finished_at: s.finished_at,
                oom_killed: s.oom_killed,
                exits: s.exits,
                stopped_by_user: s.stopped_by_user,
                manually_stopped: s.manually_stopped,
                health: s.health.as_ref().map(crate::health::Health::to_proto),
                cgroup_path: s.cgroup_path.clone(),
            }),
            restart_count: self.restart_count,
            network: self.network.clone(),
            mount_points: self.mount_points.clone(),
        }
    }

    pub(crate) fn from_proto(p: pb::Container) -> Container {
        let s = p.state.unwrap_or_default();
        let status = Status::try_from(s.status).unwrap_or(Status::Exited);
        let paused = status == Status::Paused;
        Container {
            name: format!("/{}", p.name),
            id: p.id,
            created: p.created,
            spec: p.spec.unwrap_or_default(),
            path: p.path,
            args: p.args,
            image_id: p.image_id,
            rootfs: p.rootfs,
            state: State {
                status: if paused { Status::Running } else { status },
                pid: s.pid,
                exit_code: s.exit_code,
                error: s.error,
                started_at: s.started_at,
                finished_at: s.finished_at,
                oom_killed: s.oom_killed,
                exits: s.exits,
                stopped_by_user: s.stopped_by_user,
                manually_stopped: s.manually_stopped,
                health: s.health.map(crate::health::Health::from_proto),
                paused,
                cgroup_path: s.cgroup_path,
            },
            restart_count: p.restart_count,
            network: p.network,
            mount_points: p.mount_points,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A container as tests need one.
    pub(crate) fn sample(id: char, name: &str) -> Container {
        Container {
            id: id.to_string().repeat(64),
            name: format!("/{name}"),
            created: now_nanos(),
            spec: pb::ContainerSpec {
                image: "busybox".to_owned(),
                ..Default::default()
            },
            path: "sh".to_owned(),
            args: vec!["-c".to_owned(), "echo hi".to_owned()],
            image_id: "sha256:1234".to_owned(),
            rootfs: None,
            state: State::default(),
            restart_count: 0,
            network: None,
            mount_points: Vec::new(),
        }
    }

    #[test]
    fn the_record_round_trips_through_its_message() {
        let mut c = sample('a', "web");
        c.state.status = Status::Running;
        c.state.pid = 42;
        c.spec.labels.insert("k".to_owned(), "v".to_owned());
        let mut health = crate::health::Health::starting(None);
        health.failing_streak = 2;
        health.log.push(crate::health::Probe {
            start: 1,
            end: 2,
            exit_code: 1,
            output: "no".to_owned(),
        });
        c.state.health = Some(health);
        let back = Container::from_proto(c.to_proto());
        assert_eq!(back, c);
        assert_eq!(c.to_proto().name, "web");
        // Paused: STATUS_PAUSED on the wire and in the store, running with the flag inside.
        c.state.paused = true;
        let p = c.to_proto();
        assert_eq!(p.state.as_ref().unwrap().status, Status::Paused as i32);
        let back = Container::from_proto(p);
        assert!(back.state.running() && back.state.paused);
    }

    #[test]
    fn times_parse() {
        assert!(parse_nanos("2026-01-01T00:00:00.5Z").unwrap() > 0);
        assert_eq!(parse_nanos("0001-01-01T00:00:00Z"), None);
        assert!(now_nanos() > 0);
    }
}
