//! The events outbox: a table in a service's own store where each event is written in the same
//! transaction as the state change it reports, and from which the drain task publishes it.
//! A row is deleted only once JetStream has acknowledged it; its message ID (a UUID chosen when
//! the row is written) is sent as `Nats-Msg-Id`, so that a row published again after a crash
//! is stored once.
//!
//! The outbox is bounded ([`CAP`] rows): dockerd never blocks or fails a call because of its
//! events, so when NATS has been unreachable long enough to fill it, the oldest rows are
//! dropped (logged and counted in `berth_events_dropped`), not the state change refused.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use berth_types::Event;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::subjects;

/// Events waiting to be stored in NATS, by sequence (the order they were written in).
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("berth_events_outbox");

/// One event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Row {
    /// The JetStream message ID (`Nats-Msg-Id`), the same every time the row is published.
    pub(crate) id: String,
    pub(crate) subject: String,
    /// Trace context of the request that caused the event.
    #[serde(default)]
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) event: Event,
}

impl Row {
    pub(crate) fn new(event: &Event) -> Row {
        let mut headers = Vec::new();
        berth_telemetry::inject_context(|k, v| headers.push((k.to_owned(), v.to_owned())));
        Row {
            id: uuid::Uuid::new_v4().to_string(),
            subject: subjects::event(event),
            headers,
            event: event.clone(),
        }
    }
}

/// How many rows an outbox holds before the oldest are dropped.
pub(crate) const CAP: u64 = 65_536;

/// Where a stage left the outbox.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// The key of the last row written (None when there were no events).
    pub(crate) last: Option<u64>,
    /// How many of the oldest rows were dropped to stay within the cap.
    pub(crate) dropped: u64,
}

/// The outbox of one store.
#[derive(Clone)]
pub(crate) struct Outbox {
    db: Arc<redb::Database>,
    /// The lowest key the next row may take: keys keep growing while the process lives, also
    /// after the table has emptied, so that "every row up to key K is stored" stays meaningful.
    next: Arc<AtomicU64>,
    cap: u64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Creates the table if needed.
    pub(crate) fn open(db: Arc<redb::Database>) -> Result<Outbox, redb::Error> {
        Outbox::open_with_cap(db, CAP)
    }

    pub(crate) fn open_with_cap(db: Arc<redb::Database>, cap: u64) -> Result<Outbox, redb::Error> {
        let tx = db.begin_write()?;
        tx.open_table(OUTBOX)?;
        tx.commit()?;
        Ok(Outbox {
            db,
            next: Arc::new(AtomicU64::new(1)),
            cap: cap.max(1),
        })
    }

    /// Writes `events` in the caller's transaction, after every row already there, dropping
    /// the oldest rows beyond the cap.
    pub(crate) fn stage(
        &self,
        tx: &redb::WriteTransaction,
        events: &[Event],
    ) -> Result<Written, redb::Error> {
        if events.is_empty() {
            return Ok(Written::default());
        }
        let mut table = tx.open_table(OUTBOX)?;
        // Write transactions are serialized: no other stage runs between this read and the
        // update of `next` below.
        let after_last = table.last()?.map_or(1, |(k, _)| k.value() + 1);
        let first = after_last.max(self.next.load(Ordering::SeqCst));
        let mut last = first;
        for (key, ev) in (first..).zip(events) {
            let row = serde_json::to_vec(&Row::new(ev))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            table.insert(key, row.as_slice())?;
            last = key;
        }
        self.next.fetch_max(last + 1, Ordering::SeqCst);
        let mut dropped = 0;
        while table.len()? > self.cap {
            if table.pop_first()?.is_none() {
                break;
            }
            dropped += 1;
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                cap = self.cap,
                "events outbox full (NATS unreachable for long); the oldest events were dropped"
            );
        }
        Ok(Written {
            last: Some(last),
            dropped,
        })
    }

    /// Writes `events` in a transaction of their own (events that report no stored change).
    pub(crate) fn append(&self, events: &[Event]) -> Result<Written, redb::Error> {
        let tx = self.db.begin_write()?;
        let written = self.stage(&tx, events)?;
        tx.commit()?;
        Ok(written)
    }

    /// Writes `events` in a transaction of their own that is not synced to disk: it is with the
    /// service's next durable commit (a crash before it loses them). For events that report
    /// no change at all (a build tagging an image with the tag it has already), whose loss
    /// leaves no state unreported.
    pub(crate) fn append_unsynced(&self, events: &[Event]) -> Result<Written, redb::Error> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::None)?;
        let written = self.stage(&tx, events)?;
        tx.commit()?;
        Ok(written)
    }

    /// The first `limit` rows, oldest first. A row that cannot be read is dropped (logged).
    pub(crate) fn pending(&self, limit: usize) -> Result<Vec<(u64, Row)>, redb::Error> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            match serde_json::from_slice::<Row>(v.value()) {
                Ok(row) => out.push((k.value(), row)),
                Err(e) => {
                    tracing::error!(error = %e, key = k.value(), "unreadable outbox row dropped");
                    bad.push(k.value());
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        drop(table);
        drop(tx);
        if !bad.is_empty() {
            self.delete(&bad)?;
        }
        Ok(out)
    }

    /// Deletes acknowledged rows, in one transaction. Not synced to disk on its own: it is
    /// with the service's next change, or by [`Outbox::sync`] once the drain is idle. Rows a
    /// crash brings back meanwhile are published again under their message IDs, which
    /// JetStream stores once; the fsync stays off the write lock that the service's own
    /// changes (a docker volume rm right after a create) wait for.
    pub(crate) fn delete(&self, keys: &[u64]) -> Result<(), redb::Error> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::None)?;
        {
            let mut table = tx.open_table(OUTBOX)?;
            for k in keys {
                table.remove(*k)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Makes the deletions committed so far durable: an empty durable commit.
    pub(crate) fn sync(&self) -> Result<(), redb::Error> {
        self.db.begin_write()?.commit()?;
        Ok(())
    }

    /// How many rows wait.
    pub(crate) fn len(&self) -> Result<u64, redb::Error> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(OUTBOX)?.len()?)
    }
}

#[cfg(test)]
mod tests {
    use berth_types::{Actor, EventType};

    use super::*;

    fn ev(action: &str, id: &str) -> Event {
        let actor = Actor {
            id: id.to_owned(),
            ..Actor::default()
        };
        Event::new(EventType::Volume, action.parse().unwrap(), actor, 1)
    }

    pub(crate) fn db() -> (tempfile::TempDir, Arc<redb::Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
        (dir, Arc::new(db))
    }

    #[test]
    fn staged_rows_commit_or_roll_back_with_the_transaction() {
        let (_d, db) = db();
        let outbox = Outbox::open(db.clone()).unwrap();
        let tx = db.begin_write().unwrap();
        outbox
            .stage(&tx, &[ev("create", "a"), ev("remove", "a")])
            .unwrap();
        tx.abort().unwrap();
        assert_eq!(outbox.len().unwrap(), 0);

        let tx = db.begin_write().unwrap();
        outbox
            .stage(&tx, &[ev("create", "a"), ev("remove", "a")])
            .unwrap();
        tx.commit().unwrap();
        outbox.append(&[ev("create", "b")]).unwrap();
        let rows = outbox.pending(10).unwrap();
        let order: Vec<_> = rows
            .iter()
            .map(|(_, r)| (r.event.action.to_string(), r.event.actor.id.clone()))
            .collect();
        assert_eq!(
            order,
            [("create", "a"), ("remove", "a"), ("create", "b")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(rows[0].1.subject, "berth.events.volume.create");
        let ids: std::collections::BTreeSet<_> = rows.iter().map(|(_, r)| &r.id).collect();
        assert_eq!(ids.len(), 3, "each row has its own message ID");
        assert_eq!(outbox.pending(2).unwrap().len(), 2);
    }

    #[test]
    fn rows_survive_reopening_and_are_deleted_by_key() {
        let (dir, db) = db();
        let outbox = Outbox::open(db.clone()).unwrap();
        outbox
            .append(&[ev("create", "a"), ev("create", "b")])
            .unwrap();
        let before = outbox.pending(10).unwrap();
        drop(outbox);
        drop(db);
        let db = Arc::new(redb::Database::create(dir.path().join("state.redb")).unwrap());
        let outbox = Outbox::open(db).unwrap();
        assert_eq!(outbox.pending(10).unwrap(), before);
        outbox.delete(&[before[0].0]).unwrap();
        assert_eq!(outbox.pending(10).unwrap(), before[1..]);
        // Sequence numbers keep growing after the last row.
        outbox.append(&[ev("create", "c")]).unwrap();
        let rows = outbox.pending(10).unwrap();
        assert!(rows[1].0 > rows[0].0);
    }

    #[test]
    fn unsynced_rows_queue_in_order_and_persist_with_the_next_durable_commit() {
        let (dir, db) = db();
        let outbox = Outbox::open(db.clone()).unwrap();
        outbox.append(&[ev("create", "a")]).unwrap();
        let w = outbox.append_unsynced(&[ev("tag", "a")]).unwrap();
        assert_eq!(w.last, Some(2));
        outbox.append(&[ev("create", "b")]).unwrap();
        let order = |o: &Outbox| -> Vec<String> {
            o.pending(10)
                .unwrap()
                .iter()
                .map(|(_, r)| format!("{} {}", r.event.action, r.event.actor.id))
                .collect()
        };
        assert_eq!(order(&outbox), ["create a", "tag a", "create b"]);
        drop(outbox);
        drop(db);
        let db = Arc::new(redb::Database::create(dir.path().join("state.redb")).unwrap());
        assert_eq!(
            order(&Outbox::open(db).unwrap()),
            ["create a", "tag a", "create b"],
            "kept by the durable commit after it"
        );
    }

    #[test]
    fn keys_keep_growing_after_the_outbox_emptied() {
        let (_d, db) = db();
        let outbox = Outbox::open(db).unwrap();
        let first = outbox.append(&[ev("create", "a")]).unwrap().last.unwrap();
        outbox.delete(&[first]).unwrap();
        assert_eq!(outbox.len().unwrap(), 0);
        let second = outbox.append(&[ev("create", "b")]).unwrap().last.unwrap();
        assert!(second > first, "{second} after {first}");
        assert_eq!(outbox.append(&[]).unwrap(), Written::default());
    }

    #[test]
    fn the_oldest_rows_are_dropped_beyond_the_cap() {
        let (_d, db) = db();
        let outbox = Outbox::open_with_cap(db, 3).unwrap();
        outbox
            .append(&[ev("create", "a"), ev("create", "b")])
            .unwrap();
        let w = outbox
            .append(&[ev("create", "c"), ev("create", "d"), ev("create", "e")])
            .unwrap();
        assert_eq!(w.dropped, 2);
        let ids: Vec<_> = outbox
            .pending(10)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.event.actor.id)
            .collect();
        assert_eq!(ids, ["c", "d", "e"], "the newest are kept");
    }
}
