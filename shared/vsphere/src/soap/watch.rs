//! Keeping the VM index current, as vSphere clients do: a PropertyCollector of the client's
//! own (so its long poll never holds up the session's other reads), one PropertyFilter on
//! the session's VM ContainerView for `name` and `config.template`, and WaitForUpdatesEx
//! from version "" (the whole inventory once: the build) and then from each version it
//! returned (only what changed). It runs as one background task per client, started by the
//! first lookup; any error drops the index and builds it again (a lost session first logs
//! in again). Lookups that find the index missing read vCenter directly instead.
//!
//! [`Core::sync_index`] makes the index at least as new as the moment it was called: it
//! cancels the long poll (CancelWaitForUpdates) and waits for a round that started after
//! it, which asks with `maxWaitSeconds` 0 (one update calculation, no wait).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::envelope::{self, PropSpec};
use super::fault::Error;
use super::index::{parse_update_set, VmIndex, INDEX_PATHS};
use super::xml::{MoRef, Node};
use super::{session_lost, Core, Session};
use crate::VcError;

/// The long poll's `maxWaitSeconds`: vCenter answers at once when something changes, and
/// with nothing after this long (then the poll starts again).
const LONG_POLL_SECS: u64 = 60;
/// Pause before building again after an error, doubling up to the maximum.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Long polls cut short in a row (connection closed, time-out) asked again from the same
/// version before the index is rebuilt.
const MAX_DROPPED_POLLS: u32 = 3;
/// A sync sends CancelWaitForUpdates again after this long without an answer (the first may
/// have reached vCenter before the poll it was meant for).
const CANCEL_AGAIN: Duration = Duration::from_millis(1000);

/// The index and what drives it; lives in [`Core`].
#[derive(Default)]
pub(crate) struct Watch {
    /// None until built, and again after an error until rebuilt.
    index: RwLock<Option<VmIndex>>,
    /// Bumped whenever an index is installed or dropped, to wake waiters.
    changed: tokio::sync::Notify,
    /// Syncs asked for (a counter) and the last one a finished round covers.
    sync_asked: AtomicU64,
    synced: AtomicU64,
    synced_note: tokio::sync::Notify,
    /// The collector being polled and its session, for CancelWaitForUpdates.
    polling: Mutex<Option<(Arc<Session>, MoRef)>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    /// The last attempt to build failed and the task is pausing: lookups should not wait.
    failing: std::sync::atomic::AtomicBool,
    /// How long the last build took and how many VMs it read, for the benchmark.
    last_build: Mutex<Option<(Duration, usize)>>,
}

/// What the benchmark reports about the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    /// VMs and templates in the index now.
    pub entries: usize,
    /// Heap bytes it holds, roughly.
    pub approx_bytes: usize,
    /// The last build: WaitForUpdatesEx from version "" until the index was installed.
    pub build: Duration,
}

impl Watch {
    fn install(&self, index: VmIndex, took: Duration) {
        self.failing.store(false, Ordering::SeqCst);
        *self.last_build.lock().unwrap_or_else(|p| p.into_inner()) = Some((took, index.len()));
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(index);
        self.changed.notify_waiters();
    }

    fn drop_index(&self) {
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = None;
        *self.polling.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.changed.notify_waiters();
    }

    fn is_built(&self) -> bool {
        self.index.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    fn mark_synced(&self, asked: u64) {
        if self.synced.fetch_max(asked, Ordering::SeqCst) < asked {
            self.synced_note.notify_waiters();
        }
    }
}

impl Core {
    /// Reads the index, when there is one.
    pub(crate) fn with_index<R>(&self, f: impl FnOnce(&VmIndex) -> R) -> Option<R> {
        self.index.index.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(f)
    }

    /// Changes the index, when there is one.
    pub(crate) fn with_index_mut(&self, f: impl FnOnce(&mut VmIndex)) {
        if let Some(index) = self.index.index.write().unwrap_or_else(|p| p.into_inner()).as_mut() {
            f(index)
        }
    }

    /// Size and last build time of the index, once built.
    pub fn index_stats(&self) -> Option<IndexStats> {
        let (build, _) = (*self.index.last_build.lock().unwrap_or_else(|p| p.into_inner()))?;
        self.with_index(|ix| IndexStats { entries: ix.len(), approx_bytes: ix.approx_bytes(), build })
    }

    /// Starts the background task unless it runs.
    fn ensure_watching(&self) {
        let mut task = self.index.task.lock().unwrap_or_else(|p| p.into_inner());
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Some(core) = self.me.upgrade() else { return };
        *task = Some(tokio::spawn(async move { core.watch_forever().await }).abort_handle());
    }

    /// Stops the background task and drops the index (the client is going, or its session).
    pub(crate) fn stop_watching(&self) {
        if let Some(task) = self.index.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        self.index.drop_index();
    }

    /// Waits (within the configured timeout) until the index is built; false if it is not.
    pub(crate) async fn index_ready(&self) -> bool {
        self.ensure_watching();
        let deadline = tokio::time::Instant::now() + self.cfg.timeout;
        loop {
            let changed = self.index.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.index.is_built() {
                return true;
            }
            if self.index.failing.load(Ordering::SeqCst) {
                return false;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.index.is_built();
            }
        }
    }

    /// Makes the index at least as new as now; false if that could not be done in time.
    pub(crate) async fn sync_index(&self) -> bool {
        if !self.index_ready().await {
            return false;
        }
        let ticket = self.index.sync_asked.fetch_add(1, Ordering::SeqCst) + 1;
        let deadline = tokio::time::Instant::now() + self.cfg.timeout;
        loop {
            let synced = self.index.synced_note.notified();
            tokio::pin!(synced);
            synced.as_mut().enable();
            if self.index.synced.load(Ordering::SeqCst) >= ticket {
                return self.index.is_built();
            }
            if !self.index.is_built() {
                return false;
            }
            self.cancel_poll().await;
            let wake = (tokio::time::Instant::now() + CANCEL_AGAIN).min(deadline);
            if tokio::time::timeout_at(wake, synced).await.is_err() && tokio::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// CancelWaitForUpdates on the collector being polled; a failure is only logged (the
    /// poll then answers on its own, and an error there rebuilds the index).
    async fn cancel_poll(&self) {
        let polling = self.index.polling.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((session, collector)) = polling else { return };
        if let Err(e) = self.invoke(&session, "CancelWaitForUpdates", &collector, "").await {
            tracing::debug!(error = ?e, "CancelWaitForUpdates failed");
        }
    }

    /// The background task: build and follow; after an error, drop the index, pause, again.
    async fn watch_forever(self: Arc<Self>) {
        let mut pause = FIRST_RETRY;
        loop {
            let session = match self.session().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = ?e, "VM index: cannot log in to vCenter; trying again");
                    self.index.failing.store(true, Ordering::SeqCst);
                    self.index.changed.notify_waiters();
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY);
                    continue;
                }
            };
            let err = self.follow(&session, &mut pause).await;
            let polled = self.index.polling.lock().unwrap_or_else(|p| p.into_inner()).take();
            // A build that fails again and again (a vCenter refusing the filter) must not
            // make every lookup wait for it; one that ran for a while is rebuilt at once.
            self.index.failing.store(!self.index.is_built(), Ordering::SeqCst);
            self.index.drop_index();
            if session_lost(&err, &session) || collector_gone(&err) {
                tracing::info!("VM index: the vCenter session ended; logging in again and rebuilding");
                if self.relogin(&session).await.is_ok() {
                    continue;
                }
            } else {
                tracing::warn!(error = ?err, "VM index: following vCenter failed; rebuilding");
                // The session lives on, and so would the old collector and its filter.
                if let Some((session, collector)) = polled {
                    let _ = self.invoke(&session, "DestroyPropertyCollector", &collector, "").await;
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RETRY);
        }
    }

    /// Builds the index on `session` and keeps it current until an error, which it returns.
    async fn follow(&self, session: &Arc<Session>, pause: &mut Duration) -> Error {
        let started = Instant::now();
        let collector = match self.create_index_filter(session).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        *self.index.polling.lock().unwrap_or_else(|p| p.into_inner()) = Some((session.clone(), collector.clone()));
        let mut building = Some(VmIndex::default());
        let mut version = String::new();
        let mut dropped = 0;
        loop {
            let asked = self.index.sync_asked.load(Ordering::SeqCst);
            let quick = building.is_some() || asked > self.index.synced.load(Ordering::SeqCst);
            let wait = if quick { 0 } else { LONG_POLL_SECS };
            let body = envelope::wait_for_updates(&collector, &version, wait);
            let reply = self.post_within(body, Some(&session.cookie), Some(Duration::from_secs(wait) + self.cfg.timeout)).await;
            let reply = match reply {
                Ok(r) => r,
                // A sync cancelled the long poll: go round, now asking for one calculation.
                Err(e) if e.fault().is_some_and(|f| f.is("RequestCanceled")) => continue,
                // A proxy or the network cut the long poll: the collector and its version
                // live on in vCenter, so ask again from there before paying for a rebuild.
                Err(Error::Vc(VcError::Protocol(_) | VcError::Timeout { .. } | VcError::Unreachable { .. }))
                    if building.is_none() && dropped < MAX_DROPPED_POLLS =>
                {
                    dropped += 1;
                    tokio::time::sleep(FIRST_RETRY * dropped).await;
                    continue;
                }
                Err(e) => return e,
            };
            dropped = 0;
            // No returnval: nothing changed within the wait.
            if let Some(set) = reply.body.child("returnval") {
                version = set.text_of("version").unwrap_or_default().to_owned();
                let updates = parse_update_set(set);
                match building.as_mut() {
                    Some(index) => updates.into_iter().for_each(|u| index.apply(u)),
                    None => self.with_index_mut(|index| updates.into_iter().for_each(|u| index.apply(u))),
                }
                // vCenter hands a large inventory over in parts; ask for the rest at once.
                if set.text_of("truncated") == Some("true") {
                    continue;
                }
            }
            if let Some(index) = building.take() {
                tracing::info!(vms = index.len(), ms = started.elapsed().as_millis() as u64, "VM index built");
                self.index.install(index, started.elapsed());
                *pause = FIRST_RETRY;
            }
            self.index.mark_synced(asked);
        }
    }

    /// CreatePropertyCollector, then a filter on the VM view; returns the collector.
    async fn create_index_filter(&self, session: &Arc<Session>) -> Result<MoRef, Error> {
        let content = self.content().await?;
        let view = self.vm_view(session).await?;
        let reply = self.invoke(session, "CreatePropertyCollector", &content.property_collector, "").await?;
        let collector = reply
            .child("returnval")
            .and_then(Node::moref)
            .ok_or_else(|| Error::Vc(VcError::Protocol("CreatePropertyCollector returned no collector".into())))?;
        let spec = PropSpec { ty: "VirtualMachine", paths: INDEX_PATHS };
        self.post(envelope::create_view_filter(&collector, &view, &spec), Some(&session.cookie)).await?;
        Ok(collector)
    }
}

/// The collector vanished: its session ended (vcsim forgets a terminated session's objects).
fn collector_gone(e: &Error) -> bool {
    e.fault().is_some_and(|f| f.is("ManagedObjectNotFound"))
}
