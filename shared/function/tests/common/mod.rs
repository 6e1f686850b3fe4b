//! A function's context on the demo inventory and an in-memory store, answering to a local
//! response_url whose messages the test reads.

use std::sync::Arc;

use axum::routing::post;
use axum::{Json, Router};
use iaas_config::{Policy, Secret};
use iaas_function::Context;
use iaas_slack::{Message, Responder};
use iaas_store::Store;
use iaas_vsphere::Vcenter;
use tokio::sync::mpsc;

/// A context on `vcenter` and `policy`, its answers going to a local response_url: that URL,
/// and the messages posted to it.
pub async fn context(vcenter: Arc<dyn Vcenter>, policy: Policy) -> (Context, String, mpsc::Receiver<Message>) {
    let (tx, rx) = mpsc::channel::<Message>(4);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let response_url = format!("http://{}/r", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/r",
        post(move |Json(m): Json<Message>| async move {
            tx.send(m).await.ok();
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut ctx = Context::new(vcenter, Store::connect("sqlite::memory:").await.unwrap(), policy, Secret::new("s"));
    ctx.responder = Responder::new(Some(&response_url));
    (ctx, response_url, rx)
}
