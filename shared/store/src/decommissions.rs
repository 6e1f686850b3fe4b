//! Decommission requests: the VMs they retire, each VM's steps and what each step did, and
//! claims with a lease so exactly one worker runs a request at a time (a crashed worker's
//! request is resumed by another once its lease lapses).

use iaas_config::{DecommissionState, OnFailure, StepKind};
use sqlx::any::AnyRow;
use sqlx::Row;

use iaas_ids::{Moref, RequestId, UserId, VmName};

use crate::{now_ms, query_err, text_col, Backend, LeaseState, Store, StoreError};

iaas_config::text_enum! {
    /// One VM of a request: pending → running → done | failed | cancelled.
    pub enum DecommissionVmState as "decommissioned VM state" {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl DecommissionVmState {
    /// The runner still has work for it (a resume goes on from its first unfinished step).
    pub fn is_unfinished(self) -> bool {
        match self {
            DecommissionVmState::Pending | DecommissionVmState::Running => true,
            DecommissionVmState::Done | DecommissionVmState::Failed | DecommissionVmState::Cancelled => false,
        }
    }
}

iaas_config::text_enum! {
    /// One step of one VM: pending → running → done | skipped | warning | failed.
    pub enum DecommissionStepState as "decommission step state" {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Skipped = "skipped",
        /// It failed, but its plan says `on_failure = "warn"`.
        Warning = "warning",
        Failed = "failed",
    }
}

impl DecommissionStepState {
    /// Over and not to be run again (a failed or interrupted step is run again on a resume).
    pub fn is_settled(self) -> bool {
        match self {
            DecommissionStepState::Done | DecommissionStepState::Skipped | DecommissionStepState::Warning => true,
            DecommissionStepState::Pending | DecommissionStepState::Running | DecommissionStepState::Failed => false,
        }
    }
}

/// A request as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct Decommission {
    pub id: RequestId,
    pub requester: UserId,
    pub ticket: String,
    pub reason: String,
    pub state: DecommissionState,
    pub cancel_requested: bool,
    pub channel: String,
    pub response_url: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The Slack message showing its progress (`chat.update`), when there is one.
    pub progress_channel: String,
    pub progress_ts: String,
    /// The VMs' names, in request order.
    pub vm_names: Vec<VmName>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DecommissionVm {
    pub vm_index: i64,
    pub vm_moref: Moref,
    pub vm_name: VmName,
    pub os_family: String,
    pub facts_json: String,
    pub state: DecommissionVmState,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DecommissionStep {
    pub vm_index: i64,
    pub step_index: i64,
    pub kind: StepKind,
    pub name: String,
    pub on_failure: OnFailure,
    pub config_json: String,
    pub state: DecommissionStepState,
    pub message: String,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// How many times the step was started (more than one only after a resume or a retry).
    pub attempts: i64,
}

/// A request with everything it did.
#[derive(Clone, Debug, PartialEq)]
pub struct DecommissionDetail {
    pub request: Decommission,
    pub vms: Vec<DecommissionVm>,
    /// Ordered by VM, then step.
    pub steps: Vec<DecommissionStep>,
}

impl DecommissionDetail {
    pub fn steps_of(&self, vm_index: i64) -> impl Iterator<Item = &DecommissionStep> {
        self.steps.iter().filter(move |s| s.vm_index == vm_index)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewDecommission {
    pub id: RequestId,
    pub requester: UserId,
    pub ticket: String,
    pub reason: String,
    pub channel: String,
    pub response_url: String,
    pub vms: Vec<NewDecommissionVm>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewDecommissionVm {
    pub vm_moref: Moref,
    pub vm_name: VmName,
    pub os_family: String,
    pub facts_json: String,
    pub steps: Vec<NewDecommissionStep>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewDecommissionStep {
    pub kind: StepKind,
    pub name: String,
    pub on_failure: OnFailure,
    pub config_json: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecommissionFilter {
    pub requester: Option<UserId>,
    pub state: Option<DecommissionState>,
    /// Requests covering a VM with exactly this name (case-insensitive).
    pub vm_name: Option<String>,
    pub since_ms: Option<i64>,
    /// Requests whose ticket contains this text (case-insensitive).
    pub ticket: Option<String>,
    /// Requests by any of these requesters (a person's Slack id and e-mail); empty = anyone.
    pub requesters: Vec<UserId>,
}

/// `text` matched literally by `LIKE … ESCAPE '\'`.
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// What a cancel did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was waiting for its confirmation and is now cancelled; nothing ran.
    Cancelled,
    /// It is running; the runner stops before its next step.
    Requested,
    /// It had already ended in this state.
    Finished(DecommissionState),
    Unknown,
}

const COLUMNS: &str = "id, requester, ticket, reason, state, cancel_requested, channel, response_url, created_at_ms, updated_at_ms, \
                       finished_at_ms, progress_channel, progress_ts";

fn request(r: &AnyRow) -> Result<Decommission, StoreError> {
    Ok(Decommission {
        id: r.get("id"),
        requester: r.get("requester"),
        ticket: r.get("ticket"),
        reason: r.get("reason"),
        state: text_col(r, "state")?,
        cancel_requested: r.get::<i64, _>("cancel_requested") != 0,
        channel: r.get("channel"),
        response_url: r.get("response_url"),
        created_at_ms: r.get("created_at_ms"),
        updated_at_ms: r.get("updated_at_ms"),
        finished_at_ms: r.get("finished_at_ms"),
        progress_channel: r.get("progress_channel"),
        progress_ts: r.get("progress_ts"),
        vm_names: Vec::new(),
    })
}

impl Store {
    /// Records a request awaiting its confirmation, with its VMs and their pending steps, in
    /// one transaction.
    pub async fn create_decommission(&self, d: &NewDecommission) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await.map_err(query_err("recording a decommission request"))?;
        insert_decommission(&mut tx, d, DecommissionState::PendingConfirmation).await?;
        tx.commit().await.map_err(query_err("recording a decommission request"))
    }

    /// Hands an expired lease's VM to decommission: the request is recorded already running
    /// (the lease's reminders were the notice; the resume sweep takes it up) and the lease
    /// becomes `decommissioning` with the request's id as its reason, in one transaction, so a
    /// crash never leaves two requests for one lease. False (and nothing recorded) when the
    /// lease is no longer active or powered off.
    pub async fn hand_lease_to_decommission(&self, d: &NewDecommission, vm_moref: &Moref, at_ms: i64) -> Result<bool, StoreError> {
        let err = query_err("handing a lease to decommission");
        let mut tx = self.write_tx().await.map_err(query_err("handing a lease to decommission"))?;
        let moved = sqlx::query(&format!(
            "UPDATE leases SET state = $4, state_reason = $1, updated_at_ms = $2 WHERE vm_moref = $3 AND state IN {}",
            LeaseState::sql_where(LeaseState::is_expirable)
        ))
        .bind(&d.id)
        .bind(at_ms)
        .bind(vm_moref)
        .bind(LeaseState::Decommissioning.as_str())
        .execute(&mut *tx)
        .await
        .map_err(query_err("handing a lease to decommission"))?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        insert_decommission(&mut tx, d, DecommissionState::Running).await?;
        tx.commit().await.map_err(err)?;
        Ok(true)
    }

    /// The request with its VMs and steps.
    pub async fn decommission(&self, id: &RequestId) -> Result<Option<DecommissionDetail>, StoreError> {
        let Some(row) = self
            .fetch_optional(
                sqlx::query(&format!("SELECT {COLUMNS} FROM decommissions WHERE id = $1")).bind(id),
                "reading a decommission request",
            )
            .await?
        else {
            return Ok(None);
        };
        let mut req = request(&row)?;
        let vms = self.fetch_all(sqlx::query(
            "SELECT vm_index, vm_moref, vm_name, os_family, facts_json, state FROM decommission_vms WHERE request_id = $1 ORDER BY vm_index",
        )
        .bind(id), "reading a decommission request's VMs").await?
        .iter()
        .map(|r| {
            Ok(DecommissionVm {
                vm_index: r.get("vm_index"),
                vm_moref: r.get("vm_moref"),
                vm_name: r.get("vm_name"),
                os_family: r.get("os_family"),
                facts_json: r.get("facts_json"),
                state: text_col(r, "state")?,
            })
        })
        .collect::<Result<Vec<DecommissionVm>, StoreError>>()?;
        req.vm_names = vms.iter().map(|v| v.vm_name.clone()).collect();
        let steps = self.fetch_all(sqlx::query(
            "SELECT vm_index, step_index, kind, name, on_failure, config_json, state, message, started_at_ms, finished_at_ms, attempts \
             FROM decommission_steps WHERE request_id = $1 ORDER BY vm_index, step_index",
        )
        .bind(id), "reading a decommission request's steps").await?
        .iter()
        .map(|r| {
            Ok(DecommissionStep {
                vm_index: r.get("vm_index"),
                step_index: r.get("step_index"),
                kind: text_col(r, "kind")?,
                name: r.get("name"),
                on_failure: text_col(r, "on_failure")?,
                config_json: r.get("config_json"),
                state: text_col(r, "state")?,
                message: r.get("message"),
                started_at_ms: r.get("started_at_ms"),
                finished_at_ms: r.get("finished_at_ms"),
                attempts: r.get("attempts"),
            })
        })
        .collect::<Result<Vec<DecommissionStep>, StoreError>>()?;
        Ok(Some(DecommissionDetail { request: req, vms, steps }))
    }

    /// Newest first; `offset` rows skipped, at most `limit` returned.
    pub async fn decommissions(&self, f: &DecommissionFilter, limit: u32, offset: u32) -> Result<Vec<Decommission>, StoreError> {
        // Requesters as `$9, $10, …`: one placeholder each.
        let requesters = if f.requesters.is_empty() {
            String::new()
        } else {
            let list = (0..f.requesters.len()).map(|i| format!("${}", i + 9)).collect::<Vec<_>>().join(", ");
            format!("AND requester IN ({list}) ")
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM decommissions d WHERE ($1 IS NULL OR requester = $1) AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR EXISTS (SELECT 1 FROM decommission_vms v WHERE v.request_id = d.id AND LOWER(v.vm_name) = LOWER($3))) \
             AND ($4 IS NULL OR created_at_ms >= $4) AND ($7 IS NULL OR LOWER(ticket) LIKE $8 ESCAPE '\\') {requesters}\
             ORDER BY created_at_ms DESC, id LIMIT $5 OFFSET $6"
        );
        let mut query = sqlx::query(&sql)
            .bind(&f.requester)
            .bind(f.state.map(DecommissionState::as_str))
            .bind(&f.vm_name)
            .bind(f.since_ms)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .bind(&f.ticket)
            .bind(f.ticket.as_deref().map(|t| format!("%{}%", like_escape(&t.to_lowercase()))));
        for r in &f.requesters {
            query = query.bind(r);
        }
        let rows = self.fetch_all(query, "listing decommission requests").await?;
        let mut out = rows.iter().map(request).collect::<Result<Vec<Decommission>, StoreError>>()?;
        for d in &mut out {
            d.vm_names = self
                .fetch_all(
                    sqlx::query("SELECT vm_name FROM decommission_vms WHERE request_id = $1 ORDER BY vm_index").bind(&d.id),
                    "listing decommission requests",
                )
                .await?
                .iter()
                .map(|r| r.get("vm_name"))
                .collect();
        }
        Ok(out)
    }

    /// A confirmed request starts running; false when it was not awaiting confirmation
    /// (cancelled meanwhile, or already confirmed).
    pub async fn start_decommission(&self, id: &RequestId) -> Result<bool, StoreError> {
        let done = self
            .execute(
                sqlx::query("UPDATE decommissions SET state = $3, updated_at_ms = $1 WHERE id = $2 AND state = $4")
                    .bind(now_ms())
                    .bind(id)
                    .bind(DecommissionState::Running.as_str())
                    .bind(DecommissionState::PendingConfirmation.as_str()),
                "starting a decommission request",
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims a running request for `holder` until `until_ms`: of concurrent claimers exactly one
    /// wins while a claim is live; the holder may renew its own claim.
    pub async fn claim_decommission(&self, id: &RequestId, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        let done = self
            .execute(
                sqlx::query(
                    "UPDATE decommissions SET claimed_by = $1, claimed_until_ms = $2 \
                     WHERE id = $3 AND state = $5 AND (claimed_until_ms < $4 OR claimed_by = $1)",
                )
                .bind(holder)
                .bind(until_ms)
                .bind(id)
                .bind(now_ms)
                .bind(DecommissionState::Running.as_str()),
                "claiming a decommission request",
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the oldest running request whose claim has lapsed (a crashed or stopped worker's),
    /// if any. On PostgreSQL the candidate row is locked with `FOR UPDATE SKIP LOCKED`, so
    /// concurrent sweeps pick different requests instead of queueing on one.
    pub async fn claim_unfinished_decommission(&self, holder: &str, now_ms: i64, until_ms: i64) -> Result<Option<RequestId>, StoreError> {
        match self.backend {
            Backend::Postgres => {
                let mut tx = self.write_tx().await.map_err(query_err("claiming an unfinished decommission request"))?;
                let row = sqlx::query(
                    "SELECT id FROM decommissions WHERE state = $2 AND claimed_until_ms < $1 \
                     ORDER BY created_at_ms LIMIT 1 FOR UPDATE SKIP LOCKED",
                )
                .bind(now_ms)
                .bind(DecommissionState::Running.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err("finding unfinished decommission requests"))?;
                let Some(row) = row else { return Ok(None) };
                let id: RequestId = row.get("id");
                sqlx::query("UPDATE decommissions SET claimed_by = $1, claimed_until_ms = $2 WHERE id = $3")
                    .bind(holder)
                    .bind(until_ms)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err("claiming an unfinished decommission request"))?;
                tx.commit().await.map_err(query_err("claiming an unfinished decommission request"))?;
                Ok(Some(id))
            }
            Backend::Sqlite => {
                // SQLite has one writer at a time: the conditional UPDATE decides among sweeps.
                let candidates = self
                    .fetch_all(
                        sqlx::query(
                            "SELECT id FROM decommissions WHERE state = $2 AND claimed_until_ms < $1 ORDER BY created_at_ms LIMIT 10",
                        )
                        .bind(now_ms)
                        .bind(DecommissionState::Running.as_str()),
                        "finding unfinished decommission requests",
                    )
                    .await?;
                for row in candidates {
                    let id: RequestId = row.get("id");
                    if self.claim_decommission(&id, holder, now_ms, until_ms).await? {
                        return Ok(Some(id));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Remembers the Slack message that shows the request's progress.
    pub async fn set_decommission_progress(&self, id: &RequestId, channel: &str, ts: &str) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE decommissions SET progress_channel = $1, progress_ts = $2 WHERE id = $3").bind(channel).bind(ts).bind(id),
            "recording a decommission request's progress message",
        )
        .await?;
        Ok(())
    }

    /// Gives the claim up (the request ended, or the worker stops cleanly).
    pub async fn release_decommission(&self, id: &RequestId, holder: &str) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE decommissions SET claimed_by = NULL, claimed_until_ms = 0 WHERE id = $1 AND claimed_by = $2")
                .bind(id)
                .bind(holder),
            "releasing a decommission claim",
        )
        .await?;
        Ok(())
    }

    /// Cancels a request awaiting confirmation at once, or asks a running one to stop.
    pub async fn cancel_decommission(&self, id: &RequestId) -> Result<CancelOutcome, StoreError> {
        let now = now_ms();
        let pending = self.execute(sqlx::query(
            "UPDATE decommissions SET state = $3, cancel_requested = 1, updated_at_ms = $1, finished_at_ms = $1 WHERE id = $2 AND state = $4",
        )
        .bind(now)
        .bind(id)
        .bind(DecommissionState::Cancelled.as_str())
        .bind(DecommissionState::PendingConfirmation.as_str()), "cancelling a decommission request").await?;
        if pending.rows_affected() == 1 {
            return Ok(CancelOutcome::Cancelled);
        }
        let running = self
            .execute(
                sqlx::query("UPDATE decommissions SET cancel_requested = 1, updated_at_ms = $1 WHERE id = $2 AND state = $3")
                    .bind(now)
                    .bind(id)
                    .bind(DecommissionState::Running.as_str()),
                "cancelling a decommission request",
            )
            .await?;
        if running.rows_affected() == 1 {
            return Ok(CancelOutcome::Requested);
        }
        let state = self
            .fetch_optional(sqlx::query("SELECT state FROM decommissions WHERE id = $1").bind(id), "reading a decommission request")
            .await?;
        match state {
            None => Ok(CancelOutcome::Unknown),
            Some(r) => Ok(CancelOutcome::Finished(text_col(&r, "state")?)),
        }
    }

    pub async fn decommission_cancel_requested(&self, id: &RequestId) -> Result<bool, StoreError> {
        let row = self
            .fetch_optional(
                sqlx::query("SELECT cancel_requested FROM decommissions WHERE id = $1").bind(id),
                "reading a decommission request",
            )
            .await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>("cancel_requested") != 0))
    }

    /// Ends a running request in `state` (done, failed or cancelled) and drops its claim.
    pub async fn finish_decommission(&self, id: &RequestId, state: DecommissionState) -> Result<(), StoreError> {
        let now = now_ms();
        self.execute(
            sqlx::query(
                "UPDATE decommissions SET state = $1, updated_at_ms = $2, finished_at_ms = $2, claimed_by = NULL, claimed_until_ms = 0 \
                 WHERE id = $3 AND state = $4",
            )
            .bind(state.as_str())
            .bind(now)
            .bind(id)
            .bind(DecommissionState::Running.as_str()),
            "finishing a decommission request",
        )
        .await?;
        Ok(())
    }

    pub async fn set_decommission_vm_state(&self, id: &RequestId, vm_index: i64, state: DecommissionVmState) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE decommission_vms SET state = $1 WHERE request_id = $2 AND vm_index = $3")
                .bind(state.as_str())
                .bind(id)
                .bind(vm_index),
            "recording a decommissioned VM's state",
        )
        .await?;
        self.touch_decommission(id).await
    }

    /// Marks a step running (counting the attempt).
    pub async fn start_decommission_step(&self, id: &RequestId, vm_index: i64, step_index: i64, at_ms: i64) -> Result<(), StoreError> {
        self.execute(sqlx::query(
            "UPDATE decommission_steps SET state = $5, message = '', started_at_ms = $1, finished_at_ms = NULL, attempts = attempts + 1 \
             WHERE request_id = $2 AND vm_index = $3 AND step_index = $4",
        )
        .bind(at_ms)
        .bind(id)
        .bind(vm_index)
        .bind(step_index)
        .bind(DecommissionStepState::Running.as_str()), "recording a decommission step").await?;
        self.touch_decommission(id).await
    }

    /// Records how a step ended (done, skipped, warning or failed), with its sentence.
    pub async fn finish_decommission_step(
        &self,
        id: &RequestId,
        vm_index: i64,
        step_index: i64,
        state: DecommissionStepState,
        message: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.execute(sqlx::query(
            "UPDATE decommission_steps SET state = $1, message = $2, finished_at_ms = $3 WHERE request_id = $4 AND vm_index = $5 AND step_index = $6",
        )
        .bind(state.as_str())
        .bind(message)
        .bind(at_ms)
        .bind(id)
        .bind(vm_index)
        .bind(step_index), "recording a decommission step").await?;
        self.touch_decommission(id).await
    }

    async fn touch_decommission(&self, id: &RequestId) -> Result<(), StoreError> {
        self.execute(
            sqlx::query("UPDATE decommissions SET updated_at_ms = $1 WHERE id = $2").bind(now_ms()).bind(id),
            "recording a decommission request's progress",
        )
        .await?;
        Ok(())
    }
}

/// The request, its VMs and their pending steps, in `state`.
async fn insert_decommission(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    d: &NewDecommission,
    state: DecommissionState,
) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO decommissions (id, requester, ticket, reason, state, channel, response_url, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&d.id)
    .bind(&d.requester)
    .bind(&d.ticket)
    .bind(&d.reason)
    .bind(state.as_str())
    .bind(&d.channel)
    .bind(&d.response_url)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(query_err("recording a decommission request"))?;
    for (vi, vm) in d.vms.iter().enumerate() {
        sqlx::query(
            "INSERT INTO decommission_vms (request_id, vm_index, vm_moref, vm_name, os_family, facts_json, state) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.id)
        .bind(vi as i64)
        .bind(&vm.vm_moref)
        .bind(&vm.vm_name)
        .bind(&vm.os_family)
        .bind(&vm.facts_json)
        .bind(DecommissionVmState::Pending.as_str())
        .execute(&mut **tx)
        .await
        .map_err(query_err("recording a decommission request's VMs"))?;
        for (si, s) in vm.steps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO decommission_steps (request_id, vm_index, step_index, kind, name, on_failure, config_json, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&d.id)
            .bind(vi as i64)
            .bind(si as i64)
            .bind(s.kind.as_str())
            .bind(&s.name)
            .bind(s.on_failure.as_str())
            .bind(&s.config_json)
            .bind(DecommissionStepState::Pending.as_str())
            .execute(&mut **tx)
            .await
            .map_err(query_err("recording a decommission request's steps"))?;
        }
    }
    Ok(())
}
