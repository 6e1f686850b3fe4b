pub mod bind;
pub mod invocation;
pub mod postgres;
pub mod slack;
pub mod slapd;
pub mod socket_mode;
pub mod vcsim;

/// Serves `app` on a free loopback port for the rest of the test; its base URL
/// (`http://127.0.0.1:<port>`). For stand-ins of the peers that cannot run here.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
    let base = format!("http://{}", listener.local_addr().expect("the listener's address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}
