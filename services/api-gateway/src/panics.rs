//! A panic in a handler: the client gets a Docker-style 500 naming the request, the log gets
//! the panic with its backtrace and the request, and the connection stays usable.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Once,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use berth_types::ErrorKind;
use futures::FutureExt;

use crate::error::ApiError;

/// Request IDs: this gateway's start time and a counter, in hex.
fn next_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!("{start:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Logs a panic through tracing, with its backtrace, inside the span of the request it
/// happened in (which carries the request ID). Installed once.
pub fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let backtrace = std::backtrace::Backtrace::force_capture();
            tracing::error!(panic = %info, %backtrace, "a handler panicked");
            // Outside a handler (a thread of the runtime itself) the default report too.
            if tracing::Span::current().is_none() {
                previous(info);
            }
        }));
    });
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// Runs the rest of the stack; a panic becomes a 500 with the request ID.
pub async fn catch(req: Request, next: Next) -> Response {
    let id = next_request_id();
    let span = tracing::info_span!("request", request_id = %id);
    let run = tracing::Instrument::instrument(next.run(req), span);
    match AssertUnwindSafe(run).catch_unwind().await {
        Ok(res) => res,
        Err(payload) => ApiError::new(
            ErrorKind::Internal,
            format!(
                "internal error in Berth's API gateway (request {id}): {}",
                message(payload.as_ref())
            ),
        )
        .into_response(),
    }
}
