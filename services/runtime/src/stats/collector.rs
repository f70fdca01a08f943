//! The streamed samples: one collector for the whole runtime, as dockerd's, which samples
//! every container someone watches once per `INTERVAL` in one blocking task (the host's CPU
//! time read once for all of them) and hands each sample to all of that container's
//! watchers. It runs only while someone watches. Each container's cgroup directories are
//! resolved once per process (not from mountinfo on every tick).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use berth_proto::runtime::v1 as pb;
use tokio::sync::broadcast;

use super::{
    pace::INTERVAL,
    read::{Host, Source},
};
use crate::lifecycle::Containers;

/// A sample, and whether its container runs.
pub(crate) type Shared = Arc<(pb::StatsSample, bool)>;

/// The watched containers and their watchers.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    watched: HashMap<String, broadcast::Sender<Shared>>,
    /// The collecting task runs.
    running: bool,
}

impl Collector {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Containers {
    /// The collector's samples of container `id`, from its next tick on; the receiver is
    /// closed when the container is removed.
    pub(crate) fn watch_stats(self: &Arc<Self>, id: &str) -> broadcast::Receiver<Shared> {
        let mut g = self.stats_collector.inner();
        let rx = g
            .watched
            .entry(id.to_owned())
            .or_insert_with(|| broadcast::channel(2).0)
            .subscribe();
        if !g.running {
            g.running = true;
            tokio::spawn(self.clone().collect_stats());
        }
        rx
    }

    async fn collect_stats(self: Arc<Self>) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once; a new watcher has just sampled on its own.
        tick.tick().await;
        let mut sources: HashMap<String, Source> = HashMap::new();
        loop {
            tick.tick().await;
            let ids: Vec<String> = {
                let mut g = self.stats_collector.inner();
                g.watched.retain(|_, tx| tx.receiver_count() > 0);
                if g.watched.is_empty() {
                    g.running = false;
                    return;
                }
                g.watched.keys().cloned().collect()
            };
            sources.retain(|id, _| ids.contains(id));
            let this = self.clone();
            let taken = tokio::task::spawn_blocking(move || {
                let samples = this.sample_all(&ids, &mut sources);
                (samples, sources)
            })
            .await;
            let Ok((samples, kept)) = taken else {
                sources = HashMap::new();
                continue;
            };
            sources = kept;
            let mut g = self.stats_collector.inner();
            for (id, s) in samples {
                match s {
                    Some(s) => {
                        if let Some(tx) = g.watched.get(&id) {
                            let _ = tx.send(s);
                        }
                    }
                    // Removed: dropping the sender ends its watchers.
                    None => {
                        g.watched.remove(&id);
                    }
                }
            }
        }
    }

    /// One sample of each of `ids` (None: the container is gone), refreshing `sources` whose
    /// container changed (started again, renamed).
    fn sample_all(
        &self,
        ids: &[String],
        sources: &mut HashMap<String, Source>,
    ) -> Vec<(String, Option<Shared>)> {
        let host = Host::read();
        ids.iter()
            .map(|id| {
                let Ok(Some(c)) = self.store.get(id) else {
                    sources.remove(id);
                    return (id.clone(), None);
                };
                let src = match sources.get_mut(id) {
                    Some(s) if s.same(&c) => {
                        s.container = c;
                        s
                    }
                    _ => sources
                        .entry(id.clone())
                        .insert_entry(Source::new(c))
                        .into_mut(),
                };
                let s = src.read(&host);
                (id.clone(), Some(Arc::new((s, src.running()))))
            })
            .collect()
    }
}
