//! The gateway's decisions (allowed and handed over, denied) on their way to the audit trail.
//!
//! Why not one INSERT before each ack, as before: with SQLite that single write halved the
//! gateway's throughput and tripled its p99 (bench/README.md), and the ack is on Slack's 3 s
//! clock. So a decision is queued on a bounded channel and one writer task inserts whatever is
//! queued in one transaction (one commit per burst, not per command). What keeps it trustworthy:
//!
//! - back-pressure, never unbounded memory or an unbounded wait: when [`QUEUE`] entries wait, the
//!   next request waits for room at most [`QUEUE_WAIT`], then writes its entry itself within
//!   [`DIRECT_WAIT`] (or logs it, below), so a stalled database cannot hold an ack past Slack's
//!   3 s;
//! - nothing lost silently: a batch that cannot be written is logged at error level, every entry
//!   with its request id, user, command and decision (the log is then the record); if the writer
//!   is gone, the entry is written directly;
//! - shutdown: [`AuditLog::flush`] returns once everything queued before it is written; the
//!   binaries call it after the server stopped taking requests (graceful SIGTERM), and tests
//!   call it before they read the trail;
//! - AWS Lambda freezes the process as soon as the response is sent, so there nothing may run
//!   after the ack: each entry is written before it, as before ([`AuditLog::new`] checks).
//!
//! A decision can reach the trail a few milliseconds after its ack; the function's own entries
//! for the same request (written later, after it ran) are unaffected.

use std::time::Duration;

use iaas_store::{AuditEntry, Store};
use tokio::sync::{mpsc, oneshot};

/// Entries that may wait for the writer.
pub const QUEUE: usize = 4096;
/// Entries per transaction at most.
pub const BATCH: usize = 256;
/// How long a decision waits for room in a full queue before it is written directly.
pub const QUEUE_WAIT: Duration = Duration::from_millis(250);
/// How long a direct write may take before the entry is logged instead.
pub const DIRECT_WAIT: Duration = Duration::from_secs(1);
/// How long [`AuditLog::flush`] waits for the writer at most.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

enum Msg {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

/// Where gateway decisions go; cheap to share (the REST API reads the same store).
pub struct AuditLog {
    store: Store,
    /// `None`: written before the ack (Lambda).
    queue: Option<mpsc::Sender<Msg>>,
}

impl AuditLog {
    /// Queued for one writer task, or written through on AWS Lambda. Needs a Tokio runtime.
    pub fn new(store: Store) -> AuditLog {
        if iaas_runtime::on_lambda() {
            AuditLog::write_through(store)
        } else {
            AuditLog::queued(store)
        }
    }

    /// Every entry written before [`record`](Self::record) returns.
    pub fn write_through(store: Store) -> AuditLog {
        AuditLog { store, queue: None }
    }

    /// Entries queued for a writer task spawned here.
    pub fn queued(store: Store) -> AuditLog {
        AuditLog::with_queue(store, QUEUE)
    }

    /// [`AuditLog::queued`] with room for `capacity` entries.
    pub fn with_queue(store: Store, capacity: usize) -> AuditLog {
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(writer(store.clone(), rx));
        AuditLog { store, queue: Some(tx) }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends one decision: queued (waiting at most [`QUEUE_WAIT`] for room), or written now
    /// (within [`DIRECT_WAIT`]); an entry that cannot be written is logged with what identifies it.
    pub async fn record(&self, entry: AuditEntry) {
        let entry = match &self.queue {
            Some(queue) => match queue.send_timeout(Msg::Entry(entry), QUEUE_WAIT).await {
                Ok(()) => return,
                Err(mpsc::error::SendTimeoutError::Timeout(Msg::Entry(entry))) => {
                    tracing::warn!("the audit queue is full; writing the entry directly");
                    entry
                }
                Err(mpsc::error::SendTimeoutError::Closed(Msg::Entry(entry))) => {
                    tracing::error!("the audit writer is gone; writing the entry directly");
                    entry
                }
                Err(_) => return,
            },
            None => entry,
        };
        match tokio::time::timeout(DIRECT_WAIT, self.store.audit(&entry)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => lost(&e.to_string(), std::slice::from_ref(&entry)),
            Err(_) => lost("the database did not answer in time", std::slice::from_ref(&entry)),
        }
    }

    /// Returns once every entry recorded before this call is written (or logged as lost), or
    /// after 10 s.
    pub async fn flush(&self) {
        let Some(queue) = &self.queue else { return };
        let (done, written) = oneshot::channel();
        if queue.send(Msg::Flush(done)).await.is_err() {
            return;
        }
        if tokio::time::timeout(FLUSH_WAIT, written).await.is_err() {
            tracing::error!(wait = ?FLUSH_WAIT, "the audit writer did not finish in time; queued decisions may be missing from the trail");
        }
    }
}

/// The single writer: takes what is queued (up to [`BATCH`]), writes it in one transaction,
/// then answers the flushes that were queued with it. Ends when every sender is gone.
async fn writer(store: Store, mut rx: mpsc::Receiver<Msg>) {
    let mut msgs = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while rx.recv_many(&mut msgs, BATCH).await > 0 {
        for msg in msgs.drain(..) {
            match msg {
                Msg::Entry(e) => batch.push(e),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        if !batch.is_empty() {
            let result = if batch.len() == 1 { store.audit(&batch[0]).await } else { store.audit_batch(&batch).await };
            if let Err(e) = result {
                lost(&e.to_string(), &batch);
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Entries that could not be written go to the log, each with what identifies it.
fn lost(error: &str, entries: &[AuditEntry]) {
    tracing::error!(error = %error, entries = entries.len(), "could not append to the audit trail; the entries follow");
    for e in entries {
        tracing::error!(
            request_id = %e.request_id, actor = %e.actor, command = %e.command, stage = %e.stage,
            decision = %e.decision, reason = %e.reason, at_ms = e.at_ms,
            "audit entry not written"
        );
    }
}
