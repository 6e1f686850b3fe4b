//! The console's pages: thin handlers over `crate::requests` (the rules the REST API follows
//! too), the store and, for the VM search and the plan preview, vCenter.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use futures::Stream;
use iaas_function::retire::{plan, VmFacts};
use iaas_store::{AuditFilter, DecommissionFilter, DecommissionState, LeaseFilter, RequestId, UserId};
use iaas_vsphere::VcError;
use maud::html;
use serde::Deserialize;

use super::html::{self as view, Nav};
use super::session::{CsrfForm, Signed};
use super::Console;
use crate::requests::{self, is_admin, may_run, MAX_VMS};

const PAGE_SIZE: u32 = 25;
/// How often a request's page is brought up to date while it runs.
const LIVE_EVERY: Duration = Duration::from_secs(1);
/// VM search answers at most this many names.
const SEARCH_ROWS: usize = 20;

fn nav<'a>(console: &Console, s: &'a Signed) -> Nav<'a> {
    Nav { login: s.who.email.as_deref().unwrap_or(&s.who.slack_user), csrf: &s.csrf, audit: may_run(&console.gw, &s.who, "audit").is_ok() }
}

fn refused(e: crate::api::ApiError) -> Response {
    view::api_refusal(e)
}

/// Empty form and query fields are absent.
fn given(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A search's `YYYY-MM-DD` as the start of that day (UTC) in Unix milliseconds.
fn day_start(date: &Option<String>) -> Result<Option<i64>, Response> {
    let Some(d) = given(date) else { return Ok(None) };
    match chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d") {
        Ok(date) => Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis())),
        Err(_) => Err(view::refusal(StatusCode::BAD_REQUEST, "The date must be written YYYY-MM-DD.")),
    }
}

#[derive(Deserialize, Default)]
pub struct RequestSearch {
    vm: Option<String>,
    ticket: Option<String>,
    requester: Option<String>,
    state: Option<String>,
    /// A date, `YYYY-MM-DD`: requests created that day or later.
    since: Option<String>,
    /// `all` (admins): everyone's requests.
    scope: Option<String>,
    page: Option<u32>,
}

/// My requests, or everyone's for admins, searchable and paginated.
pub async fn requests(State(console): State<Arc<Console>>, signed: Signed, Query(q): Query<RequestSearch>) -> Response {
    if let Err(e) = may_run(&console.gw, &signed.who, "decommission list") {
        return refused(e);
    }
    let admin = is_admin(&console.gw, &signed.who);
    let all = admin && q.scope.as_deref() == Some("all");
    let state = match given(&q.state).map(|s| s.parse::<DecommissionState>()).transpose() {
        Ok(s) => s,
        Err(e) => return view::refusal(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let since_ms = match day_start(&q.since) {
        Ok(ms) => ms,
        Err(refused) => return refused,
    };
    let page = q.page.unwrap_or(1).max(1);
    let filter = DecommissionFilter {
        requester: if all { given(&q.requester).map(UserId::from) } else { None },
        requesters: if all { Vec::new() } else { signed.ids() },
        state,
        vm_name: given(&q.vm),
        ticket: given(&q.ticket),
        since_ms,
    };
    let store = match requests::store(&console.gw) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let Ok(mut rows) = store.decommissions(&filter, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE).await else {
        return refused(crate::api::ApiError::store_down());
    };
    let more = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    let link = |p: u32| {
        let pairs = [
            ("vm", given(&q.vm)),
            ("ticket", given(&q.ticket)),
            ("requester", given(&q.requester)),
            ("state", given(&q.state)),
            ("since", given(&q.since)),
            ("scope", all.then(|| "all".to_string())),
            ("page", Some(p.to_string())),
        ];
        let pairs: Vec<(&str, String)> = pairs.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        format!("/console/requests?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    };
    let value = |s: &Option<String>| given(s).unwrap_or_default();
    let title = if all { "All requests" } else { "My requests" };
    let body = html! {
        form.search method="get" action="/console/requests" role="search" {
            @if admin {
                label for="scope" { "Whose" }
                select id="scope" name="scope" {
                    option value="mine" selected[!all] { "Mine" }
                    option value="all" selected[all] { "Everyone's" }
                }
                label for="requester" { "Requester" }
                input id="requester" name="requester" type="text" value=(value(&q.requester));
            }
            label for="vm" { "VM name" }
            input id="vm" name="vm" type="text" value=(value(&q.vm));
            label for="ticket" { "Ticket" }
            input id="ticket" name="ticket" type="text" value=(value(&q.ticket));
            label for="state" { "State" }
            select id="state" name="state" {
                option value="" { "any" }
                @for s in DecommissionState::ALL {
                    option value=(s.as_str()) selected[state == Some(*s)] { (s.as_str()) }
                }
            }
            label for="since" { "Created on or after" }
            input id="since" name="since" type="date" value=(value(&q.since));
            button type="submit" { "Search" }
        }
        (view::request_rows(&rows))
        nav.pages aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "← Newer" } }
            " Page " (page) " "
            @if more { a href=(link(page + 1)) rel="next" { "Older →" } }
        }
    };
    view::page(title, Some(&nav(&console, &signed)), body).into_response()
}

/// Whether the Cancel button is shown: the rules `requests::cancel_decommission` enforces.
fn may_cancel(console: &Console, signed: &Signed, requester: &str) -> bool {
    let theirs = signed.ids().iter().any(|id| id == requester) || is_admin(&console.gw, &signed.who);
    theirs && may_run(&console.gw, &signed.who, "decommission cancel").is_ok()
}

/// One request with each VM's steps, kept current while it runs (`request_events`).
pub async fn request(State(console): State<Arc<Console>>, signed: Signed, Path(id): Path<RequestId>) -> Response {
    let detail = match requests::decommission_for(&console.gw, &signed.who, &id).await {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let cancel = may_cancel(&console, &signed, &detail.request.requester);
    let body = html! {
        (view::request_head(&detail))
        section id="live" data-live={"/console/requests/" (id) "/events"} aria-live="polite" {
            (view::request_live(&detail, &signed.csrf, cancel))
        }
    };
    view::page(&format!("Request {id}"), Some(&nav(&console, &signed)), body).into_response()
}

/// Server-Sent Events: the changing part of a request's page each time the runner records a
/// step, then `end` once the request is over.
pub async fn request_events(State(console): State<Arc<Console>>, signed: Signed, Path(id): Path<RequestId>) -> Response {
    if let Err(e) = requests::decommission_for(&console.gw, &signed.who, &id).await {
        return refused(e);
    }
    Sse::new(live(console, signed, id)).keep_alive(KeepAlive::default()).into_response()
}

fn live(console: Arc<Console>, signed: Signed, id: RequestId) -> impl Stream<Item = Result<Event, Infallible>> {
    struct Watch {
        console: Arc<Console>,
        signed: Signed,
        id: RequestId,
        last: String,
        over: bool,
    }
    let start = Watch { console, signed, id, last: String::new(), over: false };
    futures::stream::unfold(start, |mut w| async move {
        if w.over {
            return None;
        }
        loop {
            let store = requests::store(&w.console.gw).ok()?;
            // A database hiccup is waited out; the page keeps what it shows.
            if let Ok(Some(d)) = store.decommission(&w.id).await {
                let finished = !matches!(d.request.state, DecommissionState::PendingConfirmation | DecommissionState::Running);
                let html = view::request_live(&d, &w.signed.csrf, may_cancel(&w.console, &w.signed, &d.request.requester)).into_string();
                if finished {
                    w.over = true;
                    return Some((Ok(Event::default().event("end").data(html)), w));
                }
                if html != w.last {
                    w.last = html.clone();
                    return Some((Ok(Event::default().event("steps").data(html)), w));
                }
            }
            tokio::time::sleep(LIVE_EVERY).await;
        }
    })
}

/// Cancels a request (its requester or an admin), then shows it.
pub async fn cancel(
    State(console): State<Arc<Console>>,
    signed: Signed,
    Path(id): Path<RequestId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    match requests::cancel_decommission(&console.gw, &signed.who, &id).await {
        // Cancelled at once, or asked to stop before its next step: its page shows which.
        Ok(_) => Redirect::to(&format!("/console/requests/{id}")).into_response(),
        Err(e) => refused(e),
    }
}

/// The new request form: VMs found by typing part of their names.
pub async fn new_request(State(console): State<Arc<Console>>, signed: Signed) -> Response {
    if let Err(e) = may_run(&console.gw, &signed.who, "decommission") {
        return refused(e);
    }
    let body = new_form(&signed.csrf, "", "", "", None);
    view::page("New decommission request", Some(&nav(&console, &signed)), body).into_response()
}

fn new_form(csrf: &str, vms: &str, ticket: &str, reason: &str, error: Option<&str>) -> maud::Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/console/new/review" {
            input type="hidden" name="csrf" value=(csrf);
            label for="vm-search" { "Find VMs in vCenter (type part of a name)" }
            input id="vm-search" type="search" autocomplete="off" aria-controls="vm-results" data-search="/console/vms";
            div id="vm-results" aria-live="polite" {}
            label for="vms" { "VMs to decommission (one name per line)" }
            textarea id="vms" name="vms" rows="5" required { (vms) }
            label for="ticket" { "Change ticket" }
            input id="ticket" name="ticket" type="text" value=(ticket);
            label for="reason" { "Reason" }
            input id="reason" name="reason" type="text" value=(reason);
            button type="submit" id="review" { "Review the plan" }
        }
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Up to 20 VMs whose names contain the text typed, as a list of buttons that add them.
pub async fn vm_search(State(console): State<Arc<Console>>, signed: Signed, Query(q): Query<SearchQuery>) -> Response {
    if let Err(e) = may_run(&console.gw, &signed.who, "decommission") {
        return (e.status(), Html(html! { p.error { (e.sentence()) } }.into_string())).into_response();
    }
    let needle = q.q.trim().to_lowercase();
    let fragment = |m: maud::Markup| Html(m.into_string()).into_response();
    if needle.chars().count() < 2 {
        return fragment(html! { p.hint { "Type at least two letters of a name." } });
    }
    let Some(vc) = &console.vcenter else {
        return fragment(
            html! { p.hint { "This gateway has no vCenter settings (VCENTER_URL), so it cannot search; type the names below." } },
        );
    };
    let matches = move |name: &str| name.to_lowercase().contains(&needle);
    match vc.find_vms(&matches, SEARCH_ROWS).await {
        Ok(page) => fragment(html! {
            @if page.vms.is_empty() { p { "No VM's name contains that." } }
            ul.results {
                @for s in &page.vms {
                    li {
                        button type="button" data-add=(s.vm.name) { "Add " span.visually-hidden { (s.vm.name) } }
                        " " (s.vm.name) " " small { "(" (s.power_state.to_string()) @if let Some(os) = &s.guest_os { ", " (os) } ")" }
                    }
                }
            }
            @if page.total > page.vms.len() { p.hint { (page.total - page.vms.len()) " more match; type more of the name." } }
        }),
        Err(e) => fragment(html! { p.error { "vCenter could not be searched: " (e.to_string()) } }),
    }
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    vms: String,
    ticket: Option<String>,
    reason: Option<String>,
}

impl RequestForm {
    /// The names typed or added: one per line (commas and spaces also separate), each once.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for n in self.vms.split(|c: char| c == ',' || c.is_whitespace()).map(str::trim).filter(|n| !n.is_empty()) {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
        names
    }
}

/// Each VM's plan, read from vCenter and the policy, before anything is asked of a function.
pub async fn review(State(console): State<Arc<Console>>, signed: Signed, Form(form): Form<RequestForm>) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(e) = may_run(&console.gw, &signed.who, "decommission") {
        return refused(e);
    }
    let names = form.names();
    let (ticket, reason) = (given(&form.ticket).unwrap_or_default(), given(&form.reason).unwrap_or_default());
    let again = |error: &str| {
        let body = new_form(&signed.csrf, &names.join("\n"), &ticket, &reason, Some(error));
        (StatusCode::UNPROCESSABLE_ENTITY, view::page("New decommission request", Some(&nav(&console, &signed)), body)).into_response()
    };
    if names.is_empty() {
        return again("Name at least one VM.");
    }
    if names.len() > MAX_VMS {
        return again(&format!("At most {MAX_VMS} VMs per request."));
    }
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    if let Some(vc) = &console.vcenter {
        for name in &names {
            let details = match vc.find_vm(name).await {
                Ok(vm) => vc.vm_details(&vm).await,
                Err(e) => Err(e),
            };
            match details {
                Ok(d) => match plan(&console.policy, &VmFacts::from_details(&d, None, None)) {
                    Ok(p) => plans.push(p),
                    Err(why) => problems.push(format!("{why}.")),
                },
                Err(e @ VcError::NotFound { .. }) => problems.push(e.to_string()),
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
    }
    if !problems.is_empty() {
        return again(&problems.join(" "));
    }
    let body = html! {
        p { "Nothing has changed yet. Each VM below gets these steps, in order; a step that fails stops its VM unless it says it only warns. Nothing is rolled back." }
        @if console.vcenter.is_none() { p.hint { "This gateway cannot read vCenter, so the plan is made when you confirm; the request's page shows it." } }
        @for p in &plans {
            section.vm {
                h2 { (p.vm_name) " " small { "(" (p.os_family) ")" } }
                ol { @for s in &p.steps { li { (s.name) " " small { "(" (s.kind.as_str()) @if s.on_failure == iaas_config::OnFailure::Warn { ", warns on failure" } ")" } } } }
            }
        }
        form method="post" action="/console/requests" {
            input type="hidden" name="csrf" value=(signed.csrf);
            input type="hidden" name="vms" value=(names.join("\n"));
            input type="hidden" name="ticket" value=(ticket);
            input type="hidden" name="reason" value=(reason);
            dl { dt { "Ticket" } dd { (if ticket.is_empty() { "—" } else { &ticket }) } dt { "Reason" } dd { (if reason.is_empty() { "—" } else { &reason }) } }
            button.danger type="submit" id="confirm" { "Decommission " (names.len()) " VM" @if names.len() != 1 { "s" } }
            " " a href="/console/new" { "Start again" }
        }
    };
    view::page("Confirm the plan", Some(&nav(&console, &signed)), body).into_response()
}

/// The confirmation: the request is recorded and started; its page follows it.
pub async fn create(State(console): State<Arc<Console>>, signed: Signed, Form(form): Form<RequestForm>) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    let who = match requests::Decommissioner::check(&console.gw, &signed.who) {
        Ok(who) => who,
        Err(e) => return refused(e),
    };
    match requests::start_decommission(&console.gw, who, form.names(), form.ticket, form.reason).await {
        Ok(d) => Redirect::to(&format!("/console/requests/{}", d.request.id)).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize, Default)]
pub struct LeaseQuery {
    scope: Option<String>,
}

/// My leases, or everyone's for admins, with Extend.
pub async fn leases(State(console): State<Arc<Console>>, signed: Signed, Query(q): Query<LeaseQuery>) -> Response {
    leases_page(&console, &signed, q.scope.as_deref() == Some("all"), None).await
}

async fn leases_page(console: &Console, signed: &Signed, all: bool, notice: Option<(bool, String)>) -> Response {
    if let Err(e) = may_run(&console.gw, &signed.who, "expire list") {
        return refused(e);
    }
    let admin = is_admin(&console.gw, &signed.who);
    let all = admin && all;
    let store = match requests::store(&console.gw) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let mut leases = Vec::new();
    let owners: Vec<Option<UserId>> = if all { vec![None] } else { signed.ids().into_iter().map(Some).collect() };
    for owner in owners {
        match store.leases(&LeaseFilter { owner, ..Default::default() }, 500).await {
            Ok(found) => leases.extend(found),
            Err(_) => return refused(crate::api::ApiError::store_down()),
        }
    }
    let body = html! {
        @if let Some((ok, text)) = &notice { (view::notice(*ok, text)) }
        @if admin {
            p { @if all { a href="/console/leases" { "Show mine" } } @else { a href="/console/leases?scope=all" { "Show everyone's" } } }
        }
        (view::lease_rows(&leases, &signed.csrf))
    };
    view::page(if all { "All leases" } else { "My leases" }, Some(&nav(console, signed)), body).into_response()
}

#[derive(Deserialize)]
pub struct ExtendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    vm: String,
}

/// Extends a lease as `/iaas expire extend` does (the expire function decides), then shows
/// its answer on the leases page.
pub async fn extend(State(console): State<Arc<Console>>, signed: Signed, Form(form): Form<ExtendForm>) -> Response {
    if let Err(refused) = signed.check_csrf(&form.csrf) {
        return refused;
    }
    if let Err(e) = may_run(&console.gw, &signed.who, "expire extend") {
        return refused(e);
    }
    let command = iaas_invocation::Command::ExpireExtend { vm: form.vm.trim().into() };
    let outcome = match requests::send(&console.gw, command, &signed.who).await {
        Ok(id) => requests::verdict(&console.gw, &id).await,
        Err(e) => Err(e),
    };
    let notice = match outcome {
        Ok(o) => (true, slack_text(&o.text)),
        Err(e) => (false, slack_text(e.sentence())),
    };
    leases_page(&console, &signed, false, Some(notice)).await
}

/// A function's answer is Slack text: its `*bold*` marks are dropped for the page.
fn slack_text(text: &str) -> String {
    text.replace('*', "")
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    vm: Option<String>,
    since: Option<String>,
}

/// The audit trail (the `audit` command's readers).
pub async fn audit(State(console): State<Arc<Console>>, signed: Signed, Query(q): Query<AuditQuery>) -> Response {
    if let Err(e) = may_run(&console.gw, &signed.who, "audit") {
        return refused(e);
    }
    let since_ms = match day_start(&q.since) {
        Ok(ms) => ms,
        Err(refused) => return refused,
    };
    let store = match requests::store(&console.gw) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let filter = AuditFilter { actor: given(&q.actor), vm: given(&q.vm), since_ms };
    let Ok(entries) = store.audit_entries(&filter, 200).await else { return refused(crate::api::ApiError::store_down()) };
    let value = |s: &Option<String>| given(s).unwrap_or_default();
    let body = html! {
        form.search method="get" action="/console/audit" role="search" {
            label for="actor" { "Who" } input id="actor" name="actor" type="text" value=(value(&q.actor));
            label for="vm" { "VM" } input id="vm" name="vm" type="text" value=(value(&q.vm));
            label for="since" { "On or after" } input id="since" name="since" type="date" value=(value(&q.since));
            button type="submit" { "Search" }
        }
        p.hint { "The newest 200 entries that match." }
        (view::audit_rows(&entries))
    };
    view::page("Audit trail", Some(&nav(&console, &signed)), body).into_response()
}
