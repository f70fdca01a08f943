//! What wakes the waiters (`docker wait`, an attached run waiting for its container to start, a
//! stop waiting for the exit, a start waiting for the last run's release, an exec's exit): one
//! sequence, bumped after every change, that says which container a change was about. A waiter
//! on another container, that saw the change just before, goes back to sleep without reading
//! its record again: with hundreds of live waiters, a change costs one check, not one per
//! waiter.

use std::sync::Arc;

use berth_types::ErrorKind;
use tokio::sync::watch;

use crate::container_error::ContainerError;

/// The last change: its number, and the container it was about.
#[derive(Debug, Clone, Default)]
pub(crate) struct Change {
    seq: u64,
    about: Option<Arc<str>>,
}

/// The sender of the changes.
#[derive(Debug)]
pub(crate) struct Changes(watch::Sender<Change>);

impl Default for Changes {
    fn default() -> Changes {
        Changes(watch::channel(Change::default()).0)
    }
}

impl Changes {
    pub(crate) fn subscribe(&self) -> watch::Receiver<Change> {
        self.0.subscribe()
    }

    /// Container `id`'s record, its settling state or one of its execs changed, and nothing
    /// else.
    pub(crate) fn bump_for(&self, id: &str) {
        self.0.send_modify(|c| {
            c.seq += 1;
            c.about = Some(id.into());
        });
    }
}

/// Evaluates `check`, which looks at container `id` only, now and again after every change
/// signalled on `rx` until it gives an answer; `None` when `deadline` passes first. Subscribing
/// before the first check means no change in between is missed. A change about another
/// container that follows the last one looked at directly is skipped: nothing `check` reads
/// changed.
pub(crate) async fn on_changes<T>(
    mut rx: watch::Receiver<Change>,
    id: &str,
    deadline: Option<tokio::time::Instant>,
    mut check: impl FnMut() -> Result<Option<T>, ContainerError>,
) -> Result<Option<T>, ContainerError> {
    if let Some(v) = check()? {
        return Ok(Some(v));
    }
    // The change the last check followed (None: not known, the first wake checks).
    let mut seen: Option<u64> = None;
    loop {
        let changed = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx.changed()).await {
                Ok(r) => r,
                Err(_) => return Ok(None),
            },
            None => rx.changed().await,
        };
        if changed.is_err() {
            return Err(ContainerError::new(ErrorKind::Unavailable, "shutting down"));
        }
        let now = rx.borrow_and_update().clone();
        let elsewhere = now.about.as_deref().is_some_and(|a| a != id);
        let next = seen.is_some_and(|s| s + 1 == now.seq);
        seen = Some(now.seq);
        if next && elsewhere {
            continue;
        }
        if let Some(v) = check()? {
            return Ok(Some(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// On the test's single thread, a yield runs the woken waiter up to its next wait.
    async fn run_waiter() {
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_waiter_checks_on_its_own_changes_and_on_any_it_may_have_missed() {
        let changes = Changes::default();
        let checks = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = watch::channel(false);
        let rx = changes.subscribe();
        let counted = checks.clone();
        let waiter = tokio::spawn(async move {
            on_changes(rx, "a", None, || {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(done_rx.borrow().then_some(()))
            })
            .await
        });
        let count = || checks.load(Ordering::SeqCst);
        run_waiter().await;
        assert_eq!(count(), 1, "checked at once");
        // The first wake checks, whatever the change was about.
        changes.bump_for("b");
        run_waiter().await;
        assert_eq!(count(), 2);
        // A change about another container, right after the one seen: skipped.
        changes.bump_for("b");
        run_waiter().await;
        assert_eq!(count(), 2, "skipped");
        // One about its own container: checked.
        changes.bump_for("a");
        run_waiter().await;
        assert_eq!(count(), 3);
        // Two at once, the first unknown to the waiter: checked.
        done_tx.send(true).unwrap();
        changes.bump_for("c");
        changes.bump_for("c");
        assert_eq!(waiter.await.unwrap().unwrap(), Some(()));
        assert_eq!(count(), 4);
    }

    #[tokio::test]
    async fn the_deadline_and_the_end_of_the_changes() {
        let changes = Changes::default();
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(20);
        let r = on_changes(changes.subscribe(), "a", Some(soon), || Ok(None::<()>)).await;
        assert!(r.unwrap().is_none());
        let rx = changes.subscribe();
        drop(changes);
        assert!(on_changes(rx, "a", None, || Ok(None::<()>)).await.is_err());
    }
}
