//! The tonic shell of `berth.shim.v1.Shim`: decode, call the domain, encode. The only place a
//! `tonic::Status` is built.

use std::{pin::Pin, sync::Arc};

use berth_proto::shim::v1::{self as pb, shim_server::Shim as ShimApi};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::{convert, error::ShimError, shim::Shim};

pub(crate) struct GrpcShim {
    shim: Arc<Shim>,
}

impl GrpcShim {
    pub(crate) fn new(shim: Arc<Shim>) -> GrpcShim {
        GrpcShim { shim }
    }
}

fn status(e: ShimError) -> Status {
    match e {
        ShimError::NotFound(m) => Status::not_found(m),
        ShimError::Precondition(m) => Status::failed_precondition(m),
        ShimError::InvalidArgument(m) => Status::invalid_argument(m),
        e => Status::internal(e.chain()),
    }
}

type AttachStream = Pin<Box<dyn Stream<Item = Result<pb::AttachChunk, Status>> + Send>>;

#[tonic::async_trait]
impl ShimApi for GrpcShim {
    async fn state(
        &self,
        _: Request<pb::StateRequest>,
    ) -> Result<Response<pb::StateResponse>, Status> {
        let init = self.shim.init();
        let (st, exit) = convert::status(&init.status());
        Ok(Response::new(pb::StateResponse {
            id: self.shim.cfg.id.clone(),
            pid: init.pid(),
            status: st as i32,
            exit,
            bundle: self.shim.bundle.display().to_string(),
        }))
    }

    async fn start(
        &self,
        _: Request<pb::StartRequest>,
    ) -> Result<Response<pb::StartResponse>, Status> {
        let error = self.shim.start().err().map(|e| convert::start_error(&e));
        Ok(Response::new(pb::StartResponse {
            pid: self.shim.init().pid(),
            error,
        }))
    }

    async fn kill(
        &self,
        req: Request<pb::KillRequest>,
    ) -> Result<Response<pb::KillResponse>, Status> {
        let r = req.into_inner();
        let sig = i32::try_from(r.signal).map_err(|_| Status::invalid_argument("bad signal"))?;
        self.shim.kill(&r.exec_id, sig, r.all).map_err(status)?;
        Ok(Response::new(pb::KillResponse {}))
    }

    async fn wait(&self, _: Request<pb::WaitRequest>) -> Result<Response<pb::ExitStatus>, Status> {
        let e = self.shim.init().wait().await;
        Ok(Response::new(convert::exit(&e)))
    }

    type AttachStream = AttachStream;

    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<AttachStream>, Status> {
        let proc = self.shim.proc(&req.into_inner().exec_id).map_err(status)?;
        let sub = proc.hub().subscribe();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut open = sub.open;
            let mut rx_live = sub.rx;
            for c in sub.backlog {
                if c.eof {
                    open = open.saturating_sub(1);
                } else if tx.send(Ok(chunk(&c))).await.is_err() {
                    return;
                }
            }
            while open > 0 {
                match rx_live.recv().await {
                    Ok(c) if c.eof => open -= 1,
                    Ok(c) => {
                        if tx.send(Ok(chunk(&c))).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn write(
        &self,
        req: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let r = req.into_inner();
        let proc = self.shim.proc(&r.exec_id).map_err(status)?;
        proc.write_stdin(&r.data).await.map_err(status)?;
        Ok(Response::new(pb::WriteResponse {}))
    }

    async fn close_stdin(
        &self,
        req: Request<pb::CloseStdinRequest>,
    ) -> Result<Response<pb::CloseStdinResponse>, Status> {
        let proc = self.shim.proc(&req.into_inner().exec_id).map_err(status)?;
        proc.close_stdin().await.map_err(status)?;
        Ok(Response::new(pb::CloseStdinResponse {}))
    }

    async fn resize(
        &self,
        req: Request<pb::ResizeRequest>,
    ) -> Result<Response<pb::ResizeResponse>, Status> {
        let r = req.into_inner();
        let (w, h) = (
            u16::try_from(r.width).map_err(|_| Status::invalid_argument("width too large"))?,
            u16::try_from(r.height).map_err(|_| Status::invalid_argument("height too large"))?,
        );
        let proc = self.shim.proc(&r.exec_id).map_err(status)?;
        proc.resize(w, h).map_err(status)?;
        Ok(Response::new(pb::ResizeResponse {}))
    }

    async fn exec(
        &self,
        req: Request<pb::ExecRequest>,
    ) -> Result<Response<pb::ExecResponse>, Status> {
        let r = req.into_inner();
        let spec = r
            .process
            .ok_or_else(|| Status::invalid_argument("process is required"))?;
        let exec_id = self
            .shim
            .exec_create(&r.exec_id, convert::process(spec))
            .map_err(status)?;
        Ok(Response::new(pb::ExecResponse { exec_id }))
    }

    async fn exec_start(
        &self,
        req: Request<pb::ExecStartRequest>,
    ) -> Result<Response<pb::ExecStartResponse>, Status> {
        let id = req.into_inner().exec_id;
        let resp = match self.shim.exec_start(&id).map_err(status)? {
            Ok(pid) => pb::ExecStartResponse { pid, error: None },
            Err(e) => pb::ExecStartResponse {
                pid: 0,
                error: Some(convert::start_error(&e)),
            },
        };
        Ok(Response::new(resp))
    }

    async fn exec_state(
        &self,
        req: Request<pb::ExecStateRequest>,
    ) -> Result<Response<pb::ExecStateResponse>, Status> {
        let exec_id = req.into_inner().exec_id;
        let e = self.shim.exec(&exec_id).map_err(status)?;
        let (st, exit) = convert::status(&e.proc.status());
        Ok(Response::new(pb::ExecStateResponse {
            exec_id,
            pid: e.proc.pid(),
            status: st as i32,
            exit,
        }))
    }

    async fn exec_wait(
        &self,
        req: Request<pb::ExecWaitRequest>,
    ) -> Result<Response<pb::ExitStatus>, Status> {
        let e = self.shim.exec(&req.into_inner().exec_id).map_err(status)?;
        let st = e.proc.wait().await;
        Ok(Response::new(convert::exit(&st)))
    }

    async fn delete(
        &self,
        _: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let st = self.shim.delete().await.map_err(status)?;
        Ok(Response::new(pb::DeleteResponse {
            exit: Some(convert::exit(&st)),
        }))
    }

    async fn shutdown(
        &self,
        _: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.shim.shutdown().map_err(status)?;
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}

fn chunk(c: &crate::stdio::Chunk) -> pb::AttachChunk {
    pb::AttachChunk {
        stream: convert::stream(c.stream) as i32,
        data: c.data.to_vec(),
    }
}
