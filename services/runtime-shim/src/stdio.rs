//! A process's stdio on the shim's side: pumps that read stdout/stderr (or the pty master),
//! write the log and fan the chunks out to attached clients; and the stdin writer.

use std::{
    os::fd::{AsFd, OwnedFd},
    sync::{Arc, Mutex},
};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::{
    io::unix::AsyncFd,
    sync::{broadcast, watch},
};

use crate::logfile::LogSink;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout = 0,
    Stderr = 1,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// A piece of output; `data` empty and `eof` set when the stream closed.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub stream: StreamKind,
    pub data: Arc<[u8]>,
    pub eof: bool,
}

/// How much output of a process nobody has attached to yet is kept for the first attacher
/// (execs only: the main process's output is in its log).
const BACKLOG_MAX: usize = 256 * 1024;
const READ_BUF: usize = 8 * 1024;

/// Fans a process's output out to its attached clients.
pub struct Hub {
    tx: broadcast::Sender<Chunk>,
    inner: Mutex<HubInner>,
    closed: watch::Sender<bool>,
}

struct HubInner {
    open: u8,
    backlog: Option<(Vec<Chunk>, usize)>,
}

/// What a new attacher gets: the kept output, then the live chunks until `open` streams end.
pub struct Subscription {
    pub backlog: Vec<Chunk>,
    pub rx: broadcast::Receiver<Chunk>,
    pub open: u8,
}

impl Hub {
    pub fn new(open: u8, keep_backlog: bool) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(64);
        Arc::new(Hub {
            tx,
            inner: Mutex::new(HubInner {
                open,
                backlog: keep_backlog.then(|| (Vec::new(), 0)),
            }),
            closed: watch::Sender::new(open == 0),
        })
    }

    fn publish(&self, chunk: Chunk) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if chunk.eof {
            inner.open = inner.open.saturating_sub(1);
        }
        if let Some((kept, bytes)) = &mut inner.backlog {
            if *bytes + chunk.data.len() <= BACKLOG_MAX {
                *bytes += chunk.data.len();
                kept.push(chunk.clone());
            }
        } else {
            let _ = self.tx.send(chunk);
        }
        if inner.open == 0 {
            self.closed.send_replace(true);
        }
    }

    pub fn subscribe(&self) -> Subscription {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let backlog = inner.backlog.take().map(|(v, _)| v).unwrap_or_default();
        // A backlog that was taken already counted its eofs: report the streams still open
        // before it.
        let eofs = backlog.iter().filter(|c| c.eof).count() as u8;
        Subscription {
            backlog,
            rx: self.tx.subscribe(),
            open: inner.open + eofs,
        }
    }

    /// Ends every stream still open (a process that never started).
    pub fn close_all(&self) {
        let open = self.inner.lock().unwrap_or_else(|e| e.into_inner()).open;
        for _ in 0..open {
            self.publish(Chunk {
                stream: StreamKind::Stdout,
                data: Arc::from(&[][..]),
                eof: true,
            });
        }
    }

    /// Resolves once every output stream has ended.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

pub fn set_nonblocking(fd: &impl AsFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// Reads `fd` until EOF (or EIO, which a pty master reports once the last slave closed),
/// logging (when `log` is set) and publishing every chunk.
pub fn spawn_pump(
    fd: Arc<AsyncFd<OwnedFd>>,
    stream: StreamKind,
    hub: Arc<Hub>,
    log: Option<Arc<Mutex<LogSink>>>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let Ok(mut guard) = fd.readable().await else {
                break;
            };
            match guard.try_io(|inner| {
                nix::unistd::read(inner.get_ref(), &mut buf).map_err(std::io::Error::from)
            }) {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => {
                    if let Some(log) = &log {
                        let mut sink = log.lock().unwrap_or_else(|e| e.into_inner());
                        if let Err(e) = sink.feed(stream, &buf[..n]) {
                            eprintln!("berth-shim: writing the log: {e}");
                        }
                    }
                    hub.publish(Chunk {
                        stream,
                        data: Arc::from(&buf[..n]),
                        eof: false,
                    });
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(_)) => break,
                Err(_would_block) => {}
            }
        }
        if let Some(log) = &log {
            let mut sink = log.lock().unwrap_or_else(|e| e.into_inner());
            let _ = sink.close(stream);
            let _ = sink.sync();
        }
        hub.publish(Chunk {
            stream,
            data: Arc::from(&[][..]),
            eof: true,
        });
    });
}

/// Writes all of `data` to a non-blocking descriptor.
pub async fn write_all(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut guard = fd.writable().await?;
        match guard
            .try_io(|inner| nix::unistd::write(inner.get_ref(), data).map_err(std::io::Error::from))
        {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}

/// Registers `fd` with the reactor, non-blocking.
pub fn async_fd(fd: OwnedFd) -> std::io::Result<Arc<AsyncFd<OwnedFd>>> {
    set_nonblocking(&fd)?;
    Ok(Arc::new(crate::sys::register_fd(fd)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &[u8], eof: bool) -> Chunk {
        Chunk {
            stream: StreamKind::Stdout,
            data: Arc::from(data),
            eof,
        }
    }

    #[tokio::test]
    async fn backlog_goes_to_first_attacher() {
        let hub = Hub::new(2, true);
        hub.publish(chunk(b"early", false));
        let sub = hub.subscribe();
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.open, 2);
        let mut rx = sub.rx;
        hub.publish(chunk(b"late", false));
        assert_eq!(&*rx.recv().await.unwrap().data, b"late");
        hub.publish(chunk(b"", true));
        hub.publish(chunk(b"", true));
        hub.closed().await;
        assert_eq!(hub.subscribe().open, 0);
    }

    #[tokio::test]
    async fn pump_reads_to_eof() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let hub = Hub::new(1, false);
        let mut rx = hub.subscribe().rx;
        spawn_pump(async_fd(r).unwrap(), StreamKind::Stdout, hub.clone(), None);
        nix::unistd::write(&w, b"hi").unwrap();
        drop(w);
        let c = rx.recv().await.unwrap();
        assert_eq!(&*c.data, b"hi");
        assert!(rx.recv().await.unwrap().eof);
        hub.closed().await;
    }
}
