//! Reading the event stream: from a point in time (`since`) or from now, surviving NATS
//! restarts by resuming after the last stream sequence seen.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use berth_types::Event;
use futures::StreamExt;

use crate::{Bus, publisher::ensure_stream, subjects};

/// Where a cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Events stored from now on.
    Now,
    /// Events stored at or after this time (nanoseconds since the epoch).
    Since(i128),
}

/// What the cursor yields.
#[derive(Debug)]
pub enum Next {
    /// An event, in stream order.
    Event(Box<Event>),
    /// Every event stored when the cursor reached the end has been yielded.
    CaughtUp,
}

/// A position in the event stream.
pub struct EventCursor {
    bus: Bus,
    policy: DeliverPolicy,
    messages: Option<jetstream::consumer::pull::Ordered>,
    caught_up_sent: bool,
    caught_up_due: bool,
    /// The stream's last sequence when the cursor first opened: `CaughtUp` is due once it has
    /// been yielded, whatever the messages' own pending counts say.
    end: Option<u64>,
}

impl std::fmt::Debug for EventCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventCursor")
            .field("policy", &self.policy)
            .finish()
    }
}

/// A cursor over stored events starting at `start`. Nothing is contacted until `next`.
pub fn event_cursor(bus: &Bus, start: Start) -> EventCursor {
    let policy = match start {
        Start::Now => DeliverPolicy::New,
        Start::Since(nanos) => match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => DeliverPolicy::ByStartTime { start_time: t },
            Err(_) => DeliverPolicy::All,
        },
    };
    EventCursor {
        bus: bus.clone(),
        policy,
        messages: None,
        caught_up_sent: false,
        caught_up_due: false,
        end: None,
    }
}

impl EventCursor {
    /// The next event, or `CaughtUp` once when the stored history is exhausted. Waits (retrying)
    /// while NATS is unreachable; callers bound the wait themselves.
    pub async fn next(&mut self) -> Next {
        let mut backoff = Duration::from_millis(50);
        loop {
            if self.caught_up_due {
                self.caught_up_due = false;
                return Next::CaughtUp;
            }
            if self.messages.is_none() {
                match self.open().await {
                    Ok((messages, pending)) => {
                        self.messages = Some(messages);
                        if pending == 0 && !self.caught_up_sent {
                            self.caught_up_sent = true;
                            self.caught_up_due = true;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "event stream not readable yet");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                }
            }
            let Some(messages) = self.messages.as_mut() else {
                continue;
            };
            match messages.next().await {
                Some(Ok(msg)) => {
                    let Ok(info) = msg.info() else { continue };
                    let (seq, pending) = (info.stream_sequence, info.pending);
                    self.policy = DeliverPolicy::ByStartSequence {
                        start_sequence: seq + 1,
                    };
                    let at_end = pending == 0 || self.end.is_some_and(|end| seq >= end);
                    if at_end && !self.caught_up_sent {
                        self.caught_up_sent = true;
                        self.caught_up_due = true;
                    }
                    match serde_json::from_slice::<Event>(&msg.payload) {
                        Ok(ev) => return Next::Event(Box::new(ev)),
                        Err(e) => tracing::warn!(error = %e, seq, "skipping a malformed event"),
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "event stream interrupted; resuming");
                    self.messages = None;
                }
                None => self.messages = None,
            }
        }
    }

    async fn open(&mut self) -> Result<(jetstream::consumer::pull::Ordered, u64), String> {
        let js = self.bus.jetstream();
        let stream = ensure_stream(&js).await?;
        // The stream's last sequence, at the first open only (a reopen resumes by sequence and
        // has its end already).
        if self.end.is_none() && !self.caught_up_sent {
            let last = stream
                .clone()
                .info()
                .await
                .map_err(|e| e.to_string())?
                .state
                .last_sequence;
            self.end = Some(last);
            if self.policy == DeliverPolicy::New {
                // Pin "now" to a sequence so a reconnect before the first event loses nothing.
                self.policy = DeliverPolicy::ByStartSequence {
                    start_sequence: last + 1,
                };
            }
        }
        let mut consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: subjects::EVENTS_ALL.to_owned(),
                deliver_policy: self.policy,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let pending = consumer
            .info()
            .await
            .map_err(|e| e.to_string())?
            .num_pending;
        let messages = consumer.messages().await.map_err(|e| e.to_string())?;
        Ok((messages, pending))
    }
}
