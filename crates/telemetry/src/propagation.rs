//! W3C trace context (`traceparent`) in and out of gRPC metadata, HTTP headers and NATS headers,
//! so that one API call is one trace across the gateway and the services.

use std::collections::HashMap;

use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Writes the current span's context as header pairs through `set`.
pub fn inject_context(mut set: impl FnMut(&str, &str)) {
    let cx = tracing::Span::current().context();
    let mut map: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    for (k, v) in &map {
        set(k, v);
    }
}

/// Reads a context from headers through `get`.
pub fn extract_context(get: &dyn Fn(&str) -> Option<String>) -> Context {
    let map: HashMap<String, String> = [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|k| get(k).map(|v| (k.to_owned(), v)))
        .collect();
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&map))
}

/// Adds the current trace context to outgoing HTTP/gRPC headers.
pub fn inject_into_http(headers: &mut http::HeaderMap) {
    inject_context(|k, v| {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            headers.insert(name, value);
        }
    });
}

/// The trace context carried by incoming HTTP/gRPC headers.
pub fn extract_from_http(headers: &http::HeaderMap) -> Context {
    extract_context(&|k| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// Makes `span` a child of the trace the request headers carry, if any.
pub fn set_parent_from_http(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key(TRACEPARENT) {
        let _ = span.set_parent(extract_from_http(headers));
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    #[test]
    fn traceparent_round_trips_through_headers() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let mut headers = http::HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let cx = extract_from_http(&headers);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(
            !extract_from_http(&http::HeaderMap::new())
                .span()
                .span_context()
                .is_valid()
        );
    }
}
