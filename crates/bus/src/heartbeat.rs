//! Heartbeats on `berth.health.<service>`: each service says it is alive, and where.

use std::time::Duration;

use berth_types::ServiceName;
use serde::{Deserialize, Serialize};

use crate::{Bus, TaskGuard, subjects};

/// One heartbeat message (JSON).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    pub service: String,
    /// Unique per process start, so two instances of one service can be told apart.
    pub instance: String,
    pub pid: u32,
    pub version: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds when this heartbeat was sent.
    pub time: i64,
    /// gRPC address (`unix:///run/berth/images.sock`).
    pub grpc: String,
    /// Where `/metrics` is served.
    pub metrics: String,
    /// The interval at which heartbeats are sent, in milliseconds.
    pub interval_ms: u64,
}

impl Heartbeat {
    pub fn service_name(&self) -> Option<ServiceName> {
        self.service.parse().ok()
    }
}

/// Publishes `hb` every `interval` until the returned task is dropped. Heartbeats are plain
/// NATS messages: one due while NATS is down is simply not sent.
pub fn spawn_heartbeat(
    bus: Bus,
    service: ServiceName,
    hb: Heartbeat,
    interval: Duration,
) -> TaskGuard {
    let subject = subjects::health(service);
    TaskGuard::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !bus.is_connected() {
                continue;
            }
            let mut hb = hb.clone();
            hb.time = time::OffsetDateTime::now_utc().unix_timestamp();
            if let Ok(payload) = serde_json::to_vec(&hb) {
                let _ = bus.client().publish(subject.clone(), payload.into()).await;
            }
        }
    })
}
