//! A request body relayed to a service as upload messages (docker load, import, build, the
//! archive of `PUT /containers/{id}/archive`), by a task, optionally through a spool file
//! ([`super::spool`]).

use std::collections::VecDeque;

use axum::body::Body;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{gather, spool};
use crate::backends::Upload;

/// What one upload message carries: bytes, the error the body broke off with, or how many
/// bytes the spool file holds now (0: not said).
#[derive(Debug, Default)]
pub(crate) struct Part {
    pub(crate) data: Bytes,
    pub(crate) upload_error: String,
    pub(crate) spooled: u64,
}

impl Part {
    fn data(data: Bytes) -> Part {
        Part {
            data,
            ..Default::default()
        }
    }

    fn spooled(n: u64) -> Part {
        Part {
            spooled: n,
            ..Default::default()
        }
    }

    fn broken(e: String) -> Part {
        Part {
            upload_error: e,
            ..Default::default()
        }
    }
}

/// The request body, relayed to a service as upload messages (`wrap(part)`) by a task. A body
/// that breaks off ends with a message carrying the error, so the service fails instead of
/// taking a short archive for a whole one. If the service fails before it has read everything,
/// [`Pump::finish`] reads the rest and throws it away, so that the client gets the error
/// response rather than a broken pipe.
pub(crate) struct Pump<T> {
    upload: Option<Upload<T>>,
    drain: Option<tokio::sync::oneshot::Sender<()>>,
    relay: Relay,
}

/// Where the relay runs: in the request's task while the call is pending (the body's chunks
/// then reach it without a hand-over between tasks), in a task of its own after.
enum Relay {
    Here(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>),
    Spawned(tokio::task::JoinHandle<()>),
    Done,
}

impl<T: Send + 'static> Pump<T> {
    /// Starts relaying `data` after `head`; with `spool`, the body goes into the spool file
    /// (whose name `head` carries) while it can, and the messages say how far it is written.
    pub(crate) fn start(
        data: impl Stream<Item = Result<Bytes, String>> + Send + 'static,
        head: T,
        wrap: fn(Part) -> T,
        mut spool: Option<spool::Writer>,
    ) -> Pump<T> {
        let (tx, rx) = tokio::sync::mpsc::channel::<T>(4);
        let (drain, mut drain_rx) = tokio::sync::oneshot::channel::<()>();
        let relay = Box::pin(async move {
            let mut data = std::pin::pin!(data);
            // A drain asked for stops the relay; the sender gone (success) does not.
            let mut armed = true;
            // Items to relay before reading the body again: its end or error read ahead while
            // gathering a message, or chunks given back by the spool file.
            let mut backlog: VecDeque<gather::Ahead> = VecDeque::new();
            loop {
                let item = match backlog.pop_front() {
                    Some(item) => item,
                    None => tokio::select! {
                        r = &mut drain_rx, if armed => {
                            if r.is_ok() {
                                break;
                            }
                            armed = false;
                            continue;
                        }
                        item = data.next() => item,
                    },
                };
                let (part, last) = match item {
                    // The end: what is taken for the spool file is written, and told.
                    None => match spool.as_mut().map(spool::Writer::flush) {
                        Some(Ok(Some(n))) => (Part::spooled(n), true),
                        Some(Err(unwritten)) => {
                            spool = None;
                            backlog.push_front(None);
                            give_back(&mut backlog, unwritten);
                            continue;
                        }
                        Some(Ok(None)) | None => return,
                    },
                    Some(Ok(b)) => match spool.as_mut() {
                        Some(w) => {
                            let over = match w.take(b) {
                                Ok(()) if !w.due() => continue,
                                Ok(()) => false,
                                // Past the limit: what is taken goes first, in the file.
                                Err(b) => {
                                    backlog.push_front(Some(Ok(b)));
                                    true
                                }
                            };
                            match w.flush() {
                                Ok(Some(n)) => {
                                    if over {
                                        spool = None;
                                    }
                                    (Part::spooled(n), false)
                                }
                                Ok(None) => {
                                    spool = None;
                                    continue;
                                }
                                Err(unwritten) => {
                                    spool = None;
                                    give_back(&mut backlog, unwritten);
                                    continue;
                                }
                            }
                        }
                        // Chunks given back go one by one: gathering would put chunks read
                        // now before them.
                        None if !backlog.is_empty() => (Part::data(b), false),
                        None => {
                            let (bytes, next) = gather::gather(b, &mut data);
                            backlog.extend(next);
                            (Part::data(bytes), false)
                        }
                    },
                    // The body broke off: say so, and there is nothing left to read.
                    Some(Err(e)) => (Part::broken(e), true),
                };
                let permit = tokio::select! {
                    r = &mut drain_rx, if armed => {
                        if r.is_ok() {
                            break;
                        }
                        armed = false;
                        tx.reserve().await
                    }
                    p = tx.reserve() => p,
                };
                // An error: the service stopped reading.
                let Ok(permit) = permit else { break };
                permit.send(wrap(part));
                if last {
                    return;
                }
            }
            drop(tx);
            // Unless the body's end or error was read already.
            if !backlog.iter().any(|i| !matches!(i, Some(Ok(_)))) {
                while let Some(Ok(_)) = data.next().await {}
            }
        });
        let upload: Upload<T> = Box::pin(
            futures::stream::once(async move { head })
                .chain(tokio_stream::wrappers::ReceiverStream::new(rx)),
        );
        Pump {
            upload: Some(upload),
            drain: Some(drain),
            relay: Relay::Here(relay),
        }
    }

    /// Makes the service call that takes the upload, relaying the body meanwhile; what is left
    /// of the relay when the call answers goes on in a task of its own.
    pub(crate) async fn call<R, F>(&mut self, call: impl FnOnce(Upload<T>) -> F) -> R
    where
        F: Future<Output = R>,
    {
        let (Some(upload), Relay::Here(mut relay)) = (
            self.upload.take(),
            std::mem::replace(&mut self.relay, Relay::Done),
        ) else {
            unreachable!("a pump makes one call");
        };
        let call = call(upload);
        tokio::pin!(call);
        let mut relaying = true;
        let answer = loop {
            tokio::select! {
                r = &mut call => break r,
                () = &mut relay, if relaying => relaying = false,
            }
        };
        if relaying {
            self.relay = Relay::Spawned(tokio::spawn(relay));
        }
        answer
    }

    /// Reads what is left of the request body, then returns.
    pub(crate) async fn finish(mut self) {
        if let Some(d) = self.drain.take() {
            let _ = d.send(());
        }
        match std::mem::replace(&mut self.relay, Relay::Done) {
            Relay::Here(relay) => relay.await,
            Relay::Spawned(task) => {
                let _ = task.await;
            }
            Relay::Done => {}
        }
    }
}

/// Puts `chunks` (given back by the spool file) first in the backlog, in order.
fn give_back(backlog: &mut VecDeque<gather::Ahead>, chunks: Vec<Bytes>) {
    for c in chunks.into_iter().rev() {
        backlog.push_front(Some(Ok(c)));
    }
}

/// A request body's chunks, its failure as text.
pub(crate) fn body_bytes(body: Body) -> impl Stream<Item = Result<Bytes, String>> + Send + 'static {
    body.into_data_stream()
        .map(|r| r.map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    /// The messages a service receives from a pump over `chunks`, and the relay's end.
    async fn relayed(
        chunks: Vec<Result<Bytes, String>>,
        spool: Option<spool::Writer>,
    ) -> Vec<Part> {
        let mut pump = Pump::start(futures::stream::iter(chunks), Part::default(), |p| p, spool);
        let got = pump.call(|upload| upload.collect::<Vec<_>>()).await;
        pump.finish().await;
        got.into_iter().skip(1).collect()
    }

    fn bytes(n: usize, v: u8) -> Result<Bytes, String> {
        Ok(Bytes::from(vec![v; n]))
    }

    #[tokio::test]
    async fn without_a_spool_the_bytes_go_in_messages() {
        let got = relayed(vec![bytes(3, 1), bytes(2, 2)], None).await;
        let data: Vec<u8> = got.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(data, [1, 1, 1, 2, 2]);
        assert!(
            got.iter()
                .all(|p| p.spooled == 0 && p.upload_error.is_empty())
        );
    }

    #[tokio::test]
    async fn a_spooled_body_is_told_every_announce_bytes_and_at_its_end() {
        let t = tempfile::tempdir().unwrap();
        let dir = spool::SpoolDir::for_tests(t.path());
        let (w, g) = dir.create().unwrap();
        let half = (spool::ANNOUNCE / 2) as usize;
        let got = relayed(vec![bytes(half, 1), bytes(half, 2), bytes(5, 3)], Some(w)).await;
        let said: Vec<u64> = got.iter().map(|p| p.spooled).collect();
        assert_eq!(said, [spool::ANNOUNCE, spool::ANNOUNCE + 5]);
        assert!(got.iter().all(|p| p.data.is_empty()));
        let file = std::fs::read(t.path().join(g.name())).unwrap();
        assert_eq!(file.len() as u64, spool::ANNOUNCE + 5);
        assert_eq!(file[file.len() - 1], 3);
    }

    #[tokio::test]
    async fn past_the_spool_limit_the_rest_goes_in_messages() {
        let t = tempfile::tempdir().unwrap();
        let dir = spool::SpoolDir::for_tests(t.path());
        let (w, _g) = dir.create_within(4).unwrap();
        let got = relayed(vec![bytes(3, 1), bytes(3, 2), bytes(1, 3)], Some(w)).await;
        assert_eq!(got[0].spooled, 3, "what the file holds, first");
        let data: Vec<u8> = got[1..].iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(data, [2, 2, 2, 3], "then the rest, in order");
        assert!(got[1..].iter().all(|p| p.spooled == 0));
    }

    #[tokio::test]
    async fn chunks_the_spool_file_could_not_take_go_in_messages_in_order() {
        let half = (spool::ANNOUNCE / 2) as usize;
        let chunks = vec![bytes(half, 1), bytes(half, 2), bytes(3, 3), bytes(2, 4)];
        let want: Vec<u8> = chunks
            .iter()
            .flat_map(|c| c.clone().unwrap().to_vec())
            .collect();
        let got = relayed(chunks, Some(spool::Writer::failing())).await;
        let data: Vec<u8> = got.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(data, want);
        assert!(got.iter().all(|p| p.spooled == 0));
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_ends_with_its_error() {
        let t = tempfile::tempdir().unwrap();
        let dir = spool::SpoolDir::for_tests(t.path());
        let (w, _g) = dir.create().unwrap();
        let got = relayed(vec![bytes(3, 1), Err("reset".to_owned())], Some(w)).await;
        assert_eq!(got.last().map(|p| p.upload_error.as_str()), Some("reset"));
    }
}
