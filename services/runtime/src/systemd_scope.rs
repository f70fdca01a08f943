//! The systemd cgroup driver (`exec-opts native.cgroupdriver=systemd`), as runc's systemd
//! managers run it: the shim creates the container's init in the scope's cgroup (as with the
//! cgroupfs driver, so that its cgroup namespace is rooted there) and holds it before exec;
//! the runtime then starts the transient scope `berth-<id>.scope` with the init as its PID
//! (`Delegate=yes`, accounting, the limits and device rules systemd writes itself), waits for
//! the job, and writes the limits and device rules again through `berth_cgroup` (systemd has
//! just rewritten the controllers it manages, with its rounding); only then is the init let
//! go. `docker update` sets the unit's properties, then the cgroup files. When the run ends
//! the scope is stopped (a unit systemd no longer knows is stopped already).
//!
//! The runtime connects to the system bus only when the driver is configured.

use std::path::Path;

use berth_systemd::Systemd;
use berth_types::ErrorKind;

use crate::{
    cgroup_place::Scope, container::Container, container_error::ContainerError,
    lifecycle::Containers,
};

/// The connection to systemd, and the property names the host's cgroups take.
pub(crate) struct SystemdDriver {
    systemd: Systemd,
    /// The host's cgroups are v2 (systemd's v2 property names).
    unified: bool,
}

impl SystemdDriver {
    /// Checks that systemd runs (`systemd_dir`, sd_booted's test) and connects to it on the
    /// system bus (`bus_env`: `DBUS_SYSTEM_BUS_ADDRESS`); each failure names the option.
    pub(crate) async fn connect(
        systemd_dir: &Path,
        bus_env: Option<&str>,
        unified: bool,
    ) -> Result<SystemdDriver, String> {
        crate::cgroup_place::check_systemd(systemd_dir)?;
        let address = berth_systemd::system_bus_address(bus_env);
        let systemd = Systemd::at(&address).await.map_err(|e| {
            format!(
                "exec-opts native.cgroupdriver=systemd: cannot reach systemd on the D-Bus \
                 system bus ({address}): {e}; use native.cgroupdriver=cgroupfs"
            )
        })?;
        Ok(SystemdDriver { systemd, unified })
    }
}

fn systemd_error(e: berth_systemd::Error) -> ContainerError {
    let kind = match e {
        berth_systemd::Error::InvalidSlice(_) | berth_systemd::Error::Unsupported(_) => {
            ErrorKind::InvalidArgument
        }
        _ => ErrorKind::Internal,
    };
    ContainerError::new(kind, format!("systemd cgroup driver: {e}"))
}

impl Containers {
    /// Starts the scope of a run whose init `pid` the shim holds before exec, then writes
    /// `resources` and `devices` into the scope's cgroup through cgroupfs.
    pub(crate) async fn start_scope(
        &self,
        c: &Container,
        scope: &Scope,
        pid: u32,
        resources: &berth_bundle::Resources,
        devices: &[berth_bundle::DeviceRule],
    ) -> Result<(), ContainerError> {
        let Some(sd) = &self.systemd else {
            return Err(ContainerError::new(
                ErrorKind::Internal,
                "the systemd cgroup driver is not connected",
            ));
        };
        let props = berth_systemd::scope_properties(
            &c.id,
            &scope.slice,
            pid,
            resources,
            devices,
            sd.unified,
        )
        .map_err(systemd_error)?;
        sd.systemd
            .start_unit(&scope.unit, &props)
            .await
            .map_err(systemd_error)?;
        let cg = Containers::cgroup(c)?;
        let (resources, devices) = (resources.clone(), devices.to_vec());
        tokio::task::spawn_blocking(move || {
            cg.restrict_devices(&devices)?;
            cg.apply_limits(&resources)
        })
        .await
        .map_err(|e| ContainerError::Internal(e.into()))?
        .map_err(|e| {
            ContainerError::new(
                ErrorKind::Internal,
                format!("applying the limits to {}: {e}", scope.unit),
            )
        })
    }

    /// `docker update` under systemd: the unit's properties from the container's limits as
    /// they now are (`all`), before the cgroup files are written.
    pub(crate) async fn update_scope(
        &self,
        c: &Container,
        all: &berth_bundle::Resources,
    ) -> Result<(), ContainerError> {
        let Some(sd) = &self.systemd else {
            return Ok(());
        };
        let (path, _) = crate::cgroup_place::recorded(c);
        if !path.ends_with(".scope") {
            return Ok(());
        }
        let props = berth_systemd::limit_properties(all, sd.unified);
        if props.is_empty() {
            return Ok(());
        }
        sd.systemd
            .set_properties(&berth_systemd::scope_name(&c.id), &props)
            .await
            .map_err(systemd_error)
    }

    /// Stops the scope of container `id`'s last run (the systemd driver); a scope already
    /// gone is no error, and a failure is logged (the run is over either way).
    pub(crate) async fn stop_scope(&self, id: &str) {
        let Some(sd) = &self.systemd else {
            return;
        };
        let unit = berth_systemd::scope_name(id);
        if let Err(e) = sd.systemd.stop_unit(&unit).await {
            tracing::warn!(error = %e, unit, "stopping the container's systemd scope");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn systemd_configured_but_unreachable_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let e = match SystemdDriver::connect(t.path(), Some("unix:path=/nonexistent/bus"), false)
            .await
        {
            Ok(_) => panic!("connected to nothing"),
            Err(e) => e,
        };
        assert!(
            e.starts_with("exec-opts native.cgroupdriver=systemd: cannot reach systemd"),
            "{e}"
        );
        assert!(e.contains("unix:path=/nonexistent/bus"), "{e}");
        // Without systemd running, that is what is said.
        let e = match SystemdDriver::connect(&t.path().join("none"), None, false).await {
            Ok(_) => panic!("no systemd dir"),
            Err(e) => e,
        };
        assert!(e.contains("systemd is not running on this host"), "{e}");
    }
}
