//! Publishing events: in order, stored by JetStream (acknowledged). Once a service has attached
//! its store ([`crate::StoreEvents`]), events are written to the store's outbox (in the
//! transaction of the state change they report) and published from there, so that neither an
//! outage of NATS nor a crash loses one. Before that (and in services without a store) they
//! are buffered in memory while NATS is unreachable.
//!
//! A call's events are visible to `docker events` once the call has returned, as with dockerd:
//! the service's gRPC server waits ([`EventPublisher::settled`]) for the rows committed so far
//! to be stored before it ends a response, for a short while and only while NATS is connected;
//! for the calls a service answers first, the reader of the history waits instead (`settle`).

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use async_nats::{HeaderMap, jetstream};
use berth_telemetry::Metrics;
use berth_types::Event;
use bytes::Bytes;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
};

use crate::{
    Bus,
    outbox::{Outbox, Written},
    outbox_drain::{self, Drain, JetStreamSink, Progress},
    subjects,
};

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

    pub(crate) fn stored(&self, n: usize) {
        self.published.inc_by(n as u64);
    }

    pub(crate) fn set_buffered(&self, n: u64) {
        self.buffered.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn dropped(&self, n: u64) {
        self.dropped.inc_by(n);
    }
}

/// An attached outbox and the handles of its drain task.
struct Attached {
    outbox: Outbox,
    wake: Arc<Notify>,
    drained: Arc<Notify>,
    progress: Arc<Progress>,
}

/// Events written in a store transaction by [`EventPublisher::stage`]; hand it to
/// [`EventPublisher::committed`] once the transaction has committed.
#[must_use = "pass it to EventPublisher::committed after the commit"]
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// Events to publish from memory (no outbox attached).
    memory: Vec<Event>,
    staged: usize,
    written: Written,
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
    bus: Bus,
    outbox: Arc<OnceLock<Attached>>,
    /// Turns true when the service stops: the publishing tasks end.
    stop: Arc<watch::Sender<bool>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
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
            bus: bus.clone(),
            outbox: Arc::new(OnceLock::new()),
            stop: Arc::new(watch::Sender::new(false)),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        let task = tokio::spawn(drain(
            bus,
            rx,
            publisher.clone(),
            publisher.stop.subscribe(),
        ));
        publisher.keep(task);
        publisher
    }

    fn keep(&self, task: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// From now on, events go through the outbox table of `db` (the service's store), and the
    /// rows a previous run left there are published. Idempotent.
    pub(crate) fn attach_outbox(&self, db: Arc<redb::Database>) -> Result<(), redb::Error> {
        if self.outbox.get().is_some() {
            return Ok(());
        }
        let outbox = Outbox::open(db)?;
        let waiting = outbox.len()?;
        if waiting > 0 {
            tracing::info!(events = waiting, "publishing the events left in the outbox");
        }
        self.metrics.set_buffered(waiting);
        let attached = Attached {
            outbox: outbox.clone(),
            wake: Arc::new(Notify::new()),
            drained: Arc::new(Notify::new()),
            progress: Arc::new(Progress::default()),
        };
        let drain = Drain {
            outbox,
            wake: attached.wake.clone(),
            drained: attached.drained.clone(),
            progress: attached.progress.clone(),
            metrics: self.metrics.clone(),
        };
        if self.outbox.set(attached).is_ok() {
            let task = tokio::spawn(outbox_drain::run(
                drain,
                JetStreamSink::new(self.bus.clone()),
                self.stop.subscribe(),
            ));
            self.keep(task);
        }
        Ok(())
    }

    /// Writes `events` into the outbox in `tx`, a write transaction of the attached store, so
    /// that they are stored (or lost) with the change they report. Without an outbox they are
    /// kept for [`EventPublisher::committed`] to publish from memory.
    pub(crate) fn stage(
        &self,
        tx: &redb::WriteTransaction,
        events: &[Event],
    ) -> Result<Staged, redb::Error> {
        let Some(a) = self.outbox.get() else {
            return Ok(Staged {
                memory: events.to_vec(),
                ..Staged::default()
            });
        };
        let written = a.outbox.stage(tx, events)?;
        Ok(Staged {
            memory: Vec::new(),
            staged: events.len(),
            written,
        })
    }

    /// How many events wait in the attached outbox (None without one).
    pub fn waiting(&self) -> Option<u64> {
        self.outbox.get().and_then(|a| a.outbox.len().ok())
    }

    /// After the commit of the transaction `staged` was written in: starts publishing.
    pub(crate) fn committed(&self, staged: Staged) {
        for ev in &staged.memory {
            self.publish_memory(ev);
        }
        if staged.staged > 0
            && let Some(a) = self.outbox.get()
        {
            self.outbox_written(a, staged.staged, staged.written);
        }
    }

    fn outbox_written(&self, a: &Attached, rows: usize, written: Written) {
        if let Some(last) = written.last {
            a.progress.committed(last);
        }
        self.metrics.dropped(written.dropped);
        let added = i64::try_from(rows).unwrap_or(i64::MAX);
        let dropped = i64::try_from(written.dropped).unwrap_or(i64::MAX);
        self.metrics.buffered.inc_by(added.saturating_sub(dropped));
        a.wake.notify_one();
    }

    /// Waits until the events committed to the outbox so far are stored in NATS (so that a
    /// call's events are visible to `docker events` once it returns), at most `bound`. Returns
    /// at once, false, while NATS is not connected: the events stay in the outbox and are
    /// published on reconnect. True when they are stored (or there is no outbox).
    pub async fn settled(&self, bound: Duration) -> bool {
        let Some(a) = self.outbox.get() else {
            return true;
        };
        if a.progress.stored_through() >= a.progress.committed_through() {
            return true;
        }
        if !self.bus.is_connected() {
            return false;
        }
        a.wake.notify_one();
        tokio::time::timeout(bound, a.progress.all_stored())
            .await
            .is_ok()
    }

    /// Publishes `event`, which reports no stored change: through the outbox (in a transaction
    /// of its own) once one is attached, else from memory. Never waits for NATS.
    pub fn publish(&self, event: &Event) {
        self.publish_alone(event, false);
    }

    /// Publishes `event`, which reports no change at all, through the outbox in a transaction
    /// that is not synced to disk (the outbox's `append_unsynced`): no fsync for
    /// an event whose loss in a crash leaves nothing unreported. Never waits for NATS.
    pub fn publish_unsynced(&self, event: &Event) {
        self.publish_alone(event, true);
    }

    /// `event` in an outbox transaction of its own (synced or not), else from memory.
    fn publish_alone(&self, event: &Event, unsynced: bool) {
        if let Some(a) = self.outbox.get() {
            let one = std::slice::from_ref(event);
            let appended = if unsynced {
                a.outbox.append_unsynced(one)
            } else {
                a.outbox.append(one)
            };
            match appended {
                Ok(written) => {
                    self.outbox_written(a, 1, written);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "event not written to the outbox; buffered in memory")
                }
            }
        }
        self.publish_memory(event);
    }

    /// Queues `event` in memory. Returns at once; the event is stored when NATS is reachable.
    fn publish_memory(&self, event: &Event) {
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
    /// (Events in the outbox are kept when it returns false, and published on the next start.)
    pub async fn flush(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.drained.notified();
                if self.pending.load(Ordering::SeqCst) == 0 {
                    break;
                }
                notified.await;
            }
            if let Some(a) = self.outbox.get() {
                loop {
                    let notified = a.drained.notified();
                    if a.outbox.len().is_ok_and(|n| n == 0) {
                        break;
                    }
                    a.wake.notify_one();
                    notified.await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// At the service's stop: waits for the events not yet stored (at most `timeout`; those
    /// in the outbox are published on the next start), then ends the publishing tasks and
    /// waits for them, so that nothing of the service outlives its `serve()`. Returns whether
    /// every event was stored.
    pub async fn close(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout).await;
        self.stop.send_replace(true);
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            let _ = t.await;
        }
        flushed
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

async fn drain(
    bus: Bus,
    mut rx: mpsc::Receiver<Outgoing>,
    publisher: EventPublisher,
    mut stop: watch::Receiver<bool>,
) {
    let js = bus.jetstream();
    let mut stream_ready = false;
    loop {
        let out = tokio::select! {
            out = rx.recv() => out,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(out) = out else { return };
        tokio::select! {
            () = store_one(&js, &mut stream_ready, out, &publisher) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Stores one event from memory, retrying until NATS acknowledges it.
async fn store_one(
    js: &jetstream::Context,
    stream_ready: &mut bool,
    out: Outgoing,
    publisher: &EventPublisher,
) {
    {
        let mut backoff = Duration::from_millis(100);
        loop {
            if !*stream_ready {
                match ensure_stream(js).await {
                    Ok(_) => *stream_ready = true,
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
                    *stream_ready = false;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
