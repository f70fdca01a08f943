//! OpenTelemetry: with `berth.otlp-endpoint` set, one API call is one trace across the gateway
//! and the service it called (trace context carried in gRPC metadata). The collector here is a
//! real OTLP/gRPC receiver, in the test process.

use std::sync::{Arc, Mutex};

use berth_testutil::{Engine, EngineOptions, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

/// One exported span, reduced to what the test checks.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace: String,
    attributes: String,
}

#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let trace: String = s.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    spans.push(Span {
                        service: service.clone(),
                        name: s.name.clone(),
                        trace,
                        attributes: format!("{:?}", s.attributes),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[test]
fn one_docker_call_is_one_trace_across_gateway_and_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let collector = Collector::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let svc = TraceServiceServer::new(collector.clone());
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let engine = Engine::up(EngineOptions {
        config: Some(
            serde_json::json!({"berth": {"otlp-endpoint": format!("http://127.0.0.1:{port}")}}),
        ),
        ..Default::default()
    });
    engine.docker_ok(&["info"]);

    let (gateway, runtime) = eventually("gateway and runtime spans of one trace", || {
        let spans = collector.spans.lock().unwrap().clone();
        let api = spans.iter().find(|s| {
            s.service.contains("berth-api-gateway")
                && s.name == "api"
                && s.attributes.contains("/info")
        })?;
        let rt = spans.iter().find(|s| {
            s.service.contains("berth-runtime")
                && s.name == "grpc"
                && s.trace == api.trace
                && s.attributes.contains("Runtime/Info")
        })?;
        Some((api.clone(), rt.clone()))
    });
    assert_eq!(gateway.trace, runtime.trace);
    let gateway_trace = gateway.trace;
    assert_ne!(gateway_trace, "0".repeat(32));
}
