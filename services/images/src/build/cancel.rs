//! `POST /build/cancel?id=`: the running builds by their client-given ID (`buildid`). A build
//! registered here holds a [`Cancel`]; cancelling it ends its output stream with `Build
//! cancelled`, which stops the build as a client going away does (the running step's
//! container is removed, no further step runs).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

/// The running builds that have an ID.
#[derive(Default)]
pub(crate) struct BuildJobs {
    by_id: Mutex<HashMap<String, (u64, watch::Sender<bool>)>>,
    next: std::sync::atomic::AtomicU64,
}

/// A build's cancel signal; dropping it unregisters the build (when no other build shares
/// its ID).
pub(crate) struct Cancel {
    rx: watch::Receiver<bool>,
    jobs: Arc<BuildJobs>,
    id: String,
    generation: u64,
}

impl BuildJobs {
    /// Registers a build under `id` (several builds may share one ID: all are cancelled).
    pub(crate) fn register(self: &Arc<Self>, id: &str) -> Cancel {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let (generation, rx) = match map.get(id) {
            Some((g, tx)) if !*tx.borrow() => (*g, tx.subscribe()),
            // None, or cancelled: a new build starts afresh.
            _ => {
                let g = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (tx, rx) = watch::channel(false);
                map.insert(id.to_owned(), (g, tx));
                (g, rx)
            }
        };
        Cancel {
            rx,
            jobs: self.clone(),
            id: id.to_owned(),
            generation,
        }
    }

    /// Cancels the builds registered under `id`; returns how many there were.
    pub(crate) fn cancel(&self, id: &str) -> u32 {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some((_, tx)) => {
                let n = tx.receiver_count();
                let _ = tx.send(true);
                u32::try_from(n).unwrap_or(u32::MAX)
            }
            None => 0,
        }
    }
}

impl Cancel {
    /// Resolves once the build is cancelled (never, if it is not).
    pub(crate) async fn cancelled(&mut self) {
        if self.rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        let mut map = self.jobs.by_id.lock().unwrap_or_else(|p| p.into_inner());
        // Our receiver still counts: the entry goes with the last build of the ID.
        if map
            .get(&self.id)
            .is_some_and(|(g, tx)| *g == self.generation && tx.receiver_count() <= 1)
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancels_every_build_of_the_id_and_forgets_finished_ones() {
        let jobs = Arc::new(BuildJobs::default());
        let mut a = jobs.register("x");
        let mut b = jobs.register("x");
        let other = jobs.register("y");
        assert_eq!(jobs.cancel("nope"), 0);
        assert_eq!(jobs.cancel("x"), 2);
        a.cancelled().await;
        b.cancelled().await;
        assert!(!*other.rx.borrow());
        // A new build under a cancelled ID starts uncancelled.
        let fresh = jobs.register("x");
        assert!(!*fresh.rx.borrow());
        drop((a, b));
        assert_eq!(
            jobs.cancel("x"),
            1,
            "the old builds' end leaves the new one"
        );
        drop(fresh);
        assert_eq!(jobs.cancel("x"), 0, "finished builds are forgotten");
        let c = jobs.register("y");
        drop(other);
        assert_eq!(jobs.cancel("y"), 1, "the entry stays while a build uses it");
        drop(c);
        assert!(jobs.by_id.lock().unwrap().is_empty());
    }
}
