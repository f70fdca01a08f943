//! The call layer of `berth.shim.v1`: decode the request, call the domain, encode the answer.
//! The only place a `CallError` is built.

use std::sync::Arc;

use berth_shim_proto::{Call, CallError, Code, Method, StreamSender, v1 as pb};
use tokio::sync::broadcast::error::RecvError;

use crate::{convert, error::ShimError, shim::Shim};

fn call_error(e: ShimError) -> CallError {
    match e {
        ShimError::NotFound(m) => CallError::new(Code::NotFound, m),
        ShimError::Precondition(m) => CallError::new(Code::FailedPrecondition, m),
        ShimError::InvalidArgument(m) => CallError::new(Code::InvalidArgument, m),
        e => CallError::new(Code::Internal, e.chain()),
    }
}

/// Answers one call.
pub(crate) async fn handle(shim: &Arc<Shim>, call: Call) {
    match call.method() {
        Method::State => call.reply(Ok(state(shim))).await,
        Method::Start => {
            let error = shim.start().err().map(|e| convert::start_error(&e));
            let pid = shim.init().pid();
            call.reply(Ok(pb::StartResponse { pid, error })).await
        }
        Method::Kill => {
            let r = call.request().and_then(|r| kill(shim, r));
            call.reply(r).await
        }
        Method::Wait => {
            let e = shim.init().wait().await;
            call.reply(Ok(convert::exit(&e))).await
        }
        Method::Attach => attach(shim, call).await,
        Method::Write => {
            let r = async { write(shim, call.request()?).await }.await;
            call.reply(r).await
        }
        Method::CloseStdin => {
            let r = async { close_stdin(shim, call.request()?).await }.await;
            call.reply(r).await
        }
        Method::Resize => {
            let r = call.request().and_then(|r| resize(shim, r));
            call.reply(r).await
        }
        Method::Exec => {
            let r = call.request().and_then(|r| exec(shim, r));
            call.reply(r).await
        }
        Method::ExecStart => {
            let r = call.request().and_then(|r| exec_start(shim, r));
            call.reply(r).await
        }
        Method::ExecState => {
            let r = call.request().and_then(|r| exec_state(shim, r));
            call.reply(r).await
        }
        Method::ExecWait => {
            let r = async { exec_wait(shim, call.request()?).await }.await;
            call.reply(r).await
        }
        Method::Delete => {
            let r = shim.delete().await.map_err(call_error);
            let r = r.map(|st| pb::DeleteResponse {
                exit: Some(convert::exit(&st)),
            });
            call.reply(r).await
        }
        Method::Shutdown => {
            let r = shim.shutdown().map_err(call_error);
            call.reply(r.map(|()| pb::ShutdownResponse {})).await
        }
    }
}

fn state(shim: &Shim) -> pb::StateResponse {
    let init = shim.init();
    let (st, exit) = convert::status(&init.status());
    pb::StateResponse {
        id: shim.cfg.id.clone(),
        pid: init.pid(),
        status: st as i32,
        exit,
        bundle: shim.bundle.display().to_string(),
    }
}

fn kill(shim: &Shim, r: pb::KillRequest) -> Result<pb::KillResponse, CallError> {
    let sig =
        i32::try_from(r.signal).map_err(|_| CallError::new(Code::InvalidArgument, "bad signal"))?;
    shim.kill(&r.exec_id, sig, r.all).map_err(call_error)?;
    Ok(pb::KillResponse {})
}

/// Subscribes, answers OPEN (so the caller knows output from now on reaches it), then sends
/// the backlog and the live chunks until every output stream of the process has closed.
async fn attach(shim: &Shim, call: Call) {
    let sub = call
        .request::<pb::AttachRequest>()
        .and_then(|r| shim.proc(&r.exec_id).map_err(call_error))
        .map(|p| p.hub().subscribe());
    let Some((sub, mut out)) = call.open(sub).await else {
        return;
    };
    let mut open = sub.open;
    let mut live = sub.rx;
    for c in sub.backlog {
        if c.eof {
            open = open.saturating_sub(1);
        } else if send(&mut out, &c).await.is_err() {
            return;
        }
    }
    while open > 0 {
        match live.recv().await {
            Ok(c) if c.eof => open -= 1,
            Ok(c) => {
                if send(&mut out, &c).await.is_err() {
                    return;
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
    out.end().await;
}

async fn send(out: &mut StreamSender, c: &crate::stdio::Chunk) -> std::io::Result<()> {
    out.send(&pb::AttachChunk {
        stream: convert::stream(c.stream) as i32,
        data: c.data.to_vec(),
    })
    .await
}

async fn write(shim: &Shim, r: pb::WriteRequest) -> Result<pb::WriteResponse, CallError> {
    let proc = shim.proc(&r.exec_id).map_err(call_error)?;
    proc.write_stdin(&r.data).await.map_err(call_error)?;
    Ok(pb::WriteResponse {})
}

async fn close_stdin(
    shim: &Shim,
    r: pb::CloseStdinRequest,
) -> Result<pb::CloseStdinResponse, CallError> {
    let proc = shim.proc(&r.exec_id).map_err(call_error)?;
    proc.close_stdin().await.map_err(call_error)?;
    Ok(pb::CloseStdinResponse {})
}

fn resize(shim: &Shim, r: pb::ResizeRequest) -> Result<pb::ResizeResponse, CallError> {
    let too_large = |what: &str| CallError::new(Code::InvalidArgument, format!("{what} too large"));
    let w = u16::try_from(r.width).map_err(|_| too_large("width"))?;
    let h = u16::try_from(r.height).map_err(|_| too_large("height"))?;
    let proc = shim.proc(&r.exec_id).map_err(call_error)?;
    proc.resize(w, h).map_err(call_error)?;
    Ok(pb::ResizeResponse {})
}

fn exec(shim: &Shim, r: pb::ExecRequest) -> Result<pb::ExecResponse, CallError> {
    let spec = r
        .process
        .ok_or_else(|| CallError::new(Code::InvalidArgument, "process is required"))?;
    let exec_id = shim
        .exec_create(&r.exec_id, convert::process(spec))
        .map_err(call_error)?;
    Ok(pb::ExecResponse { exec_id })
}

fn exec_start(
    shim: &Arc<Shim>,
    r: pb::ExecStartRequest,
) -> Result<pb::ExecStartResponse, CallError> {
    Ok(match shim.exec_start(&r.exec_id).map_err(call_error)? {
        Ok(pid) => pb::ExecStartResponse { pid, error: None },
        Err(e) => pb::ExecStartResponse {
            pid: 0,
            error: Some(convert::start_error(&e)),
        },
    })
}

fn exec_state(shim: &Shim, r: pb::ExecStateRequest) -> Result<pb::ExecStateResponse, CallError> {
    let e = shim.exec(&r.exec_id).map_err(call_error)?;
    let (st, exit) = convert::status(&e.proc.status());
    Ok(pb::ExecStateResponse {
        exec_id: r.exec_id,
        pid: e.proc.pid(),
        status: st as i32,
        exit,
    })
}

async fn exec_wait(shim: &Shim, r: pb::ExecWaitRequest) -> Result<pb::ExitStatus, CallError> {
    let e = shim.exec(&r.exec_id).map_err(call_error)?;
    Ok(convert::exit(&e.proc.wait().await))
}
