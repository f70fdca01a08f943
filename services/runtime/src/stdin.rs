//! The input side of attach and exec: stdin relayed to the shim, and pty resizes.

use std::time::Duration;

use berth_proto::runtime::v1 as pb;
use berth_shim_proto::v1 as shimpb;

use crate::{changes::on_changes, container_error::ContainerError, lifecycle::Containers};

/// How long input that ended before its container started is kept waiting for the start.
const HELD_INPUT_DEADLINE: Duration = Duration::from_secs(300);

impl Containers {
    /// Relays a client's stdin to the main process or an exec. Input for a container that
    /// is not running yet (`docker run -i` attaches before it starts) is held until it runs.
    pub(crate) async fn input(
        &self,
        mut chunks: tonic::Streaming<pb::InputChunk>,
    ) -> Result<(), ContainerError> {
        let Some(first) = chunks
            .message()
            .await
            .map_err(|e| ContainerError::upstream(&e))?
        else {
            return Ok(());
        };
        let exec_id = first.exec_id.clone();
        let container_id = if exec_id.is_empty() {
            self.find(&first.id)?.id
        } else {
            self.exec_record(&exec_id)?.container_id
        };
        let mut held = vec![first];
        let mut ended = false;
        // Until the container runs, keep reading so that a client that goes away is noticed.
        loop {
            let deadline = ended.then_some(HELD_INPUT_DEADLINE);
            tokio::select! {
                r = self.wait_running(&container_id, deadline) => {
                    r?;
                    break;
                }
                m = chunks.message(), if !ended => match m {
                    Ok(Some(c)) => held.push(c),
                    _ => ended = true,
                },
            }
        }
        let c = self.find(&container_id)?;
        let client = self.running_shim(&c).await?;
        let mut next = held.into_iter();
        loop {
            let chunk = match next.next() {
                Some(c) => c,
                None if ended => return Ok(()),
                None => match chunks.message().await {
                    Ok(Some(c)) => c,
                    _ => return Ok(()),
                },
            };
            if !chunk.data.is_empty() {
                let req = shimpb::WriteRequest {
                    exec_id: exec_id.clone(),
                    data: chunk.data,
                };
                if let Err(e) = client.write(req).await {
                    // The process closed its stdin or exited: nothing more to deliver.
                    tracing::debug!(error = %e, container = %container_id, "stdin write");
                    return Ok(());
                }
            }
            if chunk.detach {
                self.detached(&c, &exec_id);
                return Ok(());
            }
            if chunk.close {
                let req = shimpb::CloseStdinRequest {
                    exec_id: exec_id.clone(),
                };
                if let Err(e) = client.close_stdin(req).await {
                    tracing::debug!(error = %e, container = %container_id, "stdin close");
                }
                return Ok(());
            }
        }
    }

    /// Waits until the container runs (or has run and exited since), at most `deadline`.
    async fn wait_running(
        &self,
        id: &str,
        deadline: Option<Duration>,
    ) -> Result<(), ContainerError> {
        let rx = self.changed.subscribe();
        let first = self.find(id)?.state;
        let until = deadline.map(|d| tokio::time::Instant::now() + d);
        let ran = on_changes(rx, id, until, || match self.store.get(id)? {
            None => Err(ContainerError::not_found(format!(
                "No such container: {id}"
            ))),
            Some(c) if c.state.running() || c.state.exits > first.exits => Ok(Some(())),
            // The start failed: the input has nowhere to go.
            Some(c) if !c.state.error.is_empty() && c.state.error != first.error => {
                Err(ContainerError::conflict(c.state.error))
            }
            Some(_) => Ok(None),
        })
        .await?;
        ran.ok_or_else(|| ContainerError::conflict(format!("container {id} is not running")))
    }

    /// docker resize and exec resize: the pty's window size.
    pub(crate) async fn resize(&self, req: &pb::ResizeRequest) -> Result<(), ContainerError> {
        let c = if req.exec_id.is_empty() {
            self.find(&req.id)?
        } else {
            self.find(&self.exec_record(&req.exec_id)?.container_id)?
        };
        let client = self.running_shim(&c).await?;
        let r = client
            .resize(shimpb::ResizeRequest {
                exec_id: req.exec_id.clone(),
                width: req.width,
                height: req.height,
            })
            .await;
        match r {
            Ok(_) => {
                // As Docker: a container's resize is an event, an exec's is not.
                if req.exec_id.is_empty() {
                    let size = [
                        ("height", req.height.to_string()),
                        ("width", req.width.to_string()),
                    ];
                    self.event(&c, "resize", &size);
                }
                Ok(())
            }
            // A process without a pty, or one that has just exited: nothing to resize.
            Err(e) if e.code() == berth_shim_proto::Code::FailedPrecondition => Ok(()),
            Err(e) => Err(ContainerError::shim(&e)),
        }
    }

    /// The client left with its detach keys: `detach`, or `exec_detach` with the execID.
    fn detached(&self, c: &crate::container::Container, exec_id: &str) {
        if exec_id.is_empty() {
            self.event(c, "detach", &[]);
        } else {
            self.event(c, "exec_detach", &[("execID", exec_id.to_owned())]);
        }
    }
}
