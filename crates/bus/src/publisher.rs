//! Publishing events: in order, stored by JetStream (acknowledged), buffered in memory while
//! NATS is unreachable and sent on reconnect. Callers publish only after their state change is
//! durable; `publish` itself never blocks a command.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use async_nats::{HeaderMap, jetstream};
use berth_telemetry::Metrics;
use berth_types::Event;
use bytes::Bytes;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::sync::{Notify, mpsc};

use crate::{Bus, subjects};

/// How many events are held while NATS is down before new ones are dropped (and counted).
const BUFFER: usize = 65_536;

/// The publisher's counters, registered on the service's `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct PublisherMetrics {
    published: Counter,
    dropped: Counter,
    buffered: Gauge,
}

impl PublisherMetrics {
    pub fn register(metrics: &Metrics) -> PublisherMetrics {
        let m = PublisherMetrics::default();
        metrics.register(
            "berth_events_published",
            "Events stored in the NATS event stream",
            m.published.clone(),
        );
        metrics.register(
            "berth_events_dropped",
            "Events dropped because the buffer was full while NATS was down",
            m.dropped.clone(),
        );
        metrics.register(
            "berth_events_buffered",
            "Events waiting to be stored in the NATS event stream",
            m.buffered.clone(),
        );
        m
    }
}

struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
}

/// A handle for publishing events. Cheap to clone.
#[derive(Clone)]
pub struct EventPublisher {
    tx: mpsc::Sender<Outgoing>,
    pending: Arc<AtomicI64>,
    drained: Arc<Notify>,
    metrics: PublisherMetrics,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("pending", &self.pending.load(Ordering::SeqCst))
            .finish()
    }
}

impl EventPublisher {
    /// Starts the task that stores events in the stream.
    pub fn spawn(bus: Bus, metrics: PublisherMetrics) -> EventPublisher {
        let (tx, rx) = mpsc::channel(BUFFER);
        let publisher = EventPublisher {
            tx,
            pending: Arc::new(AtomicI64::new(0)),
            drained: Arc::new(Notify::new()),
            metrics,
        };
        tokio::spawn(drain(bus, rx, publisher.clone()));
        publisher
    }

    /// Queues `event`. Returns at once; the event is stored when NATS is reachable.
    pub fn publish(&self, event: &Event) {
        let payload = match serde_json::to_vec(event) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::error!(error = %e, "event not serializable");
                return;
            }
        };
        let mut headers = HeaderMap::new();
        berth_telemetry::inject_context(|k, v| headers.insert(k, v));
        headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
        let out = Outgoing {
            subject: subjects::event(event),
            headers,
            payload,
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.metrics.buffered.inc();
        if self.tx.try_send(out).is_err() {
            self.done(false);
            tracing::error!(action = %event.action, "event buffer full; event dropped");
        }
    }

    /// Waits until every queued event is stored, or `timeout` passes. Returns whether all were.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                if self.pending.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    fn done(&self, stored: bool) {
        if stored {
            self.metrics.published.inc();
        } else {
            self.metrics.dropped.inc();
        }
        self.metrics.buffered.dec();
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.drained.notify_waiters();
        }
    }
}

/// Creates the event stream if it does not exist. Idempotent; every publisher calls it.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
) -> Result<jetstream::stream::Stream, String> {
    js.get_or_create_stream(jetstream::stream::Config {
        name: subjects::EVENTS_STREAM.to_owned(),
        subjects: vec![subjects::EVENTS_ALL.to_owned()],
        storage: jetstream::stream::StorageType::File,
        max_messages: 1_000_000,
        max_age: Duration::from_secs(7 * 24 * 3600),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
}

async fn drain(bus: Bus, mut rx: mpsc::Receiver<Outgoing>, publisher: EventPublisher) {
    let js = bus.jetstream();
    let mut stream_ready = false;
    while let Some(out) = rx.recv().await {
        let mut backoff = Duration::from_millis(100);
        loop {
            if !stream_ready {
                match ensure_stream(&js).await {
                    Ok(_) => stream_ready = true,
                    Err(e) => {
                        tracing::debug!(error = %e, "event stream not ready");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
            let stored = match js
                .publish_with_headers(
                    out.subject.clone(),
                    out.headers.clone(),
                    out.payload.clone(),
                )
                .await
            {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match stored {
                Ok(_) => {
                    publisher.done(true);
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, subject = %out.subject, "event not stored yet; retrying");
                    stream_ready = false;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
