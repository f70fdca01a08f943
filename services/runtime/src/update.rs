//! docker update: new limits and restart policy for a container, checked as dockerd checks
//! them (verifyPlatformContainerResources on the changes, then Container.UpdateContainer's
//! rules against what is set), kept in its record (inspect shows them; the next start applies
//! them) and, while it runs, written into its cgroup.

use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;

use crate::{container_error::ContainerError, lifecycle::Containers, limits};

impl Containers {
    pub(crate) async fn update(
        &self,
        req: &pb::UpdateRequest,
    ) -> Result<pb::UpdateResponse, ContainerError> {
        let mut changes = req.resources.clone().unwrap_or_default();
        if changes != updatable(&changes) {
            return Err(ContainerError::invalid(
                "resources: only memory, memory_swap, memory_reservation, nano_cpus, \
                 cpu_shares, cpu_period, cpu_quota, cpuset_cpus, cpuset_mems, pids_limit and \
                 blkio_weight can be updated",
            ));
        }
        let host = limits::Host {
            cgroups: &self.cgroups,
            cpus: self.cpus,
            update: true,
        };
        let warnings = limits::check(&mut changes, &host).map_err(ContainerError::invalid)?;
        let _guard = self.lock.lock().await;
        let mut c = self.find(&req.id)?;
        let id = c.id.clone();
        let cannot = |kind: ErrorKind, e: &dyn std::fmt::Display| {
            ContainerError::new(kind, format!("Cannot update container {id}: {e}"))
        };
        if c.state.status == crate::container::Status::Removing
            || c.state.status == crate::container::Status::Dead
        {
            return Err(cannot(
                ErrorKind::InvalidArgument,
                &"container is marked for removal and cannot be \"update\"",
            ));
        }
        let mut res = c.spec.resources.clone().unwrap_or_default();
        merge(&mut res, &changes).map_err(|e| cannot(ErrorKind::Conflict, &e))?;
        if let Some(p) = req.restart_policy {
            if pb::restart_policy::Mode::try_from(p.mode).is_err() || p.maximum_retry_count < 0 {
                return Err(ContainerError::invalid("restart_policy: invalid"));
            }
            let none = p.mode == pb::restart_policy::Mode::No as i32;
            if c.auto_remove() && !none {
                return Err(cannot(
                    ErrorKind::Conflict,
                    &"Restart policy cannot be updated because AutoRemove is enabled for the \
                      container",
                ));
            }
            c.spec.restart_policy = Some(p);
        }
        c.spec.resources = Some(res);
        if c.state.running() {
            // systemd's properties first (the systemd driver), then the exact cgroup files.
            let all = limits::for_shim(c.spec.resources.as_ref().unwrap_or(&Default::default()));
            self.update_scope(&c, &all)
                .await
                .map_err(|e| cannot(berth_errors::HasKind::kind(&e), &e))?;
            let cg = Containers::cgroup(&c)?;
            let values = limits::for_shim(&changes);
            tokio::task::spawn_blocking(move || cg.apply_limits(&values))
                .await
                .map_err(|e| cannot(ErrorKind::Internal, &e))?
                .map_err(|e| cannot(ErrorKind::Internal, &e))?;
        }
        self.store
            .put_with(&c, &self.container_event(&c, "update", &[]))?;
        self.bump(&c.id);
        Ok(pb::UpdateResponse { warnings })
    }
}

/// The part of `r` an update can change: a request with more is refused, never half applied.
fn updatable(r: &pb::Resources) -> pb::Resources {
    pb::Resources {
        memory: r.memory,
        memory_swap: r.memory_swap,
        memory_reservation: r.memory_reservation,
        nano_cpus: r.nano_cpus,
        cpu_shares: r.cpu_shares,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        pids_limit: r.pids_limit,
        blkio_weight: r.blkio_weight,
        ..Default::default()
    }
}

/// dockerd's Container.UpdateContainer: the changes over what is set, refusing a mix of
/// `--cpus` with a period or quota, and memory above a memory+swap already set.
fn merge(cur: &mut pb::Resources, new: &pb::Resources) -> Result<(), String> {
    let conflict = |what: &str, set: &str| {
        format!("Conflicting options: {what} cannot be updated as {set} has already been set")
    };
    if new.nano_cpus > 0 && cur.cpu_period > 0 {
        return Err(conflict("Nano CPUs", "CPU Period"));
    }
    if new.nano_cpus > 0 && cur.cpu_quota > 0 {
        return Err(conflict("Nano CPUs", "CPU Quota"));
    }
    if new.cpu_period > 0 && cur.nano_cpus > 0 {
        return Err(conflict("CPU Period", "NanoCPUs"));
    }
    if new.cpu_quota > 0 && cur.nano_cpus > 0 {
        return Err(conflict("CPU Quota", "NanoCPUs"));
    }
    if new.blkio_weight != 0 {
        cur.blkio_weight = new.blkio_weight;
    }
    if new.cpu_shares != 0 {
        cur.cpu_shares = new.cpu_shares;
    }
    if new.nano_cpus != 0 {
        cur.nano_cpus = new.nano_cpus;
    }
    if new.cpu_period != 0 {
        cur.cpu_period = new.cpu_period;
    }
    if new.cpu_quota != 0 {
        cur.cpu_quota = new.cpu_quota;
    }
    if !new.cpuset_cpus.is_empty() {
        cur.cpuset_cpus.clone_from(&new.cpuset_cpus);
    }
    if !new.cpuset_mems.is_empty() {
        cur.cpuset_mems.clone_from(&new.cpuset_mems);
    }
    if new.memory != 0 {
        if new.memory > cur.memory_swap && new.memory_swap == 0 {
            return Err(
                "Memory limit should be smaller than already set memoryswap limit, \
                        update the memoryswap at the same time"
                    .to_owned(),
            );
        }
        cur.memory = new.memory;
    }
    if new.memory_swap != 0 {
        cur.memory_swap = new.memory_swap;
    }
    if new.memory_reservation != 0 {
        cur.memory_reservation = new.memory_reservation;
    }
    if let Some(n) = new.pids_limit {
        cur.pids_limit = Some(n).filter(|n| *n > 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_can_change_is_taken() {
        let r = pb::Resources {
            memory: 64 << 20,
            pids_limit: Some(5),
            ..Default::default()
        };
        assert_eq!(updatable(&r), r);
        let more = pb::Resources {
            oom_score_adj: 100,
            ..r.clone()
        };
        assert_ne!(updatable(&more), more);
    }

    #[test]
    fn dockerds_update_rules() {
        let mut cur = pb::Resources {
            nano_cpus: 500_000_000,
            memory: 64 << 20,
            memory_swap: 128 << 20,
            pids_limit: Some(10),
            ..Default::default()
        };
        let e = merge(
            &mut cur.clone(),
            &pb::Resources {
                cpu_quota: 50_000,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        let e = merge(
            &mut cur.clone(),
            &pb::Resources {
                memory: 256 << 20,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller"), "{e}");
        merge(
            &mut cur,
            &pb::Resources {
                memory: 256 << 20,
                memory_swap: -1,
                cpuset_cpus: "0".to_owned(),
                pids_limit: Some(-1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (cur.memory, cur.memory_swap, cur.pids_limit),
            (256 << 20, -1, None)
        );
        assert_eq!(
            (cur.cpuset_cpus.as_str(), cur.nano_cpus),
            ("0", 500_000_000)
        );
    }
}
