//! The task that empties an outbox into JetStream: oldest rows first, a batch at a time, each
//! row deleted once its publication is acknowledged. After a crash the rows not yet deleted
//! are published again with their message IDs, which JetStream's duplicate window drops.

use std::{future::Future, sync::Arc, time::Duration};

use async_nats::{HeaderMap, jetstream};
use tokio::sync::{Notify, watch};

use crate::{
    Bus,
    outbox::{Outbox, Row},
    publisher::{PublisherMetrics, ensure_stream},
};

/// Rows published before their acknowledgements are awaited.
const BATCH: usize = 256;
/// How often the outbox is looked at without being woken (a wake-up lost to a crash between
/// a commit and its wake-up cannot happen, but rows written before the task started can).
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// How long the drain waits, idle, before it syncs its deletions to disk itself.
const SYNC_AFTER: Duration = Duration::from_secs(1);

/// Where rows are published.
pub(crate) trait Sink: Send + 'static {
    /// Publishes `rows` in order; returns how many of them, from the first, were acknowledged.
    fn send(&mut self, rows: &[Row]) -> impl Future<Output = usize> + Send;
}

/// The event stream.
pub(crate) struct JetStreamSink {
    bus: Bus,
    js: jetstream::Context,
    stream_ready: bool,
}

impl JetStreamSink {
    pub(crate) fn new(bus: Bus) -> JetStreamSink {
        JetStreamSink {
            js: bus.jetstream(),
            bus,
            stream_ready: false,
        }
    }
}

impl Sink for JetStreamSink {
    async fn send(&mut self, rows: &[Row]) -> usize {
        // Nothing is handed to the client while it is disconnected: it would queue every retry
        // and send them all on reconnect.
        if !self.bus.is_connected() {
            return 0;
        }
        if !self.stream_ready {
            match ensure_stream(&self.js).await {
                Ok(_) => self.stream_ready = true,
                Err(e) => {
                    tracing::debug!(error = %e, "event stream not ready");
                    return 0;
                }
            }
        }
        let mut acks = Vec::with_capacity(rows.len());
        for row in rows {
            let mut headers = HeaderMap::new();
            for (k, v) in &row.headers {
                headers.insert(k.as_str(), v.as_str());
            }
            headers.insert("Nats-Msg-Id", row.id.as_str());
            let payload = match serde_json::to_vec(&row.event) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "event not serializable");
                    break;
                }
            };
            match self
                .js
                .publish_with_headers(row.subject.clone(), headers, payload.into())
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    tracing::debug!(error = %e, "event not sent yet");
                    break;
                }
            }
        }
        let mut acked = 0;
        for ack in acks {
            match ack.await {
                Ok(_) => acked += 1,
                Err(e) => {
                    tracing::debug!(error = %e, "event not stored yet; retrying");
                    self.stream_ready = false;
                    break;
                }
            }
        }
        acked
    }
}

/// What one pass of the drain did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Empty,
    Sent {
        acked: usize,
        of: usize,
        /// The key of the last row acknowledged: every row up to it has left the outbox.
        through: Option<u64>,
    },
}

/// How far rows have been committed to the outbox and stored in NATS, by key (keys grow in
/// commit order: write transactions are serialized).
#[derive(Debug)]
pub(crate) struct Progress {
    /// The last key committed (as told after each commit).
    committed: std::sync::atomic::AtomicU64,
    /// Every row up to this key has been stored (or dropped) and deleted.
    stored: watch::Sender<u64>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            committed: std::sync::atomic::AtomicU64::new(0),
            stored: watch::Sender::new(0),
        }
    }
}

impl Progress {
    pub(crate) fn committed(&self, key: u64) {
        self.committed
            .fetch_max(key, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn committed_through(&self) -> u64 {
        self.committed.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn stored_through(&self) -> u64 {
        *self.stored.borrow()
    }

    fn stored(&self, key: u64) {
        self.stored.send_if_modified(|s| {
            let newer = key > *s;
            if newer {
                *s = key;
            }
            newer
        });
    }

    /// Waits until every row committed so far has been stored.
    pub(crate) async fn all_stored(&self) {
        let target = self.committed_through();
        let mut rx = self.stored.subscribe();
        let _ = rx.wait_for(|s| *s >= target).await;
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, redb::Error> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// At most this many rows are read on the async thread (a call's events, the usual case);
/// a longer backlog is read on the blocking pool.
const READ_INLINE: u64 = 16;

/// Publishes the oldest batch, reports the rows acknowledged to `progress` (a call waiting for
/// its events goes on at once), then deletes them.
pub(crate) async fn step(
    outbox: &Outbox,
    sink: &mut impl Sink,
    progress: &Progress,
) -> Result<Step, String> {
    // An empty outbox, the idle case, is seen with one read transaction (no write, no fsync)
    // on this thread: a pass every IDLE_CHECK through the blocking pool would keep one of its
    // threads (and its malloc arena) alive for good, tokio keeping an idle one for 10 s. A
    // few rows are read here too: two hops through the pool would be most of the wait of the
    // call whose events they are.
    let waiting = outbox.len().map_err(|e| e.to_string())?;
    if waiting == 0 {
        return Ok(Step::Empty);
    }
    let batch = if waiting <= READ_INLINE {
        outbox.pending(BATCH).map_err(|e| e.to_string())?
    } else {
        let o = outbox.clone();
        blocking(move || o.pending(BATCH)).await?
    };
    if batch.is_empty() {
        return Ok(Step::Empty);
    }
    let rows: Vec<Row> = batch.iter().map(|(_, r)| r.clone()).collect();
    let acked = sink.send(&rows).await.min(rows.len());
    let mut through = None;
    if acked > 0 {
        let keys: Vec<u64> = batch[..acked].iter().map(|(k, _)| *k).collect();
        through = keys.last().copied();
        // Stored in NATS: what waits for these rows need not wait for their deletion too (a
        // crash before it publishes them again, under the same message IDs, stored once).
        if let Some(k) = through {
            progress.stored(k);
        }
        let o = outbox.clone();
        blocking(move || o.delete(&keys)).await?;
    }
    Ok(Step::Sent {
        acked,
        of: rows.len(),
        through,
    })
}

/// What a drain task is given.
pub(crate) struct Drain {
    pub(crate) outbox: Outbox,
    pub(crate) wake: Arc<Notify>,
    pub(crate) drained: Arc<Notify>,
    pub(crate) progress: Arc<Progress>,
    pub(crate) metrics: PublisherMetrics,
}

/// Drains the outbox into `sink` until `stop` turns true: woken by `wake`, signalling
/// `drained` after every pass that deleted rows or found none.
pub(crate) async fn run(d: Drain, mut sink: impl Sink, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    // Deletions committed but not yet synced to disk.
    let mut unsynced = false;
    let stopped = |stop: &watch::Receiver<bool>| *stop.borrow();
    while !stopped(&stop) {
        // Rows committed before this pass that it finds gone are stored (or were dropped).
        let floor = d.progress.committed_through();
        let pause = match step(&d.outbox, &mut sink, &d.progress).await {
            Ok(Step::Empty) => {
                d.progress.stored(floor);
                d.metrics.set_buffered(0);
                d.drained.notify_waiters();
                // Idle: the deletions are synced after a quiet second, then the outbox is
                // looked at now and then.
                let wait = if unsynced { SYNC_AFTER } else { IDLE_CHECK };
                let woken = tokio::select! {
                    r = tokio::time::timeout(wait, d.wake.notified()) => r.is_ok(),
                    _ = stop.changed() => true,
                };
                if unsynced && !woken {
                    unsynced = !sync(&d.outbox).await;
                }
                None
            }
            Ok(Step::Sent { acked, of, .. }) => {
                unsynced |= acked > 0;
                d.metrics.stored(acked);
                if let Ok(n) = d.outbox.len() {
                    d.metrics.set_buffered(n);
                }
                d.drained.notify_waiters();
                if acked < of {
                    Some(backoff)
                } else {
                    backoff = Duration::from_millis(100);
                    None
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "events outbox not readable; retrying");
                Some(backoff)
            }
        };
        if let Some(p) = pause {
            tokio::select! {
                _ = tokio::time::sleep(p) => {}
                _ = stop.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
    if unsynced {
        sync(&d.outbox).await;
    }
}

/// Makes the drain's deletions durable; whether it did.
async fn sync(outbox: &Outbox) -> bool {
    let o = outbox.clone();
    match blocking(move || o.sync()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "syncing the events outbox");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_types::{Actor, Event, EventType};

    use super::*;

    /// Records what it is given; acknowledges at most `ack` rows per call.
    struct Fake {
        sent: Vec<Row>,
        ack: usize,
    }

    impl Sink for Fake {
        async fn send(&mut self, rows: &[Row]) -> usize {
            self.sent.extend_from_slice(rows);
            self.ack.min(rows.len())
        }
    }

    fn ev(action: &str) -> Event {
        Event::new(
            EventType::Container,
            action.parse().unwrap(),
            Actor::default(),
            1,
        )
    }

    fn outbox() -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
        (dir, Outbox::open(Arc::new(db)).unwrap())
    }

    /// The threads of this process named `name` (a runtime's blocking-pool threads carry its
    /// thread name).
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .count()
    }

    /// An idle service looks at its empty outbox every few seconds: on its own thread, so that
    /// no blocking-pool thread is kept alive for it. Rows to publish still go through the pool.
    #[test]
    fn an_empty_outbox_is_seen_without_a_blocking_thread() {
        const NAME: &str = "outbox-idle-t";
        let rt = tokio::runtime::Builder::new_current_thread()
            .thread_name(NAME)
            .enable_all()
            .build()
            .unwrap();
        let (_d, outbox) = outbox();
        let mut sink = Fake {
            sent: Vec::new(),
            ack: usize::MAX,
        };
        for _ in 0..3 {
            assert_eq!(
                rt.block_on(step(&outbox, &mut sink, &Progress::default())),
                Ok(Step::Empty)
            );
        }
        assert_eq!(threads_named(NAME), 0);
        outbox.append(&[ev("create")]).unwrap();
        assert!(matches!(
            rt.block_on(step(&outbox, &mut sink, &Progress::default())),
            Ok(Step::Sent {
                acked: 1,
                of: 1,
                ..
            })
        ));
        assert!(threads_named(NAME) > 0);
    }

    #[tokio::test]
    async fn drains_in_order_and_deletes_what_was_acknowledged() {
        let (_d, outbox) = outbox();
        outbox
            .append(&[ev("create"), ev("start"), ev("die")])
            .unwrap();
        let mut sink = Fake {
            sent: Vec::new(),
            ack: usize::MAX,
        };
        let Step::Sent {
            acked: 3,
            of: 3,
            through: Some(through),
        } = step(&outbox, &mut sink, &Progress::default())
            .await
            .unwrap()
        else {
            panic!("not all sent");
        };
        let actions: Vec<_> = sink
            .sent
            .iter()
            .map(|r| r.event.action.to_string())
            .collect();
        assert_eq!(actions, ["create", "start", "die"]);
        assert_eq!(outbox.len().unwrap(), 0);
        assert_eq!(through, 3, "the key of the last row");
        assert_eq!(
            step(&outbox, &mut sink, &Progress::default())
                .await
                .unwrap(),
            Step::Empty
        );
        assert_eq!(sink.sent.len(), 3, "nothing sent twice");
    }

    /// A call waiting for its events goes on once NATS has them: the pass reports them.
    #[tokio::test]
    async fn the_rows_acknowledged_are_reported_stored() {
        let (_d, outbox) = outbox();
        outbox.append(&[ev("create"), ev("destroy")]).unwrap();
        let progress = Progress::default();
        progress.committed(2);
        let mut sink = Fake {
            sent: Vec::new(),
            ack: 1,
        };
        step(&outbox, &mut sink, &progress).await.unwrap();
        assert_eq!(progress.stored_through(), 1);
        sink.ack = usize::MAX;
        step(&outbox, &mut sink, &progress).await.unwrap();
        assert_eq!(progress.stored_through(), 2);
        tokio::time::timeout(Duration::from_secs(5), progress.all_stored())
            .await
            .expect("every committed row stored");
    }

    #[tokio::test]
    async fn synced_deletions_stay_deleted_when_the_store_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let db = redb::Database::create(&path).unwrap();
            let outbox = Outbox::open(Arc::new(db)).unwrap();
            outbox.append(&[ev("create"), ev("destroy")]).unwrap();
            let mut sink = Fake {
                sent: Vec::new(),
                ack: usize::MAX,
            };
            step(&outbox, &mut sink, &Progress::default())
                .await
                .unwrap();
            outbox.sync().unwrap();
        }
        let db = redb::Database::create(&path).unwrap();
        assert_eq!(Outbox::open(Arc::new(db)).unwrap().len().unwrap(), 0);
    }

    #[tokio::test]
    async fn unacknowledged_rows_are_sent_again_with_the_same_ids() {
        let (_d, outbox) = outbox();
        outbox
            .append(&[ev("create"), ev("start"), ev("die")])
            .unwrap();
        // NATS stored only the first: the other two stay.
        let mut sink = Fake {
            sent: Vec::new(),
            ack: 1,
        };
        assert!(matches!(
            step(&outbox, &mut sink, &Progress::default())
                .await
                .unwrap(),
            Step::Sent {
                acked: 1,
                of: 3,
                through: Some(_)
            }
        ));
        assert_eq!(outbox.len().unwrap(), 2);
        let first: Vec<_> = sink.sent.iter().map(|r| r.id.clone()).collect();
        sink.ack = usize::MAX;
        step(&outbox, &mut sink, &Progress::default())
            .await
            .unwrap();
        let again: Vec<_> = sink.sent[3..].iter().map(|r| r.id.clone()).collect();
        assert_eq!(again, first[1..], "the same message IDs");
        assert_eq!(outbox.len().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_crash_before_the_acknowledgement_republishes_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let first_ids = {
            let outbox = Outbox::open(Arc::new(redb::Database::create(&path).unwrap())).unwrap();
            outbox.append(&[ev("create"), ev("destroy")]).unwrap();
            // Published, then the process dies before any acknowledgement.
            let mut sink = Fake {
                sent: Vec::new(),
                ack: 0,
            };
            step(&outbox, &mut sink, &Progress::default())
                .await
                .unwrap();
            sink.sent.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        let outbox = Outbox::open(Arc::new(redb::Database::create(&path).unwrap())).unwrap();
        let mut sink = Fake {
            sent: Vec::new(),
            ack: usize::MAX,
        };
        step(&outbox, &mut sink, &Progress::default())
            .await
            .unwrap();
        let ids: Vec<_> = sink.sent.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, first_ids);
        assert_eq!(outbox.len().unwrap(), 0);
    }
}

/// Against a real nats-server.
#[cfg(test)]
#[path = "outbox_nats_tests.rs"]
mod nats_tests;
