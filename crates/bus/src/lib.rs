//! Berth's event bus on NATS: typed subjects, the JetStream stream that keeps event history,
//! a publisher that writes events to the service's store (an outbox) and publishes them from
//! there, and service heartbeats.

mod connect;
mod heartbeat;
mod outbox;
mod outbox_drain;
mod publisher;
mod replay;
mod settle;
mod store_events;
pub mod subjects;
mod task;

pub use connect::Bus;
pub use heartbeat::{Heartbeat, spawn_heartbeat};
pub use publisher::{EventPublisher, PublisherMetrics};
pub use replay::{EventCursor, Next, Start, event_cursor};
pub use settle::{answer_settle, settle};
pub use store_events::StoreEvents;
pub use task::TaskGuard;

/// Errors talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("NATS is not reachable at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("event stream: {0}")]
    Stream(String),
}
