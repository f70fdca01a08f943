//! Hijacked connections of attach and exec start (`101`, `Upgrade: tcp`): the process's
//! output written raw (TTY) or multiplexed, and the client's bytes relayed as stdin, with
//! Docker's detach keys (TTY only) and half-close (read EOF is stdin EOF, not a disconnect).

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use berth_proto::runtime::v1 as pb;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    backends::{AttachStream, ContainersBackend},
    error::ApiError,
    routes::containers::frame,
};

/// Docker's default detach keys: ctrl-p, ctrl-q.
const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// An output stream still to be opened: an exec started once the client has its 101, so that
/// no output arrives in the same read as the response's headers (docker-py drops such bytes).
pub type Deferred = futures::future::BoxFuture<'static, Result<AttachStream, tonic::Status>>;

/// What a hijacked session relays.
pub struct Session {
    /// The process's output; `None` when the client wants none.
    pub output: Option<AttachStream>,
    /// Opens the output (and starts the process) once the connection is upgraded; when set,
    /// `output` is unused.
    pub deferred: Option<Deferred>,
    /// The process has a TTY: the detach keys apply.
    pub tty: bool,
    /// The output is written raw; otherwise multiplexed. An attach follows the container's
    /// TTY; an exec start follows its request's `Tty`, as moby's router does.
    pub raw: bool,
    /// The target of the client's input (the first chunk, without data); `None` when stdin
    /// is not attached.
    pub input: Option<pb::InputChunk>,
    /// On stdin EOF, close the process's stdin and keep streaming; otherwise end the session.
    pub close_stdin_on_eof: bool,
    /// The detach sequence; used with a TTY only.
    pub detach_keys: Vec<u8>,
}

impl Session {
    /// A session whose start already failed: the 101, then `error` in the stream.
    pub fn failed(raw: bool, error: tonic::Status) -> Session {
        Session {
            output: None,
            deferred: Some(Box::pin(async move { Err(error) })),
            tty: false,
            raw,
            input: None,
            close_stdin_on_eof: true,
            detach_keys: Vec::new(),
        }
    }
}

/// Docker's detach keys: `ctrl-p,ctrl-q`, `a`, `ctrl-@`, `ctrl-[` ...; empty means the
/// default.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, ApiError> {
    if s.trim().is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let bad = || ApiError::invalid(format!("Invalid detach keys ({s}) provided"));
    s.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let &[b] = c.as_bytes() else {
                    return Err(bad());
                };
                match b.to_ascii_lowercase() {
                    b @ b'a'..=b'z' => Ok(b - b'a' + 1),
                    b'@' => Ok(0),
                    b @ (b'[' | b'\\' | b']' | b'^' | b'_') => Ok(b - b'@'),
                    _ => Err(bad()),
                }
            } else if let &[b] = k.as_bytes() {
                Ok(b)
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// Finds the detach sequence in the input, holding back a partial match across reads (as
/// Docker's escape proxy does).
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// The bytes to forward, and whether the sequence is complete (the session detaches;
    /// nothing after it is forwarded).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Answers 101 and runs the session on the upgraded connection; without `Upgrade: tcp`,
/// answers 200 with the output only.
pub fn respond(
    backend: Arc<dyn ContainersBackend>,
    req: &mut axum::extract::Request,
    session: Session,
) -> Response {
    let content_type = if session.raw {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let raw = session.raw;
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        let output: AttachStream = match session.deferred {
            Some(start) => Box::pin(
                futures::stream::once(start)
                    .map(|r| match r {
                        Ok(s) => s,
                        // The start's error in the stream, as with the upgrade.
                        Err(e) => Box::pin(futures::stream::once(async move {
                            Ok(error_frame(e.message()))
                        })),
                    })
                    .flatten(),
            ),
            None => Box::pin(futures::stream::iter(session.output).flatten()),
        };
        let body = output.map(move |r| match r {
            Ok(f) => Ok(encode(raw, f)),
            Err(e) => Err(std::io::Error::other(e.message().to_owned())),
        });
        let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return res;
    }
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run(backend, hyper_util::rt::TokioIo::new(upgraded), session).await,
            Err(e) => tracing::warn!(error = %e, "hijack: upgrade"),
        }
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// The error of a start that failed after the 101, as moby's exec router writes it: its
/// message and CRLF to stdout, which is a stdout frame when the stream is multiplexed (raw
/// text there would break the client's demultiplexing).
fn start_error(raw: bool, message: &str) -> Bytes {
    encode(raw, error_frame(message))
}

fn error_frame(message: &str) -> pb::AttachFrame {
    pb::AttachFrame {
        stream: 1,
        data: format!("{message}\r\n").into_bytes(),
    }
}

fn encode(raw: bool, f: pb::AttachFrame) -> Bytes {
    if raw {
        Bytes::from(f.data)
    } else {
        frame(f.stream as u8, &f.data)
    }
}

/// The session: output to the client until it ends; the client's bytes to the process.
async fn run<IO>(backend: Arc<dyn ContainersBackend>, io: IO, session: Session)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let Session {
        mut output,
        deferred,
        tty,
        raw,
        input,
        close_stdin_on_eof,
        detach_keys,
    } = session;
    let (mut rd, mut wr) = tokio::io::split(io);
    if let Some(start) = deferred {
        match start.await {
            Ok(s) => output = Some(s),
            Err(e) => {
                // The 101 is out: the error goes in the stream, as dockerd writes it.
                let _ = wr.write_all(&start_error(raw, e.message())).await;
                let _ = wr.shutdown().await;
                return;
            }
        }
    }
    let has_output = output.is_some();
    let mut output = output.unwrap_or_else(|| Box::pin(futures::stream::empty()));
    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<pb::InputChunk>(16);
    let mut reading = false;
    if let Some(target) = input {
        reading = in_tx.try_send(target).is_ok();
        tokio::spawn(async move {
            if let Err(e) = backend.input(in_rx).await {
                tracing::debug!(error = %e, "hijack: stdin");
            }
        });
    }
    let mut scanner = DetachScanner::new(if tty { detach_keys } else { Vec::new() });
    let mut buf = vec![0u8; 32 * 1024];
    while has_output || reading {
        tokio::select! {
            f = output.next(), if has_output => match f {
                Some(Ok(f)) => {
                    if wr.write_all(&encode(raw, f)).await.is_err() || wr.flush().await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            n = rd.read(&mut buf), if reading => match n {
                Ok(0) | Err(_) => {
                    reading = false;
                    if !close_stdin_on_eof {
                        break;
                    }
                    let _ = in_tx.send(pb::InputChunk { close: true, ..Default::default() }).await;
                }
                Ok(n) => {
                    let (data, detached) = scanner.feed(&buf[..n]);
                    if !data.is_empty() {
                        let _ = in_tx.send(pb::InputChunk { data, ..Default::default() }).await;
                    }
                    if detached {
                        let _ = in_tx.send(pb::InputChunk { detach: true, ..Default::default() }).await;
                        break;
                    }
                }
            },
        }
    }
    drop(in_tx);
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_start_error_is_framed_unless_raw() {
        assert_eq!(&start_error(true, "no such exec")[..], b"no such exec\r\n");
        let framed = start_error(false, "no such exec");
        assert_eq!(&framed[..8], &[1, 0, 0, 0, 0, 0, 0, 14]);
        assert_eq!(&framed[8..], b"no such exec\r\n");
    }

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,a").unwrap(),
            vec![0, 27, b'a']
        );
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn scanner_finds_the_sequence_across_reads() {
        let mut s = DetachScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut s = DetachScanner::new(vec![16, 17]);
        // A partial match that fails is forwarded whole.
        assert_eq!(s.feed(b"\x10x"), (b"\x10x".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut s = DetachScanner::new(Vec::new());
        assert_eq!(s.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
