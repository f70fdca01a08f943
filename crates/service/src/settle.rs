//! dockerd logs a call's events before the call returns, and clients rely on it (`docker
//! events --until now` right after a `docker cp` shows the `archive-path`). A Berth service
//! writes its events to its store's outbox and publishes them from there, a moment later; so
//! its gRPC server holds the end of every response (the trailers, after the last message of a
//! stream) until the events committed so far are stored in NATS, for at most a short bound and
//! not at all while NATS is unreachable (the events then wait in the outbox, as before).
//! A service may name calls it answers at once ([`SettleEventsLayer::answering_first`]): their
//! events are settled by the reader of the history (`berth_bus::settle`), which every
//! service answers.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use berth_bus::EventPublisher;
use bytes::Bytes;
use http_body::{Body, Frame};

/// How long a response waits for its events to be stored.
pub const SETTLE_BOUND: Duration = Duration::from_secs(1);

/// Ends responses only once the events committed before their end are stored.
#[derive(Clone, Debug)]
pub struct SettleEventsLayer {
    events: EventPublisher,
    bound: Duration,
    /// The gRPC paths (`/package.Service/Method`) answered without waiting.
    first: std::sync::Arc<[String]>,
}

impl SettleEventsLayer {
    pub fn new(events: EventPublisher, bound: Duration) -> SettleEventsLayer {
        SettleEventsLayer {
            events,
            bound,
            first: std::sync::Arc::new([]),
        }
    }

    /// The calls at `paths` (`/package.Service/Method`) are answered without waiting for
    /// their events to be stored.
    pub fn answering_first(mut self, paths: &[String]) -> SettleEventsLayer {
        self.first = paths.into();
        self
    }
}

impl<S> tower::Layer<S> for SettleEventsLayer {
    type Service = SettleEvents<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SettleEvents {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SettleEvents<S> {
    inner: S,
    layer: SettleEventsLayer,
}

impl<S, B, R> tower::Service<http::Request<B>> for SettleEvents<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Body<Data = Bytes> + Send + 'static,
{
    type Response = http::Response<SettledBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let first = self.layer.first.iter().any(|p| p == req.uri().path());
        let fut = self.inner.call(req);
        let layer = self.layer.clone();
        Box::pin(async move {
            let res = fut.await?;
            Ok(res.map(|body| SettledBody {
                inner: Box::pin(body),
                state: if first {
                    State::Passing
                } else {
                    State::Streaming(layer)
                },
            }))
        })
    }
}

type Settling = Pin<Box<dyn Future<Output = ()> + Send>>;

enum State {
    /// A call answered first: its body as it is.
    Passing,
    Streaming(SettleEventsLayer),
    /// The inner body ended (with these trailers, or none): waiting for the events.
    Settling(Settling, Option<Frame<Bytes>>),
    Done,
}

/// A response body whose end waits for the events.
pub struct SettledBody<B: Body> {
    inner: Pin<Box<B>>,
    state: State,
}

impl<B: Body> std::fmt::Debug for SettledBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettledBody").finish_non_exhaustive()
    }
}

impl<B> Body for SettledBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Every field is Unpin (the inner body is boxed).
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Passing => return this.inner.as_mut().poll_frame(cx),
                State::Streaming(layer) => {
                    let end = match ready!(this.inner.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) if frame.is_trailers() => Some(frame),
                        None => None,
                        other => return Poll::Ready(other),
                    };
                    let (events, bound) = (layer.events.clone(), layer.bound);
                    let settle: Settling = Box::pin(async move {
                        if !events.settled(bound).await {
                            tracing::debug!("answering before the call's events are stored");
                        }
                    });
                    this.state = State::Settling(settle, end);
                }
                State::Settling(settle, end) => {
                    ready!(settle.as_mut().poll(cx));
                    let end = end.take();
                    this.state = State::Done;
                    return Poll::Ready(end.map(Ok));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Never ended early: the end is what waits.
        match self.state {
            State::Passing => self.inner.is_end_stream(),
            State::Done => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// A publisher with no outbox and a bus that never connects: nothing to wait for.
    async fn publisher() -> EventPublisher {
        let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
            .await
            .unwrap();
        EventPublisher::spawn(bus, Default::default())
    }

    #[tokio::test]
    async fn only_the_calls_named_are_answered_first() {
        use tower::{Layer, Service};
        let layer = SettleEventsLayer::new(publisher().await, Duration::from_secs(1))
            .answering_first(&["/p.S/Quick".to_owned()]);
        let inner = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(
                http_body_util::Empty::<Bytes>::new(),
            ))
        });
        let mut svc = layer.layer(inner);
        for (path, first) in [("/p.S/Quick", true), ("/p.S/Slow", false)] {
            let req = http::Request::builder().uri(path).body(()).unwrap();
            let res = svc.call(req).await.unwrap();
            let passing = matches!(res.body().state, State::Passing);
            assert_eq!(passing, first, "{path}");
        }
    }

    #[tokio::test]
    async fn frames_pass_and_the_trailers_end_the_body() {
        // No outbox attached: nothing to wait for.
        let layer = SettleEventsLayer::new(publisher().await, Duration::from_secs(1));
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames: Vec<Result<_, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"a"))),
            Ok(Frame::trailers(trailers)),
        ];
        let inner = http_body_util::StreamBody::new(tokio_stream::iter(frames));
        let mut b = SettledBody {
            inner: Box::pin(inner),
            state: State::Streaming(layer),
        };
        let first = b.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "a");
        assert!(!b.is_end_stream());
        let end = b.frame().await.unwrap().unwrap();
        assert!(end.is_trailers());
        assert!(b.is_end_stream());
        assert!(b.frame().await.is_none());
    }
}
