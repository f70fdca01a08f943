//! Value types shared by every Berth service. Free of tonic, axum and NATS so that any crate can
//! depend on it cheaply.

mod digest;
mod error_kind;
mod event;
mod filters;
mod id;
#[cfg(test)]
mod proptests;
mod reference;
mod service;
mod size;

pub use digest::{Digest, DigestAlgorithm, InvalidDigest, Sha256Digester};
pub use error_kind::ErrorKind;
pub use event::{Actor, Event, EventAction, EventType};
pub use filters::{Filters, InvalidFilter};
pub use id::{EngineId, InvalidId};
pub use reference::{
    AnyReference, DEFAULT_DOMAIN, DEFAULT_TAG, DOCKER_HUB_REGISTRY_HOST, ImageRef,
    LEGACY_DEFAULT_DOMAIN, NAME_TOTAL_LENGTH_MAX, OFFICIAL_REPO_PREFIX, ReferenceError,
    validate_tag,
};
pub use service::{ServiceName, UnknownService};
pub use size::parse_size;
