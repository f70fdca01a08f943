//! The client of systemd's `org.freedesktop.systemd1.Manager`: a scope started with
//! StartTransientUnit and stopped with StopUnit, each waited for until its job is removed
//! (the `JobRemoved` signal, to which the client subscribes before calling, as a job can
//! finish before the call's reply arrives); its limits changed with SetUnitProperties; a
//! failed unit's leftovers reset with ResetFailedUnit.

use std::time::Duration;

use futures::StreamExt;
use zbus::zvariant::{OwnedObjectPath, Value};

use crate::{Error, properties::Prop};

/// How long systemd may take to run a scope's job.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
trait Manager {
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;

    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;

    fn set_unit_properties(
        &self,
        name: &str,
        runtime: bool,
        properties: &[(&str, Value<'_>)],
    ) -> zbus::Result<()>;

    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;

    fn subscribe(&self) -> zbus::Result<()>;

    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::zvariant::ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// The system bus's address: `DBUS_SYSTEM_BUS_ADDRESS` (its value given here) when set, else
/// the standard socket.
pub fn system_bus_address(from_env: Option<&str>) -> String {
    match from_env {
        Some(a) if !a.trim().is_empty() => a.trim().to_owned(),
        _ => "unix:path=/run/dbus/system_bus_socket".to_owned(),
    }
}

/// Whether `e` is systemd's error `name` (`org.freedesktop.systemd1.<name>`).
fn is(e: &zbus::Error, name: &str) -> bool {
    matches!(e, zbus::Error::MethodError(n, _, _)
        if n.as_str().strip_prefix("org.freedesktop.systemd1.") == Some(name))
}

/// A connection to systemd's manager.
pub struct Systemd {
    manager: ManagerProxy<'static>,
}

impl Systemd {
    /// On the system bus, where systemd (PID 1) serves it.
    pub async fn system() -> Result<Systemd, Error> {
        let conn = zbus::Connection::system()
            .await
            .map_err(|e| Error::dbus("connecting to the system bus", e))?;
        Systemd::on(conn).await
    }

    /// On the bus at `address` (`unix:path=...`).
    pub async fn at(address: &str) -> Result<Systemd, Error> {
        let conn = zbus::connection::Builder::address(address)
            .map_err(|e| Error::dbus(format!("address {address}"), e))?
            .build()
            .await
            .map_err(|e| Error::dbus(format!("connecting to {address}"), e))?;
        Systemd::on(conn).await
    }

    async fn on(conn: zbus::Connection) -> Result<Systemd, Error> {
        let manager = ManagerProxy::new(&conn)
            .await
            .map_err(|e| Error::dbus("the manager proxy", e))?;
        // Without a subscriber systemd may not send job signals.
        manager
            .subscribe()
            .await
            .map_err(|e| Error::dbus("Subscribe", e))?;
        Ok(Systemd { manager })
    }

    /// Starts the transient unit `name` with `properties` and waits until its job is done. A
    /// unit of that name left over (a previous run's, failed or not yet collected) is stopped
    /// and reset first, once.
    pub async fn start_unit(&self, name: &str, properties: &[(&str, Prop)]) -> Result<(), Error> {
        let values: Vec<(&str, Value<'_>)> =
            properties.iter().map(|(k, v)| (*k, v.to_value())).collect();
        let mut retried = false;
        loop {
            let jobs = self.jobs().await?;
            match self
                .manager
                .start_transient_unit(name, "replace", &values, &[])
                .await
            {
                Ok(job) => return wait_job(jobs, &job, name, "start").await,
                Err(e) if is(&e, "UnitExists") && !retried => {
                    retried = true;
                    self.stop_unit(name).await?;
                }
                Err(e) => return Err(Error::dbus(format!("StartTransientUnit {name}"), e)),
            }
        }
    }

    /// Sets `properties` of the running unit `name` (not persisted: `runtime`).
    pub async fn set_properties(
        &self,
        name: &str,
        properties: &[(&str, Prop)],
    ) -> Result<(), Error> {
        let values: Vec<(&str, Value<'_>)> =
            properties.iter().map(|(k, v)| (*k, v.to_value())).collect();
        self.manager
            .set_unit_properties(name, true, &values)
            .await
            .map_err(|e| Error::dbus(format!("SetUnitProperties {name}"), e))
    }

    /// Stops unit `name`, waits until its job is done, and resets it if it failed (so that
    /// systemd forgets it and the name can be started again); a unit systemd no longer knows
    /// (a scope is collected once its last process exits) is already stopped.
    pub async fn stop_unit(&self, name: &str) -> Result<(), Error> {
        let jobs = self.jobs().await?;
        let job = match self.manager.stop_unit(name, "replace").await {
            Ok(job) => job,
            Err(e) if is(&e, "NoSuchUnit") => return Ok(()),
            Err(e) => return Err(Error::dbus(format!("StopUnit {name}"), e)),
        };
        wait_job(jobs, &job, name, "stop").await?;
        match self.manager.reset_failed_unit(name).await {
            // Gone already, or not failed: nothing to reset.
            Err(e) if !(is(&e, "NoSuchUnit") || is(&e, "UnitNotFailed")) => {
                Err(Error::dbus(format!("ResetFailedUnit {name}"), e))
            }
            _ => Ok(()),
        }
    }

    async fn jobs(&self) -> Result<JobRemovedStream, Error> {
        self.manager
            .receive_job_removed()
            .await
            .map_err(|e| Error::dbus("JobRemoved", e))
    }
}

async fn wait_job(
    mut jobs: JobRemovedStream,
    job: &OwnedObjectPath,
    unit: &str,
    what: &'static str,
) -> Result<(), Error> {
    let wait = async {
        while let Some(signal) = jobs.next().await {
            let Ok(args) = signal.args() else { continue };
            if args.job.as_str() != job.as_str() {
                continue;
            }
            return if args.result == "done" {
                Ok(())
            } else {
                Err(Error::Job {
                    unit: unit.to_owned(),
                    result: args.result.to_owned(),
                })
            };
        }
        Err(Error::Timeout {
            what,
            unit: unit.to_owned(),
        })
    };
    tokio::time::timeout(JOB_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                what,
                unit: unit.to_owned(),
            })
        })
}
