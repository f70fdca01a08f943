//! Request counts and latencies for a service's gRPC server:
//! `berth_grpc_requests_total{method,code}` and `berth_grpc_request_duration_seconds{method}`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use berth_telemetry::Metrics;
use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    histogram::{Histogram, exponential_buckets},
};

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram>,
}

impl GrpcMetricsLayer {
    pub fn register(metrics: &Metrics) -> GrpcMetricsLayer {
        let requests = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        metrics.register(
            "berth_grpc_requests",
            "gRPC requests served, by method and status code",
            requests.clone(),
        );
        metrics.register(
            "berth_grpc_request_duration_seconds",
            "Time to the response headers of gRPC requests, by method",
            duration.clone(),
        );
        GrpcMetricsLayer { requests, duration }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let start = Instant::now();
        let fut = self.inner.call(req);
        let layer = self.layer.clone();
        Box::pin(async move {
            let res = fut.await;
            // Errors answered at once carry grpc-status in the headers (trailers-only);
            // successful unary answers carry it in the trailers, so absent means OK.
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or_else(
                        || "OK".to_owned(),
                        |c| format!("{:?}", tonic::Code::from(c)),
                    ),
                Err(_) => "Unavailable".to_owned(),
            };
            layer
                .duration
                .get_or_create(&vec![("method", method.clone())])
                .observe(start.elapsed().as_secs_f64());
            layer
                .requests
                .get_or_create(&vec![("method", method), ("code", code)])
                .inc();
            res
        })
    }
}
