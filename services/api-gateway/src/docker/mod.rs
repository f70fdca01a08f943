//! Docker's dialect, kept here alone: create and exec bodies parsed and checked into Berth's
//! typed specs, filters into typed filters, and Docker's JSON shapes rendered from the
//! services' typed replies.

pub mod container;
pub mod create;
pub mod endpoint;
pub mod exec;
pub mod fields;
pub mod health;
pub mod image;
pub mod image_filters;
pub mod keys;
pub mod links;
pub mod mounts;
pub mod network;
pub mod ports;
pub mod ps_filters;
pub mod security;
pub mod stats;
pub mod timestamp;
pub mod update;
pub mod volume;

#[cfg(test)]
mod proptests;

/// A `label` filter value, `key` or `key=value`: the key, and the value when one is given.
pub fn split_label(v: &str) -> (String, Option<String>) {
    match v.split_once('=') {
        Some((k, val)) => (k.to_owned(), Some(val.to_owned())),
        None => (v.to_owned(), None),
    }
}
