//! The skeleton every Berth service runs in, so that a reader who knows one service knows all:
//! configuration in, a gRPC server (with the standard health service) on a unix socket or on
//! TCP with mutual TLS, `/metrics` on its own address, heartbeats and events on NATS, a reload
//! on SIGHUP and a clean stop on SIGTERM.

mod client;
mod fsutil;
mod grpc_metrics;
mod listen;
mod main_helper;
pub use listen::bind_unix;
pub use main_helper::main;
mod run;
mod settle;
mod signals;
mod space;
mod store;
mod tls;

pub use client::{channel, connect_all, trace_interceptor};
pub use fsutil::{disk_usage, engine_id, write_atomic};
pub use grpc_metrics::GrpcMetricsLayer;
pub use run::{Launch, Reloader, ServiceContext, Shutdown, VERSION};
pub use settle::{SETTLE_BOUND, SettleEventsLayer};
pub use signals::{reload_signal, shutdown_signal};
pub use space::{Bounded, FreeSpace, storage_full};
pub use store::open_store;
pub use tls::{Channel, explain_tls, server_tls};
