//! The events side of a service's store: what every store (runtime, images, network,
//! volumes) needs to write its events in the transaction of the change they report.

use std::sync::{Arc, OnceLock};

use berth_types::Event;

use crate::EventPublisher;

/// A store's events: until [`StoreEvents::attach`], events given to a commit are dropped
/// (a store opened by a test or a tool); after, they are written into the store's outbox in
/// the committing transaction and published from there.
pub struct StoreEvents {
    db: Arc<redb::Database>,
    publisher: OnceLock<EventPublisher>,
}

impl std::fmt::Debug for StoreEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreEvents")
            .field("attached", &self.publisher.get().is_some())
            .finish()
    }
}

impl StoreEvents {
    /// The events of the store `db`, not attached yet.
    pub fn new(db: Arc<redb::Database>) -> StoreEvents {
        StoreEvents {
            db,
            publisher: OnceLock::new(),
        }
    }

    /// From now on the events given to [`StoreEvents::commit`] go through `events`, from this
    /// store's outbox; the rows a previous run left there are published. Idempotent.
    pub fn attach(&self, events: EventPublisher) -> Result<(), redb::Error> {
        events.attach_outbox(self.db.clone())?;
        let _ = self.publisher.set(events);
        Ok(())
    }

    /// Commits `tx` with `events` written in it, then wakes the publishing task: the events
    /// are stored (or lost) with the change they report.
    pub fn commit(&self, tx: redb::WriteTransaction, events: &[Event]) -> Result<(), redb::Error> {
        let Some(p) = self.publisher.get() else {
            return Ok(tx.commit()?);
        };
        let staged = p.stage(&tx, events)?;
        tx.commit()?;
        p.committed(staged);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use berth_types::{Actor, EventType};
    use redb::{ReadableDatabase, TableDefinition};

    use super::*;
    use crate::Bus;

    const T: TableDefinition<&str, u32> = TableDefinition::new("t");

    fn ev(id: &str) -> Event {
        let actor = Actor {
            id: id.to_owned(),
            ..Actor::default()
        };
        Event::new(EventType::Volume, "create".parse().unwrap(), actor, 1)
    }

    #[tokio::test]
    async fn events_are_committed_with_the_change_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(redb::Database::create(dir.path().join("s.redb")).unwrap());
        // NATS is not reachable: rows stay in the outbox.
        let bus = Bus::connect("nats://127.0.0.1:1", "test").await.unwrap();
        let publisher = EventPublisher::spawn(bus, Default::default());
        let store = StoreEvents::new(db.clone());

        // Not attached: the change commits, the event goes nowhere.
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap().insert("a", 1).unwrap();
        store.commit(tx, &[ev("a")]).unwrap();
        assert_eq!(publisher.waiting(), None);

        store.attach(publisher.clone()).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap().insert("b", 2).unwrap();
        store.commit(tx, &[ev("b")]).unwrap();
        assert_eq!(publisher.waiting(), Some(1));
        // An aborted transaction leaves neither the change nor its event.
        let tx = db.begin_write().unwrap();
        tx.open_table(T).unwrap().insert("c", 3).unwrap();
        drop(tx);
        assert_eq!(publisher.waiting(), Some(1));
        let read = db.begin_read().unwrap();
        assert!(read.open_table(T).unwrap().get("c").unwrap().is_none());
        assert!(!publisher.settled(std::time::Duration::from_secs(5)).await);
        assert!(!publisher.close(std::time::Duration::from_millis(10)).await);
        assert_eq!(publisher.waiting(), Some(1), "kept for the next start");
    }

    #[tokio::test]
    async fn closing_ends_the_tasks_and_releases_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let db = Arc::new(redb::Database::create(&path).unwrap());
        let bus = Bus::connect("nats://127.0.0.1:1", "test").await.unwrap();
        let publisher = EventPublisher::spawn(bus, Default::default());
        let store = StoreEvents::new(db.clone());
        store.attach(publisher.clone()).unwrap();
        let tx = db.begin_write().unwrap();
        store.commit(tx, &[ev("a")]).unwrap();
        publisher.close(std::time::Duration::from_millis(10)).await;
        drop((publisher, store, db));
        // A task left running would still hold the database open.
        let db = redb::Database::create(&path).expect("the store released");
        let read = db.begin_read().unwrap();
        drop(read);
    }
}
