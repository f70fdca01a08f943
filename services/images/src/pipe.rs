//! Plumbing between async transports and the blocking code that reads and writes tars: bytes
//! arriving from a client read as a `Read`, a `Write` whose bytes leave in chunks, and the lines
//! of a JSONMessage stream (load, import, push). Every channel is bounded, so a slow reader
//! slows the writer instead of filling memory.

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{progress::Progress, spool::Reader};

/// How many bytes a [`ChunkWriter`] sends at once.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Bytes in the chunks they arrived in, so that a reader can keep them without copying them
/// (a build context held in memory).
pub(crate) trait ChunkSource {
    /// The next chunk (never empty), or `None` at the end of the input.
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>>;
}

impl<T: ChunkSource + ?Sized> ChunkSource for &mut T {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        (**self).next_chunk()
    }
}

/// A [`ChunkSource`] read as a `Read`: each chunk's bytes are copied out as they are asked
/// for. As a [`ChunkSource`] itself, it gives what is left of the chunk being read first.
pub(crate) struct ChunkReader<S> {
    src: S,
    current: Bytes,
}

impl<S> ChunkReader<S> {
    pub(crate) fn new(src: S) -> ChunkReader<S> {
        ChunkReader {
            src,
            current: Bytes::new(),
        }
    }
}

impl<S: ChunkSource> Read for ChunkReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.src.next_chunk()? {
                Some(c) => self.current = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl<S: ChunkSource> ChunkSource for ChunkReader<S> {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if !self.current.is_empty() {
            return Ok(Some(std::mem::take(&mut self.current)));
        }
        self.src.next_chunk()
    }
}

/// What an upload message brings.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Bytes of the upload.
    Data(Bytes),
    /// The upload's spool file holds this many bytes now ([`crate::spool`]).
    Spooled(u64),
}

/// The chunks of an async producer (a client upload), received by blocking code, with the
/// spool file that holds the upload's first bytes if it has one. An `Err` item ends the stream
/// with that error (the upload broke off); the channel closing is the end of input.
pub(crate) struct Received {
    rx: mpsc::Receiver<io::Result<Piece>>,
    spool: Option<Reader>,
}

impl Received {
    pub(crate) fn new(rx: mpsc::Receiver<io::Result<Piece>>, spool: Option<Reader>) -> Received {
        Received { rx, spool }
    }
}

impl ChunkSource for Received {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if let Some(c) = self.spool.as_mut().map(Reader::next).transpose()?.flatten() {
                return Ok(Some(c));
            }
            match self.rx.blocking_recv() {
                Some(Ok(Piece::Spooled(n))) => match self.spool.as_mut() {
                    Some(s) => s.written(n)?,
                    None => return Err(io::Error::other("spooled bytes without a spool file")),
                },
                Some(Ok(Piece::Data(b))) => {
                    if let Some(s) = self.spool.as_mut() {
                        s.close();
                    }
                    if !b.is_empty() {
                        return Ok(Some(b));
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(None),
            }
        }
    }
}

/// Bytes from an async producer (a client upload), read by blocking code.
pub(crate) type ChannelReader = ChunkReader<Received>;

/// Any reader as a [`ChunkSource`], in chunks of up to [`CHUNK`] bytes (the tests' contexts).
#[cfg(test)]
pub(crate) struct ReadChunks<R>(pub(crate) R);

#[cfg(test)]
impl<R: Read> ChunkSource for ReadChunks<R> {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf.into()));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The chunks `kept`, then what is left of `rest`.
pub(crate) struct Replay<'a> {
    kept: std::vec::IntoIter<Bytes>,
    rest: Option<&'a mut dyn ChunkSource>,
}

impl<'a> Replay<'a> {
    pub(crate) fn new(kept: Vec<Bytes>, rest: Option<&'a mut dyn ChunkSource>) -> Replay<'a> {
        Replay {
            kept: kept.into_iter(),
            rest,
        }
    }
}

impl ChunkSource for Replay<'_> {
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        match (self.kept.next(), self.rest.as_mut()) {
            (Some(c), _) => Ok(Some(c)),
            (None, Some(rest)) => rest.next_chunk(),
            (None, None) => Ok(None),
        }
    }
}

/// A blocking writer whose bytes go to an async consumer in chunks of [`CHUNK`] bytes. Writing
/// fails with `BrokenPipe` once the consumer is gone (the client went away).
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    pub(crate) fn new(tx: mpsc::Sender<Vec<u8>>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// One line of a JSONMessage stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    /// `status`, `id`, `progressDetail`.
    Progress(Progress),
    /// The `stream` key: text the CLI prints as is (`Loaded image: busybox:latest\n`).
    Stream(String),
    /// A tag pushed (the `aux` key of push's last line).
    Pushed(berth_proto::images::v1::Pushed),
}

/// Where the lines of a long operation go. Sending never fails the operation: a client that
/// went away only stops receiving.
#[derive(Debug, Clone)]
pub(crate) struct LineSink(mpsc::Sender<Line>);

impl LineSink {
    pub(crate) fn new(tx: mpsc::Sender<Line>) -> LineSink {
        LineSink(tx)
    }

    pub(crate) async fn status(&self, id: &str, status: impl Into<String>) {
        self.send(Line::Progress(Progress {
            id: id.to_owned(),
            status: status.into(),
            ..Progress::default()
        }))
        .await;
    }

    pub(crate) async fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send(Line::Progress(Progress {
            id: id.to_owned(),
            status: status.to_owned(),
            current: current as i64,
            total: total as i64,
        }))
        .await;
    }

    pub(crate) async fn send(&self, line: Line) {
        let _ = self.0.send(line).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_cross_in_bounded_chunks() {
        let (tx, rx) = mpsc::channel(2);
        let producer = tokio::spawn(async move {
            for part in [&b"hello "[..], b"", b"world"] {
                tx.send(Ok(Piece::Data(Bytes::copy_from_slice(part))))
                    .await
                    .unwrap();
            }
        });
        let text = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            ChunkReader::new(Received::new(rx, None))
                .read_to_string(&mut s)
                .unwrap();
            s
        })
        .await
        .unwrap();
        producer.await.unwrap();
        assert_eq!(text, "hello world");

        let (tx, mut rx) = mpsc::channel(4);
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChunkWriter::new(tx);
            w.write_all(&vec![7u8; CHUNK + 10]).unwrap();
            w.flush().unwrap();
        });
        let mut sizes = Vec::new();
        while let Some(c) = rx.recv().await {
            sizes.push(c.len());
        }
        writer.await.unwrap();
        assert_eq!(sizes, [CHUNK, 10]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_and_a_gone_consumer() {
        let (tx, rx) = mpsc::channel(1);
        tx.send(Err(io::Error::other("cut"))).await.unwrap();
        let err = tokio::task::spawn_blocking(move || {
            ChunkReader::new(Received::new(rx, None))
                .read_to_end(&mut Vec::new())
                .unwrap_err()
        })
        .await
        .unwrap();
        assert_eq!(err.to_string(), "cut");

        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let err = tokio::task::spawn_blocking(move || {
            let mut w = ChunkWriter::new(tx);
            w.write_all(b"x").unwrap();
            w.flush().unwrap_err()
        })
        .await
        .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
