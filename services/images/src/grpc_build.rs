//! The gRPC shell of `Build`: the options and the context stream in; the context is received
//! and the Dockerfile parsed before the answer (their errors are a status, an HTTP error for
//! the client); then the build runs on a blocking thread and its lines stream out.

use std::{path::Path, pin::Pin, sync::Arc};

use berth_errors::status_from;
use berth_proto::images::v1 as pb;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    build::{
        self, BuildOut, BuildSpec,
        cancel::{BuildJobs, Cancel},
        runtime_runner::RuntimeRunner,
    },
    grpc_streams,
    service::ImageService,
    spool::Reader,
};

pub(crate) type BuildStream = Pin<Box<dyn Stream<Item = Result<pb::BuildMessage, Status>> + Send>>;

pub(crate) async fn build(
    domain: Arc<ImageService>,
    runtime: berth_service::Channel,
    jobs: Arc<BuildJobs>,
    labels: std::collections::HashMap<String, String>,
    spool_dir: &Path,
    req: Request<Streaming<pb::BuildRequest>>,
) -> Result<Response<BuildStream>, Status> {
    tracing::debug!("build: request received");
    let mut input = req.into_inner();
    let first = input.message().await?.unwrap_or_default();
    let spec =
        BuildSpec::from_pb(first.options.unwrap_or_default()).map_err(|e| status_from(&e))?;
    let spool = match first.spool.as_str() {
        "" => None,
        name => Some(Reader::open(spool_dir, name).map_err(|e| status_from(&e))?),
    };
    let reader = grpc_streams::upload(
        (first.spooled, first.data),
        input,
        |m| match m.upload_error {
            e if e.is_empty() => Ok((m.spooled, m.data)),
            e => Err(e),
        },
        spool,
    );
    let spec = Arc::new(spec);
    let prepared = {
        let (domain, spec) = (domain.clone(), spec.clone());
        grpc_streams::blocking(move || domain.prepare_build(&spec, reader))
            .await
            .map_err(|e| status_from(&e))?
    };
    tracing::debug!("build: context received and the Dockerfile parsed");
    let cancel = (!spec.build_id.is_empty()).then(|| jobs.register(&spec.build_id));
    let (tx, rx) = mpsc::channel::<pb::BuildMessage>(64);
    let rt = tokio::runtime::Handle::current();
    let guard = tx.clone();
    let output = tx.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut out = BuildOut::new(tx, spec.quiet);
        let runner = RuntimeRunner::new(runtime, rt.clone(), output, labels);
        match domain.run_build(&prepared, &spec, &mut out, &runner, &rt) {
            Ok(id) => out.done(&id),
            Err((e, code)) => out.failed(&e, code),
        }
        drop(runner);
        // The context's directory is removed after the answer: the client's stream ends as
        // the build's last line is sent.
        rt.spawn_blocking(move || drop(prepared));
    });
    // A build that died (a bug) ends with an error, never as if it had succeeded.
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "the build's thread failed");
            let line = pb::build_message::Line::Error(pb::BuildError {
                message: format!("the build failed unexpectedly: {e}"),
                kind: berth_types::ErrorKind::Internal.as_str().to_owned(),
                code: 0,
            });
            let _ = guard.send(pb::BuildMessage { line: Some(line) }).await;
        }
    });
    let (out_tx, out_rx) = mpsc::channel::<pb::BuildMessage>(64);
    tokio::spawn(forward(rx, out_tx, cancel));
    let stream = futures::StreamExt::map(ReceiverStream::new(out_rx), Ok);
    Ok(Response::new(Box::pin(stream)))
}

/// Relays the build's lines to the client until the build ends, the client goes away, or
/// `POST /build/cancel` cancels it. Either of the last two drops `rx`: the build sees its
/// output closed and stops, removing the running step's container (as moby's builder does
/// when its context is cancelled).
async fn forward(
    mut rx: mpsc::Receiver<pb::BuildMessage>,
    out: mpsc::Sender<pb::BuildMessage>,
    mut cancel: Option<Cancel>,
) {
    let cancelled = async {
        match cancel.as_mut() {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    if out.send(m).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            () = out.closed() => return,
            () = &mut cancelled => break,
        }
    }
    drop(rx);
    // moby's words when the client's context ends mid-build.
    let _ = out
        .send(build::message(pb::build_message::Line::Stream(
            "Build cancelled\n".to_owned(),
        )))
        .await;
    let _ = out
        .send(build::message(pb::build_message::Line::Error(
            pb::BuildError {
                message: "Build cancelled".to_owned(),
                kind: berth_types::ErrorKind::Internal.as_str().to_owned(),
                code: 0,
            },
        )))
        .await;
}

/// `POST /build/cancel`.
pub(crate) fn cancel(jobs: &BuildJobs, req: pb::CancelBuildRequest) -> pb::CancelBuildResponse {
    pb::CancelBuildResponse {
        cancelled: jobs.cancel(&req.id),
    }
}

/// `POST /build/prune`: the classic builder's cache is its intermediate images, which go with
/// the images they lead to; nothing is freed. Reported as moby's `PruneCache` does: a
/// `builder` `prune` event with the bytes reclaimed.
pub(crate) fn prune_cache(domain: &ImageService) -> pb::PruneBuildCacheResponse {
    let reclaimed: u64 = 0;
    let actor = berth_types::Actor {
        id: String::new(),
        attributes: [("reclaimed".to_owned(), reclaimed.to_string())].into(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    if let Ok(action) = "prune".parse() {
        domain.events.publish(&berth_types::Event::new(
            berth_types::EventType::Builder,
            action,
            actor,
            now,
        ));
    }
    pb::PruneBuildCacheResponse {
        space_reclaimed: reclaimed,
        caches_deleted: Vec::new(),
    }
}
