//! The gRPC shell: decode, call the domain, encode. No logic here.

use std::{pin::Pin, sync::Arc};

use berth_errors::{respond, status_from};
use berth_proto::runtime::v1::{self as pb, runtime_server};
use tonic::{Request, Response, Status};

use crate::{info::Runtime, lifecycle::Containers};

pub(crate) struct GrpcRuntime {
    domain: Runtime,
    containers: Arc<Containers>,
}

impl GrpcRuntime {
    pub(crate) fn new(domain: Runtime, containers: Arc<Containers>) -> GrpcRuntime {
        GrpcRuntime { domain, containers }
    }
}

type WaitStream = Pin<Box<dyn futures::Stream<Item = Result<pb::WaitResponse, Status>> + Send>>;
type AttachStream = Pin<Box<dyn futures::Stream<Item = Result<pb::AttachFrame, Status>> + Send>>;
type LogStream = Pin<Box<dyn futures::Stream<Item = Result<pb::LogEntry, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<pb::ArchiveChunk, Status>> + Send>>;
type StopStream = Pin<Box<dyn futures::Stream<Item = Result<pb::Empty, Status>> + Send>>;
type StatsStream = Pin<Box<dyn futures::Stream<Item = Result<pb::StatsSample, Status>> + Send>>;

/// A stream of what `rx` receives.
fn stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Result<T, Status>>,
) -> Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>> {
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// A stream of the one result of `work`, which runs in a task of its own that ends, with
/// `work` dropped, as soon as the stream is dropped (the caller went away). A wait must end
/// so: the CLI of a `docker run -d` registers one and exits, and a waiter left behind looked
/// at its container again at every change of any container, so that every operation cost
/// more with each container started that way.
fn until_dropped<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Status>> + Send + 'static,
) -> Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        tokio::select! {
            r = work => {
                let _ = tx.send(r).await;
            }
            () = tx.closed() => {}
        }
    });
    stream(rx)
}

fn empty<E: berth_errors::HasKind + std::fmt::Display>(
    r: Result<(), E>,
) -> Result<Response<pb::Empty>, Status> {
    respond(r.map(|()| pb::Empty {}))
}

#[tonic::async_trait]
impl runtime_server::Runtime for GrpcRuntime {
    type LogsStream = LogStream;
    type AttachStream = AttachStream;
    type WaitStream = WaitStream;
    type StopStream = StopStream;
    type RestartStream = StopStream;
    type ExecStartStream = AttachStream;
    type ArchivePathStream = ChunkStream;
    type ExportStream = ChunkStream;
    type StatsStream = StatsStream;

    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        respond(self.domain.info())
    }

    async fn disk_usage(
        &self,
        _: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        respond(self.containers.disk_usage().await)
    }

    async fn create(
        &self,
        req: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        respond(self.containers.create(req.get_ref()).await)
    }

    async fn start(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.start(&req.get_ref().id).await)
    }

    async fn wait(
        &self,
        req: Request<pb::WaitRequest>,
    ) -> Result<Response<Self::WaitStream>, Status> {
        let req = req.into_inner();
        // Registered before the call answers, so that no exit after the answer is missed.
        let waiter = self
            .containers
            .wait_start(&req)
            .map_err(|e| status_from(&e))?;
        let containers = self.containers.clone();
        Ok(Response::new(until_dropped(async move {
            containers.finish(waiter).await.map_err(|e| status_from(&e))
        })))
    }

    async fn inspect(
        &self,
        req: Request<pb::ContainerRef>,
    ) -> Result<Response<pb::ContainerInfo>, Status> {
        respond(self.containers.inspect(&req.get_ref().id))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        respond(self.containers.list(req.get_ref()).await)
    }

    async fn remove(&self, req: Request<pb::RemoveRequest>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.remove(req.get_ref()).await)
    }

    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.kill(req.get_ref()).await)
    }

    async fn stop(
        &self,
        req: Request<pb::StopRequest>,
    ) -> Result<Response<Self::StopStream>, Status> {
        // Checked before answering, so that 304 and 404 are plain errors; then the wait.
        let req = req.into_inner();
        let stopping = self
            .containers
            .stop_begin(&req)
            .await
            .map_err(|e| status_from(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let containers = self.containers.clone();
        tokio::spawn(async move {
            let r = containers.stop_finish(stopping).await;
            let _ = tx
                .send(r.map(|()| pb::Empty {}).map_err(|e| status_from(&e)))
                .await;
        });
        Ok(Response::new(stream(rx)))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneRequest>,
    ) -> Result<Response<pb::PruneResponse>, Status> {
        respond(self.containers.prune(req.get_ref()).await)
    }

    async fn rename(&self, req: Request<pb::RenameRequest>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.rename(req.get_ref()).await)
    }

    async fn network_connect(
        &self,
        req: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.network_connect(req.get_ref()).await)
    }

    async fn network_disconnect(
        &self,
        req: Request<pb::DisconnectRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.network_disconnect(req.get_ref()).await)
    }

    async fn logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let rx = self
            .containers
            .logs(req.get_ref())
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(stream(rx)))
    }

    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<Self::AttachStream>, Status> {
        let rx = self
            .containers
            .attach(req.get_ref())
            .await
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(stream(rx)))
    }

    async fn input(
        &self,
        req: Request<tonic::Streaming<pb::InputChunk>>,
    ) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.input(req.into_inner()).await)
    }

    async fn resize(&self, req: Request<pb::ResizeRequest>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.resize(req.get_ref()).await)
    }

    async fn exec_create(
        &self,
        req: Request<pb::ExecCreateRequest>,
    ) -> Result<Response<pb::ExecCreateResponse>, Status> {
        respond(self.containers.exec_create(req.get_ref()).await)
    }

    async fn exec_start(
        &self,
        req: Request<pb::ExecStartRequest>,
    ) -> Result<Response<Self::ExecStartStream>, Status> {
        let rx = self
            .containers
            .exec_start(req.get_ref())
            .await
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(stream(rx)))
    }

    async fn exec_inspect(
        &self,
        req: Request<pb::ExecRef>,
    ) -> Result<Response<pb::ExecInfo>, Status> {
        respond(self.containers.exec_inspect(&req.get_ref().exec_id))
    }

    async fn top(&self, req: Request<pb::TopRequest>) -> Result<Response<pb::TopResponse>, Status> {
        respond(self.containers.top(req.get_ref()).await)
    }

    async fn stats(
        &self,
        req: Request<pb::StatsRequest>,
    ) -> Result<Response<Self::StatsStream>, Status> {
        let rx = self
            .containers
            .stats(req.get_ref())
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(stream(rx)))
    }

    async fn pause(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.pause(&req.get_ref().id).await)
    }

    async fn unpause(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::Empty>, Status> {
        empty(self.containers.unpause(&req.get_ref().id).await)
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        respond(self.containers.update(req.get_ref()).await)
    }

    async fn restart(
        &self,
        req: Request<pb::StopRequest>,
    ) -> Result<Response<Self::RestartStream>, Status> {
        let req = req.into_inner();
        // The container must exist before the answer; the rest happens in the stream.
        self.containers.find(&req.id).map_err(|e| status_from(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let containers = self.containers.clone();
        tokio::spawn(async move {
            let r = containers.restart(&req).await;
            let _ = tx
                .send(r.map(|()| pb::Empty {}).map_err(|e| status_from(&e)))
                .await;
        });
        Ok(Response::new(stream(rx)))
    }

    async fn stat_path(
        &self,
        req: Request<pb::PathRequest>,
    ) -> Result<Response<pb::PathStat>, Status> {
        respond(self.containers.stat_path(req.get_ref()).await)
    }

    async fn archive_path(
        &self,
        req: Request<pb::PathRequest>,
    ) -> Result<Response<Self::ArchivePathStream>, Status> {
        let rx = self
            .containers
            .archive_path(req.get_ref())
            .await
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(stream(rx)))
    }

    async fn extract_to_dir(
        &self,
        req: Request<tonic::Streaming<pb::ExtractChunk>>,
    ) -> Result<Response<pb::Empty>, Status> {
        let mut input = req.into_inner();
        let first = input.message().await?.unwrap_or_default();
        let options = first.options.unwrap_or_default();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let reader = crate::fs_api::UploadReader {
            rx,
            cur: std::io::Cursor::new(first.data),
        };
        // The upload is relayed to the view's thread as it arrives.
        tokio::spawn(async move {
            loop {
                let item = match input.message().await {
                    Ok(None) => return,
                    Ok(Some(m)) if m.upload_error.is_empty() => Ok(m.data),
                    Ok(Some(m)) => Err(m.upload_error),
                    Err(e) => Err(e.message().to_owned()),
                };
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        empty(self.containers.extract_to_dir(&options, reader).await)
    }

    async fn export(
        &self,
        req: Request<pb::ContainerRef>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let rx = self
            .containers
            .export(&req.get_ref().id)
            .await
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(stream(rx)))
    }

    async fn changes(
        &self,
        req: Request<pb::ContainerRef>,
    ) -> Result<Response<berth_proto::images::v1::ChangesResponse>, Status> {
        respond(self.containers.changes(&req.get_ref().id).await)
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        respond(self.containers.commit(req.get_ref()).await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use futures::StreamExt;

    use super::*;

    /// Sets its flag when dropped.
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn work_whose_caller_went_away_is_dropped_and_a_finished_one_answers() {
        let gone = Arc::new(AtomicBool::new(false));
        let guard = Dropped(gone.clone());
        let s = until_dropped::<()>(async move {
            let _guard = guard;
            std::future::pending().await
        });
        drop(s);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !gone.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the work outlived its caller"
            );
            tokio::task::yield_now().await;
        }
        let mut s = until_dropped(async { Ok::<_, Status>(7) });
        assert_eq!(s.next().await.unwrap().unwrap(), 7);
        assert!(s.next().await.is_none());
    }
}
