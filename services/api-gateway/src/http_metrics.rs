//! `berth_http_requests_total{method,route,code}` and
//! `berth_http_request_duration_seconds{method,route}` for the Docker API.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use berth_telemetry::Metrics;
use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    histogram::{Histogram, exponential_buckets},
};

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram>,
}

impl HttpMetrics {
    pub(crate) fn register(metrics: &Metrics) -> HttpMetrics {
        let requests = Family::<Labels, Counter>::default();
        let duration = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        metrics.register(
            "berth_http_requests",
            "Docker API requests, by method, route and status code",
            requests.clone(),
        );
        metrics.register(
            "berth_http_request_duration_seconds",
            "Time to the response headers of Docker API requests, by method and route",
            duration.clone(),
        );
        HttpMetrics { requests, duration }
    }
}

/// Records one request; the route is the matched template, so IDs do not explode the labels.
pub(crate) async fn record(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    m.duration
        .get_or_create(&vec![("method", method.clone()), ("route", route.clone())])
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&vec![
            ("method", method),
            ("route", route),
            ("code", res.status().as_u16().to_string()),
        ])
        .inc();
    res
}
