use std::sync::{Arc, atomic::AtomicI64};

use berth_bus::Bus;
use berth_config::DaemonConfig;

use crate::{
    backends::{ContainersBackend, ImagesBackend, NetworksBackend, SystemBackend, VolumesBackend},
    host::HostFacts,
};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub backends: Arc<dyn SystemBackend>,
    pub images: Arc<dyn ImagesBackend>,
    pub containers: Arc<dyn ContainersBackend>,
    pub networks: Arc<dyn NetworksBackend>,
    pub volumes: Arc<dyn VolumesBackend>,
    pub bus: Bus,
    pub host: Arc<HostFacts>,
    pub cfg: Arc<DaemonConfig>,
    /// Open `/events` streams (`NEventsListener`).
    pub event_listeners: Arc<AtomicI64>,
    /// Where build contexts are handed to an images service on this host; `None`: as messages.
    pub spool: Option<Arc<crate::routes::spool::SpoolDir>>,
}
