//! docker stats: samples of a container's cgroup, the host's CPU time and the counters of
//! the interfaces in its network namespace (`read`), paced as dockerd's answers are
//! (`pace`: which samples are sent, with which `precpu`); streamed samples come from one
//! collector for the whole runtime (`collector`). The front end renders them as dockerd does.

mod collector;
mod pace;
mod read;

use std::{sync::Arc, time::Instant};

use berth_proto::runtime::v1 as pb;
pub(crate) use collector::Collector;
use pace::{NO_STREAM_WINDOW, Pace, Step};
use read::{Host, Source};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tonic::Status;

use crate::{container_error::ContainerError, lifecycle::Containers};

type Tx = mpsc::Sender<Result<pb::StatsSample, Status>>;

impl Containers {
    /// The samples for `req`; the stream ends when the client goes, or the container is
    /// removed.
    pub(crate) fn stats(
        self: &Arc<Self>,
        req: &pb::StatsRequest,
    ) -> Result<mpsc::Receiver<Result<pb::StatsSample, Status>>, ContainerError> {
        let c = self.find(&req.id)?;
        let (tx, rx) = mpsc::channel(2);
        let pace = Pace::new(req.stream, req.one_shot);
        let this = self.clone();
        if req.stream {
            tokio::spawn(this.stream_stats(c.id, pace, tx));
        } else {
            tokio::spawn(this.stats_once(c.id, pace, tx));
        }
        Ok(rx)
    }

    /// `stream=false`: one frame, after its window (see `pace`).
    async fn stats_once(self: Arc<Self>, id: String, mut pace: Pace, tx: Tx) {
        loop {
            let Some((s, running)) = self.sample_now(&id).await else {
                return;
            };
            match pace.offer(s, running, Instant::now()) {
                Step::Prime => tokio::time::sleep(NO_STREAM_WINDOW).await,
                Step::Send { frame, .. } => {
                    let _ = tx.send(Ok(*frame)).await;
                    return;
                }
                Step::Skip => {}
            }
        }
    }

    /// Streamed: a frame at once, then the collector's.
    async fn stream_stats(self: Arc<Self>, id: String, mut pace: Pace, tx: Tx) {
        let mut samples = self.watch_stats(&id);
        let Some((s, running)) = self.sample_now(&id).await else {
            return;
        };
        let mut next = Some(Arc::new((s, running)));
        loop {
            if let Some(shared) = next.take() {
                let (s, running) = (shared.0.clone(), shared.1);
                if let Step::Send { frame, .. } = pace.offer(s, running, Instant::now())
                    && tx.send(Ok(*frame)).await.is_err()
                {
                    return;
                }
            }
            tokio::select! {
                r = samples.recv() => match r {
                    Ok(s) => next = Some(s),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                () = tx.closed() => return,
            }
        }
    }

    /// A sample of container `id` now (None: it is gone), and whether it runs.
    async fn sample_now(&self, id: &str) -> Option<(pb::StatsSample, bool)> {
        let c = self.store.get(id).ok()??;
        let fallback = read::zero(&c);
        let running = c.state.running();
        let s = tokio::task::spawn_blocking(move || Source::new(c).read(&Host::read()))
            .await
            .unwrap_or(fallback);
        Some((s, running))
    }
}
