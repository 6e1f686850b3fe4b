//! The server's limits on raw sockets: a half-sent header is closed at the header time-out, a
//! trickled body gets 408 at the body time-out, and connections over the cap get 503 at once.

use std::time::Duration;

use axum::routing::post;
use axum::Router;
use iaas_runtime::{serve_with, HttpLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(max_connections: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let limits = HttpLimits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        max_connections,
        ..HttpLimits::default()
    };
    let app = Router::new().route("/", post(|body: String| async move { format!("got {}", body.len()) }));
    tokio::spawn(serve_with(listener, app, limits, std::future::pending()));
    addr
}

/// Everything the server sends until it closes the connection (bounded against hanging).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut all)).await.expect("the server closed the connection").ok();
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn half_headers_are_closed_and_trickled_bodies_get_408() {
    let addr = start(16).await;
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\na").await.unwrap();

    assert!(!until_closed(&mut half).await.contains("got"));
    assert!(!until_closed(&mut idle).await.contains("got"));
    let answer = until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");

    // A whole request is served, and its keep-alive connection is closed once idle.
    let mut whole = TcpStream::connect(&addr).await.unwrap();
    whole.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").await.unwrap();
    let answer = until_closed(&mut whole).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("got 3"), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_get_503_at_once() {
    let addr = start(2).await;
    // Two connections served once each (so both are surely accepted), kept alive.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    let mut third = TcpStream::connect(&addr).await.unwrap();
    let answer = until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("Retry-After: 5"), "{answer}");
}

/// Every answer carries a request id: the one a proxy sent, or a fresh one per request.
#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let addr = start(16).await;
    let http = reqwest::Client::new();
    let ids = two_ids(&http, &addr).await;
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "a fresh id per request");
    assert!(uuid_like(&ids[0]), "{}", ids[0]);
    let kept = http.post(format!("http://{addr}/")).header("x-request-id", "proxy-7").body("x").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "proxy-7", "a proxy's id is kept");
}

async fn two_ids(http: &reqwest::Client, addr: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = http.post(format!("http://{addr}/")).body("x").send().await.unwrap();
        ids.push(res.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    ids
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}
