//! The HTTP server of every binary: hyper's HTTP/1 connection with a header (and keep-alive
//! idle) time-out, an accept loop that holds one permit per connection and answers 503 beyond
//! the cap, a time limit on reading the body and on the whole request, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::timeout::TimeoutLayer;

use crate::limits::HttpLimits;

/// Shed answers in flight at once; beyond it a connection is closed without one.
pub(crate) const SHEDDING: usize = 64;

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\nConnection: close\r\n\
Content-Length: 48\r\n\r\nThe server is busy. Please try again in a moment.";

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then lets the
/// requests in flight finish. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = limits.connection_cap();
    tracing::info!(connections = cap, open_files = ?crate::limits::open_files_limit(), "connection limit");
    // Outermost, so requests that time out are counted too.
    let app = crate::metrics::instrument(
        router
            .layer(middleware::from_fn_with_state(limits, read_body_in_time))
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout)),
    );
    let permits = Arc::new(Semaphore::new(cap));
    let shedding = Arc::new(Semaphore::new(SHEDDING));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors (or a peer gone before accept): wait for some to
                    // close instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Ok(shed) = shedding.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    busy(stream).await;
                    drop(shed);
                });
            }
            continue;
        };
        let service = app.clone().map_request(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Tells a client over the cap to come back later, without reading its request.
async fn busy(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(BUSY).await?;
        stream.shutdown().await
    })
    .await;
}

/// Reads the whole body within `body_timeout` (408 otherwise) and up to `max_body` (413), so a
/// body trickled in a byte at a time cannot hold a connection and a handler for long.
async fn read_body_in_time(State(limits): State<HttpLimits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limits.body_timeout, axum::body::to_bytes(body, limits.max_body)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(e)) if is_length_limit(&e) => (StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large.\n").into_response(),
        Ok(Err(_)) => (StatusCode::BAD_REQUEST, "The request body could not be read; send the request again.\n").into_response(),
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "The request body did not arrive in time; send the request again.\n").into_response(),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
