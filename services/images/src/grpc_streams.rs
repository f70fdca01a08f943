//! The streaming plumbing of the gRPC shell: a client-streamed upload turned into a reader for
//! blocking code, a domain operation's lines turned into a stream of `StreamMessage`s (ending
//! with one carrying the error, if it failed), and bytes written by blocking code turned into a
//! stream of `DataChunk`s.

use std::{future::Future, io, pin::Pin};

use berth_errors::{HasKind, status_from};
use berth_proto::images::v1 as pb;
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::{
    ImagesError,
    pipe::{ChannelReader, ChunkReader, ChunkWriter, Line, LineSink, Piece, Received},
    progress::Progress,
};

pub(crate) type MessageStream =
    Pin<Box<dyn Stream<Item = Result<pb::StreamMessage, Status>> + Send>>;
pub(crate) type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::DataChunk, Status>> + Send>>;

/// How many pieces wait between a producer and its consumer.
const DEPTH: usize = 16;

fn progress(p: Progress) -> pb::Progress {
    pb::Progress {
        id: p.id,
        status: p.status,
        current: p.current,
        total: p.total,
        error: String::new(),
        error_kind: String::new(),
    }
}

fn message(line: Line) -> pb::StreamMessage {
    match line {
        Line::Progress(p) => pb::StreamMessage {
            progress: Some(progress(p)),
            ..Default::default()
        },
        Line::Stream(s) => pb::StreamMessage {
            stream: s,
            ..Default::default()
        },
        Line::Pushed(p) => pb::StreamMessage {
            pushed: Some(p),
            ..Default::default()
        },
    }
}

/// The message that ends a failed operation's stream.
fn failure(e: &ImagesError) -> pb::StreamMessage {
    pb::StreamMessage {
        progress: Some(pb::Progress {
            error: e.to_string(),
            error_kind: e.kind().as_str().to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs `op` with a sink for its lines; the lines, then the error if it fails, are the stream.
pub(crate) fn lines<F, Fut>(op: F) -> MessageStream
where
    F: FnOnce(LineSink) -> Fut,
    Fut: Future<Output = Result<(), ImagesError>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Line>(64);
    let (out_tx, out_rx) = mpsc::channel(64);
    let work = op(LineSink::new(tx));
    tokio::spawn(async move {
        let forward = {
            let out_tx = out_tx.clone();
            async move {
                while let Some(l) = rx.recv().await {
                    let _ = out_tx.send(Ok(message(l))).await;
                }
            }
        };
        let (result, ()) = tokio::join!(work, forward);
        if let Err(e) = result {
            let _ = out_tx.send(Ok(failure(&e))).await;
        }
    });
    Box::pin(ReceiverStream::new(out_rx))
}

/// Runs blocking `f` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImagesError> + Send + 'static,
) -> Result<T, ImagesError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ImagesError::store)?
}

/// What one upload message brings: how many bytes its spool file holds now (0: not said),
/// then bytes; or that the upload broke off.
pub(crate) type Part = Result<(u64, Bytes), String>;

/// The bytes of a client-streamed upload, starting with `first`, as a reader for blocking code;
/// `spool` is the file its first bytes are handed over in, if any. The upload breaking off (the
/// stream failing, or a message saying so) is a read error; the reader being dropped stops the
/// upload.
pub(crate) fn upload<T: Send + 'static>(
    first: (u64, Bytes),
    mut rest: Streaming<T>,
    part: fn(T) -> Part,
    spool: Option<crate::spool::Reader>,
) -> ChannelReader {
    let (tx, rx) = mpsc::channel::<io::Result<Piece>>(DEPTH);
    tokio::spawn(async move {
        let mut next = Ok(first);
        loop {
            let (spooled, data) = match next {
                Ok(p) => p,
                Err(e) => {
                    let e = io::Error::other(format!("the upload broke off: {e}"));
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if spooled != 0 && tx.send(Ok(Piece::Spooled(spooled))).await.is_err() {
                return;
            }
            if !data.is_empty() && tx.send(Ok(Piece::Data(data))).await.is_err() {
                return;
            }
            next = match rest.message().await {
                Ok(Some(m)) => part(m),
                Ok(None) => return,
                Err(s) => Err(s.message().to_owned()),
            };
        }
    });
    ChunkReader::new(Received::new(rx, spool))
}

/// A message of an upload that carries only bytes (`load`, `import`).
pub(crate) fn data_part(data: Bytes, upload_error: String) -> Part {
    if upload_error.is_empty() {
        Ok((0, data))
    } else {
        Err(upload_error)
    }
}

/// Runs blocking `write` with a writer whose bytes become the stream; if it fails, the stream
/// ends with its error (the client sees a broken transfer, never a short one as if complete).
pub(crate) fn chunks(
    write: impl FnOnce(ChunkWriter) -> Result<(), ImagesError> + Send + 'static,
) -> ChunkStream {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let (out_tx, out_rx) = mpsc::channel(DEPTH);
    let writer = tokio::task::spawn_blocking(move || write(ChunkWriter::new(tx)));
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if out_tx.send(Ok(pb::DataChunk { data })).await.is_err() {
                // The client went away: the writer fails on its next chunk.
                return;
            }
        }
        let err = match writer.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(e) => ImagesError::store(e),
        };
        tracing::error!(error = %err, "writing an archive");
        let _ = out_tx.send(Err(status_from(&err))).await;
    });
    Box::pin(ReceiverStream::new(out_rx))
}
