//! docker attach: relaying the shim's output of the main process; the attaches queued for a
//! container that is not started yet.

use berth_proto::runtime::v1 as pb;
use berth_shim_proto::{ShimClient, v1 as shimpb};
use tokio::sync::mpsc;

use crate::{container_error::ContainerError, lifecycle::Containers};

/// The receiving end of an attach.
pub(crate) type AttachReceiver = mpsc::Receiver<Result<pb::AttachFrame, tonic::Status>>;

/// One attach: where the frames go and which streams it wants.
pub(crate) struct Attacher {
    pub(crate) tx: mpsc::Sender<Result<pb::AttachFrame, tonic::Status>>,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
}

impl Containers {
    /// docker attach: the live output of the main process. On a container that is not
    /// running, the attach waits for the next start.
    pub(crate) async fn attach(
        &self,
        req: &pb::AttachRequest,
    ) -> Result<AttachReceiver, ContainerError> {
        let _guard = self.lock.lock().await;
        let c = self.find(&req.id)?;
        let (tx, rx) = mpsc::channel(64);
        let a = Attacher {
            tx,
            stdout: req.stdout,
            stderr: req.stderr,
        };
        self.event(&c, "attach", &[]);
        if c.state.running() {
            let client = self.running_shim(&c).await?;
            subscribe(&client, "", a).await;
        } else {
            self.pending_attaches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(c.id.clone())
                .or_default()
                .push(a);
        }
        Ok(rx)
    }
}

/// Subscribes `a` to the shim's output of the main process (empty `exec_id`) or of an exec,
/// and relays it in the background.
pub(crate) async fn subscribe(client: &ShimClient, exec_id: &str, a: Attacher) {
    let mut stream = match client
        .attach(shimpb::AttachRequest {
            exec_id: exec_id.to_owned(),
        })
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let _ = a.tx.send(Err(shim_status(&e))).await;
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    let n = match shimpb::Stream::try_from(chunk.stream) {
                        Ok(shimpb::Stream::Stderr) if a.stderr => 2,
                        Ok(shimpb::Stream::Stdout) if a.stdout => 1,
                        _ => continue,
                    };
                    let frame = pb::AttachFrame {
                        stream: n,
                        data: chunk.data,
                    };
                    if a.tx.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = a.tx.send(Err(shim_status(&e))).await;
                    return;
                }
            }
        }
    });
}

fn shim_status(e: &berth_shim_proto::CallError) -> tonic::Status {
    berth_errors::status_from(&ContainerError::shim(e))
}
