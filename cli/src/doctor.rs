//! `iaas doctor`: every configured peer checked live with the settings `iaas serve` and the
//! functions read, one line per check (what, ok or not, the fix); the checks themselves are
//! `iaas_doctor`'s, shared with `/iaas doctor`. It changes nothing: the store is inspected
//! without migrating, vCenter is read, DNS gets an update with no changes in it, webhooks a
//! HEAD, the directory a search, Slack `auth.test`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Also look this person up in the directory by e-mail, with their groups.
    #[arg(long)]
    user: Option<String>,
    /// One JSON object per check instead of lines, for scripts.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let options = iaas_doctor::Options { scope: iaas_doctor::Scope::Everything, user: args.user, dispatch: None };
    let checks = iaas_doctor::run(&options).await;
    for c in &checks {
        if args.json {
            println!("{}", serde_json::to_string(c)?);
        } else {
            println!("{}", c.line());
        }
    }
    Ok(if iaas_doctor::failed(&checks) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
