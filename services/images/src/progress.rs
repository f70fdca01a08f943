//! Progress messages of long operations (pull, push, load), in the shape of Docker's
//! JSONMessage: an `id` (a layer's short digest, or a tag), a `status`, and byte counts.

use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Progress {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) current: i64,
    pub(crate) total: i64,
}

/// Where progress goes. Sending never fails the operation: a client that went away only
/// stops receiving.
#[derive(Debug, Clone)]
pub(crate) struct ProgressSink(Option<mpsc::Sender<Progress>>);

impl ProgressSink {
    pub(crate) fn new(tx: mpsc::Sender<Progress>) -> ProgressSink {
        ProgressSink(Some(tx))
    }

    pub(crate) async fn status(&self, id: &str, status: impl Into<String>) {
        self.send(Progress {
            id: id.to_owned(),
            status: status.into(),
            ..Progress::default()
        })
        .await;
    }

    pub(crate) async fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send(Progress {
            id: id.to_owned(),
            status: status.to_owned(),
            current: current as i64,
            total: total as i64,
        })
        .await;
    }

    async fn send(&self, p: Progress) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(p).await;
        }
    }
}
