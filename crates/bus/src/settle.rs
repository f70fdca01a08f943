//! Settling on read. dockerd logs a call's events before the call returns; a Berth service
//! publishes them from its store's outbox a moment after. A service holds the end of each
//! answer until its events are stored (`berth_service::SettleEventsLayer`), except for the
//! calls it answers first (a volume's create and rm, whose latency was half that wait): their
//! events are settled by the reader instead. Before `/events` reads the history, the gateway
//! asks every service, on `berth.settle.<service>`, to answer once the events it has
//! committed so far are stored ([`settle`]); each service answers there ([`answer_settle`]).

use std::time::Duration;

use berth_types::ServiceName;
use futures::StreamExt;

use crate::{Bus, EventPublisher, TaskGuard, subjects};

/// Answers each request on `berth.settle.<service>` once the events `events` committed
/// before it are stored, or after `bound`, whichever comes first.
pub fn answer_settle(
    bus: Bus,
    service: ServiceName,
    events: EventPublisher,
    bound: Duration,
) -> TaskGuard {
    let subject = subjects::settle(service);
    TaskGuard::spawn(async move {
        let mut requests = match bus.client().subscribe(subject).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "settle requests not answered");
                return;
            }
        };
        while let Some(msg) = requests.next().await {
            let Some(reply) = msg.reply else { continue };
            let stored = events.settled(bound).await;
            let answer = if stored { "stored" } else { "pending" };
            if let Err(e) = bus.client().publish(reply, answer.into()).await {
                tracing::debug!(error = %e, "settle answer not sent");
            }
        }
    })
}

/// Waits until every service in `services` has stored the events it committed before this
/// call, each for at most `bound`. A service that is down or a bus that is not connected is
/// not waited for (its events are published when both are back, as ever).
pub async fn settle(bus: &Bus, services: impl IntoIterator<Item = ServiceName>, bound: Duration) {
    if !bus.is_connected() {
        return;
    }
    let asks = services.into_iter().map(|s| async move {
        let ask = bus.client().request(subjects::settle(s), "".into());
        match tokio::time::timeout(bound, ask).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(service = %s, error = %e, "events not settled"),
            Err(_) => tracing::debug!(service = %s, "events not settled in time"),
        }
    });
    futures::future::join_all(asks).await;
}
