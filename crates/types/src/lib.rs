//! Value types shared by every Berth service. Free of tonic, axum and NATS so that any crate can
//! depend on it cheaply.

mod error_kind;
mod event;
mod id;
mod service;

pub use error_kind::ErrorKind;
pub use event::{Actor, Event, EventAction, EventType};
pub use id::{EngineId, InvalidId};
pub use service::{ServiceName, UnknownService};
