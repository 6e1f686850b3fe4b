//! OpenTelemetry traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_TRACES_ENDPOINT`) is set,
//! every span is also exported over OTLP/HTTP (protobuf) to that collector; unset, nothing is
//! built and spans cost what they always did. The W3C trace context crosses from the gateway to
//! the function inside the signed invocation ([`traceparent`], [`continue_trace`]), so a
//! command's gateway and function spans are one trace.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

fn configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|url| !url.trim().is_empty()))
}

/// The layer that exports spans, when a collector is configured.
pub(crate) fn layer<S>() -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if !configured() {
        return None;
    }
    // The exporter reads the OTEL_EXPORTER_OTLP_* settings itself (endpoint, headers, timeout).
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: the OTLP exporter could not be built ({e}); spans are not exported.");
            return None;
        }
    };
    let mut resource = Resource::builder();
    // OTEL_SERVICE_NAME wins; else the binary's name (iaas-gateway, iaas-power, iaas …).
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name());
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    // A Lambda instance is frozen between invocations: export each span as it ends.
    let provider = if crate::on_lambda() { builder.with_simple_exporter(exporter) } else { builder.with_batch_exporter(exporter) }.build();
    let tracer = provider.tracer("iaas");
    let _ = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

fn service_name() -> String {
    std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).unwrap_or_else(|| "iaas".to_string())
}

/// The current span's trace context as a W3C `traceparent`, for an invocation; `None` when no
/// collector is configured.
pub fn traceparent() -> Option<String> {
    PROVIDER.get()?;
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace `traceparent` names (the gateway's), when exporting.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let (Some(_), Some(parent)) = (PROVIDER.get(), traceparent) else { return };
    let carrier = HashMap::from([("traceparent".to_string(), parent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}

/// Sends the spans still buffered; called once the server has stopped.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.force_flush() {
            tracing::warn!(error = %e, "could not export the last spans");
        }
    }
}
