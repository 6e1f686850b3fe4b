//! Traces over OTLP: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `iaas serve` exports its spans to
//! the collector, and a command's gateway span and the function's span (joined through the
//! invocation's `traceparent`) are one trace. The collector is a local receiver of OTLP/HTTP
//! that decodes the protocol's protobuf messages and answers as the protocol documents.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::routing::post;
use axum::Router;
use common::Serve;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message as _;

#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    parent: Vec<u8>,
}

type Received = Arc<Mutex<Vec<Span>>>;

async fn traces(State(received): State<Received>, body: Bytes) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP ExportTraceServiceRequest");
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for s in scope.spans {
                received.lock().unwrap().push(Span {
                    service: service.clone(),
                    name: s.name,
                    trace_id: s.trace_id,
                    parent: s.parent_span_id,
                });
            }
        }
    }
    ([(header::CONTENT_TYPE, "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
}

#[tokio::test]
async fn a_commands_gateway_and_function_spans_are_one_trace() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/v1/traces", post(traces)).with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let serve = Serve::start_with(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector), ("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    assert!(serve.run("U1", "power off app-web-01").await.readable().contains("powered off"));

    // The batch exporter sends within its delay; wait for the function's span to arrive.
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = received.lock().unwrap().clone();
        if spans.iter().any(|s| s.name == "invocation") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let invocation = spans.iter().find(|s| s.name == "invocation").unwrap_or_else(|| panic!("no function span: {spans:#?}"));
    let ack = spans
        .iter()
        .find(|s| s.name == "http" && s.trace_id == invocation.trace_id && s.parent.is_empty())
        .unwrap_or_else(|| panic!("the function's span is not in the trace of a gateway request: {spans:#?}"));
    assert!(!invocation.parent.is_empty(), "the function's span has the gateway's as its ancestor");
    assert!(ack.service.contains("iaas"), "{ack:?}");
}
