//! What the API reads and writes (its DTOs), and how store records become them.

use iaas_config::{OnFailure, StepKind};
use iaas_store::{DecommissionDetail, DecommissionState, DecommissionStepState, DecommissionVmState};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/decommissions`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDecommission {
    /// The VMs' names (at least one).
    pub vms: Vec<String>,
    #[serde(default)]
    pub ticket: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A request as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecommissionSummary {
    pub id: String,
    /// Slack user id, `api:<token name>` or the directory e-mail of an API caller.
    pub requester: String,
    pub ticket: String,
    pub reason: String,
    #[schema(schema_with = request_state_schema)]
    pub state: DecommissionState,
    pub cancel_requested: bool,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub vms: Vec<String>,
}

/// One step of one VM's plan.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepView {
    pub index: i64,
    #[schema(schema_with = step_kind_schema)]
    pub kind: StepKind,
    pub name: String,
    #[schema(schema_with = on_failure_schema)]
    pub on_failure: OnFailure,
    #[schema(schema_with = step_state_schema)]
    pub state: DecommissionStepState,
    pub message: String,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub attempts: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VmView {
    pub name: String,
    pub moref: String,
    pub os_family: String,
    #[schema(schema_with = vm_state_schema)]
    pub state: DecommissionVmState,
    pub steps: Vec<StepView>,
}

/// A request with each VM's steps (its plan and their progress).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecommissionView {
    #[serde(flatten)]
    pub request: DecommissionSummary,
    pub vm_plans: Vec<VmView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecommissionPage {
    pub items: Vec<DecommissionSummary>,
    pub limit: u32,
    pub offset: u32,
    /// The `offset` of the next page, when there is one.
    pub next_offset: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CancelResult {
    pub id: String,
    /// `cancelled` (it had not started) or `cancel_requested` (it stops before its next step).
    pub outcome: String,
}

/// A string that is one of `names`: the document lists exactly the values the enums declare.
fn text_enum_schema(names: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).enum_values(Some(names.iter().copied())).build()
}

pub(crate) fn request_state_schema() -> utoipa::openapi::Object {
    text_enum_schema(DecommissionState::NAMES)
}

fn vm_state_schema() -> utoipa::openapi::Object {
    text_enum_schema(DecommissionVmState::NAMES)
}

fn step_state_schema() -> utoipa::openapi::Object {
    text_enum_schema(DecommissionStepState::NAMES)
}

fn step_kind_schema() -> utoipa::openapi::Object {
    text_enum_schema(StepKind::NAMES)
}

fn on_failure_schema() -> utoipa::openapi::Object {
    text_enum_schema(OnFailure::NAMES)
}

pub(crate) fn summary(d: &iaas_store::Decommission) -> DecommissionSummary {
    DecommissionSummary {
        id: d.id.to_string(),
        requester: d.requester.to_string(),
        ticket: d.ticket.clone(),
        reason: d.reason.clone(),
        state: d.state,
        cancel_requested: d.cancel_requested,
        created_at_ms: d.created_at_ms,
        updated_at_ms: d.updated_at_ms,
        finished_at_ms: d.finished_at_ms,
        vms: d.vm_names.iter().map(ToString::to_string).collect(),
    }
}

pub(crate) fn view(d: &DecommissionDetail) -> DecommissionView {
    DecommissionView {
        request: summary(&d.request),
        vm_plans: d
            .vms
            .iter()
            .map(|v| VmView {
                name: v.vm_name.to_string(),
                moref: v.vm_moref.to_string(),
                os_family: v.os_family.clone(),
                state: v.state,
                steps: d
                    .steps_of(v.vm_index)
                    .map(|s| StepView {
                        index: s.step_index,
                        kind: s.kind,
                        name: s.name.clone(),
                        on_failure: s.on_failure,
                        state: s.state,
                        message: s.message.clone(),
                        started_at_ms: s.started_at_ms,
                        finished_at_ms: s.finished_at_ms,
                        attempts: s.attempts,
                    })
                    .collect(),
            })
            .collect(),
    }
}
