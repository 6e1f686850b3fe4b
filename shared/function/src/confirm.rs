//! Confirmation buttons for destructive commands: asked for by one invocation, answered by a
//! press that arrives as another. The store makes each confirmation single-use, bound to the
//! user who asked, the VM's managed-object id, the action and the function, and expiring.

use iaas_invocation::{Command, Confirmable, Invocation};
use iaas_slack::Message;
use iaas_store::{ConfirmRefusal, Confirmation, Press};
use iaas_vsphere::VmRef;
use serde_json::json;

use crate::{Context, Reply};

/// What the user is asked to confirm.
pub struct Ask<'a> {
    pub of: Confirmable,
    /// What the press is bound to: the VM, or for a request covering several VMs the request
    /// itself (e.g. moref `decommission:<id>`), which the press handler then reads from `args`.
    pub vm: &'a VmRef,
    /// Stored with the confirmation and handed back on the press (e.g. the new size).
    pub args: serde_json::Value,
    /// The message above the buttons: the VM's facts and what will happen.
    pub text: String,
    /// The dangerous button's label, e.g. "Delete app-web-02".
    pub confirm_label: String,
    /// The dialog Slack shows before the press is sent.
    pub dialog: String,
}

/// Records the confirmation and answers with the facts and Confirm / Cancel buttons.
pub async fn ask(ctx: &Context, inv: &Invocation, ask: Ask<'_>) -> Reply {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let ttl_ms = i64::try_from(ctx.policy.confirm.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let record = Confirmation {
        token: token.clone(),
        function: inv.command.function().to_string(),
        action: ask.of.as_str().to_string(),
        slack_user: inv.user.id.clone(),
        vm_moref: ask.vm.moref.clone(),
        vm_name: ask.vm.name.clone(),
        args_json: ask.args.to_string(),
        expires_at_ms: chrono::Utc::now().timestamp_millis().saturating_add(ttl_ms),
    };
    if let Err(e) = ctx.store.create_confirmation(&record).await {
        tracing::error!(error = %e, "could not record a confirmation");
        return Reply::error(
            "The bot's database is unreachable, so it cannot ask for your confirmation; nothing was changed. Please try again later.",
        );
    }
    let minutes = (ctx.policy.confirm.ttl_secs / 60).max(1);
    let buttons = json!({
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": ask.confirm_label},
                "style": "danger",
                "action_id": ask.of.action_id(true),
                "value": token,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Are you sure?"},
                    "text": {"type": "mrkdwn", "text": ask.dialog},
                    "confirm": {"type": "plain_text", "text": "Yes, go ahead"},
                    "deny": {"type": "plain_text", "text": "No"},
                    "style": "danger"
                }
            },
            {"type": "button", "text": {"type": "plain_text", "text": "Cancel"}, "action_id": ask.of.action_id(false), "value": token}
        ]
    });
    let message = Message::new(format!("{}\nOnly you can confirm, within {minutes} minutes.", ask.text)).with_block(buttons);
    // Always to the asker alone, whatever the policy says for queries.
    Reply::prompt(message)
}

/// [`take`] for a press whose Cancel leaves nothing to undo: a Cancel is answered "<what> of
/// <vm> cancelled", so `Ok` is always a confirmed press.
pub async fn take_confirmed(ctx: &Context, inv: &Invocation, token: &str, confirmed: bool, what: &str) -> Result<Confirmation, Reply> {
    let confirmation = take(ctx, inv, token, confirmed).await?;
    if !confirmed {
        return Err(Reply::changed(Message::new(format!("{what} of {} cancelled; nothing was changed.", confirmation.vm_name))));
    }
    Ok(confirmation)
}

/// Uses the pressed confirmation, or answers why not. The caller then re-checks the VM: it may
/// have changed since the question was asked.
pub async fn take(ctx: &Context, inv: &Invocation, token: &str, confirmed: bool) -> Result<Confirmation, Reply> {
    // What the press claims to be, as signed into the invocation by the gateway.
    let Command::Confirm { of, .. } = &inv.command else {
        return Err(Reply::error("This is not a button press; nothing was changed.").not_replacing());
    };
    let press = Press {
        user: &inv.user.id,
        function: inv.command.function(),
        action: of.as_str(),
        used_as: if confirmed { "confirm" } else { "cancel" },
    };
    let now = chrono::Utc::now().timestamp_millis();
    match ctx.store.use_confirmation(token, &press, now).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(refusal)) => Err(Reply::error(match refusal {
            ConfirmRefusal::Unknown => "That button is not one the bot knows; nothing was changed. Run the command again.".to_string(),
            ConfirmRefusal::OtherAction { action } => {
                tracing::warn!(user = %inv.user.id, pressed = of.as_str(), asked_for = %action, "a confirmation was pressed as another action");
                format!("That button was made for another request, not a {}; nothing was changed. Run the command again.", of.as_str())
            }
            ConfirmRefusal::OtherUser { owner } => {
                format!("Only <@{owner}>, who asked for this, can confirm or cancel it; nothing was changed.")
            }
            ConfirmRefusal::Expired => {
                "This confirmation has expired; nothing was changed. Run the command again if you still want it.".to_string()
            }
            ConfirmRefusal::AlreadyUsed { used_as } => {
                format!("This was already {}; nothing more was done.", if used_as == "confirm" { "confirmed" } else { "cancelled" })
            }
        })
        .not_replacing()),
        Err(e) => {
            tracing::error!(error = %e, "could not use a confirmation");
            Err(Reply::error(
                "The bot's database is unreachable, so your press could not be checked; nothing was changed. Please try again later.",
            ))
        }
    }
}
