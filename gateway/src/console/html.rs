//! The console's HTML: one layout, the pages' parts, and refusals as pages. States are words
//! (with a symbol), never colour alone; every input has a label.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use iaas_store::{AuditEntry, Decommission, DecommissionDetail, DecommissionState, DecommissionStepState, Lease};
use maud::{html, Markup, DOCTYPE};

use crate::api::ApiError;

/// What the navigation shows for the signed-in person.
pub struct Nav<'a> {
    pub login: &'a str,
    pub csrf: &'a str,
    /// Whether their roles allow the audit trail (the `audit` command).
    pub audit: bool,
}

pub fn page(title: &str, nav: Option<&Nav>, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · iaas console" }
                    link rel="stylesheet" href="/console/assets/console.css";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header {
                        strong { "iaas console" }
                        @if let Some(nav) = nav {
                            nav aria-label="Main" {
                                a href="/console/requests" { "Requests" }
                                a href="/console/new" { "New request" }
                                a href="/console/leases" { "Leases" }
                                @if nav.audit { a href="/console/audit" { "Audit" } }
                            }
                            form.signout method="post" action="/console/signout" {
                                span { "Signed in as " (nav.login) }
                                input type="hidden" name="csrf" value=(nav.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main id="main" { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A refusal or failure as a page: the status and the sentence saying why.
pub fn refusal(status: StatusCode, sentence: &str) -> Response {
    (
        status,
        page("Not done", None, html! { p.error role="alert" { (sentence) } p { a href="/console/requests" { "Back to the console" } } }),
    )
        .into_response()
}

pub fn api_refusal(e: ApiError) -> Response {
    refusal(e.status(), e.sentence())
}

pub fn signin(next: &str, csrf: &str, error: Option<&str>, login: &str) -> Html<String> {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" id="signin-error" { (e) } }
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="login" { "Login (e-mail or account name)" }
                input id="login" name="login" type="text" autocomplete="username" required value=(login) autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
}

fn request_state(state: DecommissionState, cancel_requested: bool) -> Markup {
    let (symbol, word) = match state {
        DecommissionState::PendingConfirmation => ("…", "awaiting confirmation"),
        DecommissionState::Running if cancel_requested => ("⏸", "cancelling"),
        DecommissionState::Running => ("▶", "running"),
        DecommissionState::Done => ("✔", "done"),
        DecommissionState::Failed => ("✖", "failed"),
        DecommissionState::Cancelled => ("■", "cancelled"),
    };
    html! { span class={"state state-" (state.as_str())} { span aria-hidden="true" { (symbol) " " } (word) } }
}

fn step_state(state: DecommissionStepState) -> Markup {
    let symbol = match state {
        DecommissionStepState::Pending => "○",
        DecommissionStepState::Running => "▶",
        DecommissionStepState::Done => "✔",
        DecommissionStepState::Skipped => "–",
        DecommissionStepState::Warning => "⚠",
        DecommissionStepState::Failed => "✖",
    };
    html! { span class={"state state-" (state.as_str())} { span aria-hidden="true" { (symbol) " " } (state.as_str()) } }
}

pub fn request_rows(rows: &[Decommission]) -> Markup {
    html! {
        table {
            caption.visually-hidden { "Decommission requests" }
            thead { tr { th scope="col" { "Request" } th scope="col" { "VMs" } th scope="col" { "State" } th scope="col" { "Ticket" } th scope="col" { "Requester" } th scope="col" { "Created" } } }
            tbody {
                @for d in rows {
                    tr {
                        td { a href={"/console/requests/" (d.id)} { (d.id) } }
                        td { (d.vm_names.join(", ")) }
                        td { (request_state(d.state, d.cancel_requested)) }
                        td { (d.ticket) }
                        td { (d.requester) }
                        td { (time(d.created_at_ms)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No requests match." } }
    }
}

/// The part of a request's page that changes while it runs (sent again over SSE).
pub fn request_live(d: &DecommissionDetail, csrf: &str, may_cancel: bool) -> Markup {
    let r = &d.request;
    let unfinished = matches!(r.state, DecommissionState::PendingConfirmation | DecommissionState::Running);
    html! {
        p { "State: " (request_state(r.state, r.cancel_requested)) }
        @if unfinished && may_cancel && !r.cancel_requested {
            form method="post" action={"/console/requests/" (r.id) "/cancel"} {
                input type="hidden" name="csrf" value=(csrf);
                button.danger type="submit" id="cancel" { "Cancel this request" }
                span.hint { " Steps already done are not undone." }
            }
        }
        @for vm in &d.vms {
            section.vm {
                h2 { (vm.vm_name) " " small { "(" (vm.os_family) ", " (vm.state.as_str()) ")" } }
                table {
                    caption.visually-hidden { "Steps for " (vm.vm_name) }
                    thead { tr { th scope="col" { "#" } th scope="col" { "Step" } th scope="col" { "State" } th scope="col" { "Message" } } }
                    tbody {
                        @for s in d.steps_of(vm.vm_index) {
                            tr data-step=(s.name) data-state=(s.state.as_str()) {
                                td { (s.step_index + 1) }
                                td { (s.name) }
                                td { (step_state(s.state)) }
                                td class=@if matches!(s.state, DecommissionStepState::Failed) { "error" } @else if matches!(s.state, DecommissionStepState::Warning) { "warning" } { (s.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn request_head(d: &DecommissionDetail) -> Markup {
    let r = &d.request;
    html! {
        dl {
            dt { "Requester" } dd { (r.requester) }
            dt { "Ticket" } dd { (if r.ticket.is_empty() { "—" } else { &r.ticket }) }
            dt { "Reason" } dd { (if r.reason.is_empty() { "—" } else { &r.reason }) }
            dt { "Created" } dd { (time(r.created_at_ms)) }
            @if let Some(f) = r.finished_at_ms { dt { "Finished" } dd { (time(f)) } }
        }
    }
}

pub fn lease_rows(leases: &[Lease], csrf: &str) -> Markup {
    html! {
        table {
            caption.visually-hidden { "Leases" }
            thead { tr { th scope="col" { "VM" } th scope="col" { "Owner" } th scope="col" { "Expires" } th scope="col" { "State" } th scope="col" { "" } } }
            tbody {
                @for l in leases {
                    tr {
                        td { (l.vm_name) }
                        td { (l.owner_user) }
                        td { (time(l.expires_at_ms)) }
                        td { (l.state.as_str()) }
                        td {
                            @if l.state.is_live() {
                                form method="post" action="/console/leases/extend" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="vm" value=(l.vm_name);
                                    button type="submit" aria-label={"Extend the lease of " (l.vm_name)} { "Extend" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if leases.is_empty() { p { "No leases." } }
    }
}

pub fn audit_rows(entries: &[AuditEntry]) -> Markup {
    html! {
        table {
            caption.visually-hidden { "Audit trail" }
            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Command" } th scope="col" { "VM" } th scope="col" { "Where" } th scope="col" { "Decision" } th scope="col" { "Why" } } }
            tbody {
                @for e in entries {
                    tr { td { (time(e.at_ms)) } td { (e.actor) } td { (e.command) } td { (e.vm.as_deref().unwrap_or("")) } td { (e.stage) } td { (e.decision) } td { (e.reason) } }
                }
            }
        }
        @if entries.is_empty() { p { "No entries match." } }
    }
}

/// A notice at the top of a page: what the last action did.
pub fn notice(ok: bool, text: &str) -> Markup {
    html! { p class=(if ok { "notice" } else { "error" }) role="status" { (text) } }
}
