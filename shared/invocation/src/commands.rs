//! The `/iaas` commands, each declared once (poise's model): its name (what roles grant), the
//! function that runs it, its effect (which derives the VM lock and the confirmation), its
//! grammar (aliases, arguments, parser), help text and examples. Routing, access names, locks,
//! `/iaas help`, "did you mean", usage errors and the README's command table all derive from
//! [`COMMANDS`]; what cannot derive is checked by the tests at the end of this file.

use crate::command::{Command, Confirmable, PowerAction};
use iaas_ids::{RequestId, VmName};

/// What running a command does. [`Command::target_vm`] (the one-change-per-VM lock) and the
/// confirmation buttons are checked against it by tests; help shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Reads,
    /// Changes the VM it names; the function kit locks that VM for the change.
    ChangesVm,
    /// Makes a VM under the name it gives; the name is locked while it is made.
    CreatesVm,
    /// Only asks: nothing changes until the asker presses Confirm, and the press
    /// (`Command::Confirm`, same name and function) locks the VM it confirms.
    AsksFirst(Confirmable),
    /// Changes the bot's own records (leases, requests), not a VM's configuration.
    ChangesRecords,
}

impl Effect {
    /// How help describes it.
    pub fn describe(self) -> &'static str {
        match self {
            Effect::Reads => "reads only",
            Effect::ChangesVm => "changes the VM (one change per VM at a time)",
            Effect::CreatesVm => "creates a VM",
            Effect::AsksFirst(_) => "asks you to confirm with a button before anything changes",
            Effect::ChangesRecords => "changes the bot's records",
        }
    }
}

/// Another word for a command, with arguments it stands for (vebafn's `poweroff` = `power off`).
pub struct Alias {
    pub word: &'static str,
    pub inserts: &'static [&'static str],
    /// The alias takes the first two arguments in the other order (vebafn's `clonetemplate`).
    pub swapped: bool,
}

const fn alias(word: &'static str, inserts: &'static [&'static str]) -> Alias {
    Alias { word, inserts, swapped: false }
}

/// One command's declaration.
pub struct Spec {
    /// One or two words, e.g. `power` or `vm list`; also the name IT's roles grant.
    pub name: &'static str,
    /// The deployable function that runs it (each function crate's `NAME`).
    pub function: &'static str,
    pub effect: Effect,
    pub aliases: &'static [Alias],
    /// Arguments after the name, e.g. `<vm>`.
    pub args: &'static str,
    pub summary: &'static str,
    pub help: &'static str,
    /// Argument lines that parse (shown in help; the tests run each through the parser).
    pub examples: &'static [&'static str],
    pub parse: fn(&[String]) -> Result<Command, String>,
}

impl Spec {
    pub fn usage(&self) -> String {
        format!("/iaas {} {}", self.name, self.args).trim_end().to_string()
    }

    /// The declaration named `name` (as roles and [`Command::name`] say it).
    pub fn named(name: &str) -> Option<&'static Spec> {
        COMMANDS.iter().copied().find(|s| s.name == name)
    }
}

pub static POWER: Spec = Spec {
    name: "power",
    function: "iaas-power",
    aliases: &[alias("poweron", &["on"]), alias("poweroff", &["off"]), alias("reboot", &["reboot"])],
    args: "on|off|shutdown|reboot|reset|suspend|status <vm>",
    summary: "Power a VM on or off, restart, suspend, or show its power state.",
    help: "`off` and `reset` are hard (like pulling the plug); `shutdown` and `reboot` ask the guest OS through VMware Tools.",
    effect: Effect::ChangesVm,
    examples: &["off app-web-01", "status app-web-01"],
    parse: parse_power,
};

pub static VM_LIST: Spec = Spec {
    name: "vm list",
    function: "iaas-inventory",
    aliases: &[alias("list", &[])],
    args: "[pattern]",
    summary: "List VMs with power state, IP, guest OS, CPU and memory.",
    help: "The pattern is a glob (`app-*`) or a piece of the name (`web`).",
    effect: Effect::Reads,
    examples: &["", "app-*"],
    parse: parse_vm_list,
};

pub static VM_INFO: Spec = Spec {
    name: "vm info",
    function: "iaas-inventory",
    aliases: &[alias("info", &[])],
    args: "<vm>",
    summary: "Show one VM: power, IP, OS, size, host, datastores, folder, owner, lease.",
    help: "",
    effect: Effect::Reads,
    examples: &["app-web-01"],
    parse: parse_vm_info,
};

pub static CREATE: Spec = Spec {
    name: "create",
    function: "iaas-create",
    aliases: &[alias("spawn", &[])],
    args: "<name> [--size <size>] [--os <family>] [--days <n>]",
    summary: "Create a new VM of one of IT's sizes; you become its owner.",
    help: "Sizes, OS families, placement and the longest lease come from IT's policy.",
    effect: Effect::CreatesVm,
    examples: &["web-07 --size medium --days 14"],
    parse: parse_create,
};

pub static CLONE: Spec = Spec {
    name: "clone",
    function: "iaas-clone",
    aliases: &[],
    args: "<source-vm> <new-name>",
    summary: "Clone a VM into a new one; you become its owner.",
    help: "",
    effect: Effect::CreatesVm,
    examples: &["app-web-01 app-web-03"],
    parse: parse_clone,
};

pub static DEPLOY: Spec = Spec {
    name: "deploy",
    function: "iaas-clone",
    aliases: &[Alias { word: "clonetemplate", inserts: &[], swapped: true }],
    args: "<template> <new-name>",
    summary: "Deploy a new VM from one of IT's templates.",
    help: "`clonetemplate <new-name> <template>` is the same, in vebafn's order.",
    effect: Effect::CreatesVm,
    examples: &["tmpl-ubuntu-22 web-09"],
    parse: parse_deploy,
};

pub static RESIZE: Spec = Spec {
    name: "resize",
    function: "iaas-resize",
    aliases: &[alias("transform", &[])],
    args: "<vm> [--cpu <n>] [--memory <GB>] [--restart]",
    summary: "Change a VM's vCPUs and memory within IT's limits.",
    help: "A running VM is changed live when hot-add is enabled; otherwise you are offered a power off, resize and power on (or pass --restart).",
    effect: Effect::ChangesVm,
    examples: &["app-db-01 --memory 12 --restart"],
    parse: parse_resize,
};

pub static DELETE: Spec = Spec {
    name: "delete",
    function: "iaas-delete",
    aliases: &[alias("nuke", &[])],
    args: "<vm>",
    summary: "Delete a VM, after you confirm with a button.",
    help: "Shows the VM's facts and asks for confirmation; a running VM is powered off first. Protected VMs are never deleted.",
    effect: Effect::AsksFirst(Confirmable::Delete),
    examples: &["app-web-02"],
    parse: parse_delete,
};

pub static DECOMMISSION_CANCEL: Spec = Spec {
    name: "decommission cancel",
    function: "iaas-decommission",
    aliases: &[],
    args: "<request-id>",
    summary: "Stop a decommission request before its next step (nothing is rolled back).",
    help: "The requester or an admin may cancel. A shutdown being waited for is interrupted; the status says which steps ran.",
    effect: Effect::ChangesRecords,
    examples: &["0193a7c2"],
    parse: |raw| Ok(Command::DecommissionCancel { id: one_id(raw)? }),
};

pub static DECOMMISSION_LIST: Spec = Spec {
    name: "decommission list",
    function: "iaas-decommission",
    aliases: &[],
    args: "[--mine] [--state <state>] [--vm <vm>] [--since <YYYY-MM-DD|Nd|Nh>]",
    summary: "List decommission requests, newest first.",
    help: "States: pending_confirmation, running, done, failed, cancelled.",
    effect: Effect::Reads,
    examples: &["--mine --state running"],
    parse: parse_decommission_list,
};

pub static DECOMMISSION_STATUS: Spec = Spec {
    name: "decommission status",
    function: "iaas-decommission",
    aliases: &[],
    args: "<request-id>",
    summary: "Show a decommission request: each VM's steps, what they did and when.",
    help: "",
    effect: Effect::Reads,
    examples: &["0193a7c2"],
    parse: |raw| Ok(Command::DecommissionStatus { id: one_id(raw)? }),
};

pub static DECOMMISSION: Spec = Spec {
    name: "decommission",
    function: "iaas-decommission",
    aliases: &[alias("retire", &[])],
    args: "<vm> [<vm> …] [--ticket <id>] [--reason \"…\"]",
    summary: "Retire VMs for good in one request: shut down, delete and clean up, after you confirm.",
    help: "Shows each VM's facts and the steps IT's plan runs for its OS, then asks for confirmation. Progress is updated in place; `/iaas decommission status <id>` shows the record.",
    effect: Effect::AsksFirst(Confirmable::Decommission),
    examples: &["app-web-01 app-web-02 --ticket CHG-42"],
    parse: parse_decommission,
};

pub static EXPIRE_SHOW: Spec = Spec {
    name: "expire show",
    function: "iaas-expire",
    aliases: &[],
    args: "<vm>",
    summary: "Show a VM's lease: when it expires, what happens then, how far it can be extended.",
    help: "",
    effect: Effect::Reads,
    examples: &["app-web-01"],
    parse: |raw| Ok(Command::ExpireShow { vm: one_vm(raw)? }),
};

pub static EXPIRE_LIST: Spec = Spec {
    name: "expire list",
    function: "iaas-expire",
    aliases: &[],
    args: "[--mine] [--days <n>]",
    summary: "List leases, soonest first: yours only, or those expiring within n days.",
    help: "",
    effect: Effect::Reads,
    examples: &["--mine --days 7"],
    parse: parse_expire_list,
};

pub static EXPIRE_EXTEND: Spec = Spec {
    name: "expire extend",
    function: "iaas-expire",
    aliases: &[],
    args: "<vm>",
    summary: "Extend a VM's lease by IT's extension period, up to IT's maximum.",
    help: "Never shortens a lease; the answer says the new date and the cap.",
    effect: Effect::ChangesRecords,
    examples: &["app-web-01"],
    parse: |raw| Ok(Command::ExpireExtend { vm: one_vm(raw)? }),
};

pub static EXPIRE_SET: Spec = Spec {
    name: "expire set",
    function: "iaas-expire",
    aliases: &[],
    args: "<vm> <YYYY-MM-DD>",
    summary: "Set a VM's expiry date (admins).",
    help: "",
    effect: Effect::ChangesRecords,
    examples: &["app-web-01 2026-12-31"],
    parse: parse_expire_set,
};

pub static EXPIRE_REMOVE: Spec = Spec {
    name: "expire remove",
    function: "iaas-expire",
    aliases: &[],
    args: "<vm>",
    summary: "Take a VM's lease away, so it never expires (admins).",
    help: "",
    effect: Effect::ChangesRecords,
    examples: &["app-web-01"],
    parse: |raw| Ok(Command::ExpireRemove { vm: one_vm(raw)? }),
};

pub static QUOTA: Spec = Spec {
    name: "quota",
    function: "iaas-inventory",
    aliases: &[],
    args: "",
    summary: "Show how much of your quota (VMs, vCPUs, memory) you use.",
    help: "",
    effect: Effect::Reads,
    examples: &[""],
    parse: parse_quota,
};

pub static CAPACITY: Spec = Spec {
    name: "capacity",
    function: "iaas-inventory",
    aliases: &[],
    args: "",
    summary: "Show the datastores new VMs may go to: capacity, free, reserved, headroom (admins).",
    help: "Each datastore the placement reaches, the space reserved for VMs being made, IT's headroom, and whether new VMs may go there.",
    effect: Effect::Reads,
    examples: &[""],
    parse: |raw| {
        Args::parse(raw, &[])?.exactly([])?;
        Ok(Command::Capacity)
    },
};

pub static AUDIT: Spec = Spec {
    name: "audit",
    function: "iaas-inventory",
    aliases: &[],
    args: "[--user <@user|id>] [--vm <vm>] [--since <YYYY-MM-DD|Nd|Nh>]",
    summary: "Show the audit trail: who asked for what, the decision and the outcome.",
    help: "For IT: every command and button press, allowed or denied, and how it ended.",
    effect: Effect::Reads,
    examples: &["--vm app-web-01 --since 7d"],
    parse: parse_audit,
};

/// Where [`DOCTOR`] runs: the gateway answers it itself instead of dispatching it.
pub const GATEWAY: &str = "iaas-gateway";

pub static DOCTOR: Spec = Spec {
    name: "doctor",
    function: GATEWAY,
    aliases: &[],
    args: "",
    summary: "Check every peer the bot uses (as `iaas doctor` does) and show what to fix; for IT.",
    help: "Only roles that grant `doctor` (or `*`) may run it; the answer is shown to you only and holds no secrets. A deployed gateway checks what it reaches (policy, database, directory, Slack, dispatch) and says where to run `iaas doctor` for the rest.",
    effect: Effect::Reads,
    examples: &[""],
    parse: parse_doctor,
};

/// Every command, in lookup order: sub-commands before the command whose arguments they would
/// otherwise be taken as (`decommission cancel` before `decommission`).
pub static COMMANDS: &[&Spec] = &[
    &POWER,
    &VM_LIST,
    &VM_INFO,
    &CREATE,
    &CLONE,
    &DEPLOY,
    &RESIZE,
    &DELETE,
    &DECOMMISSION_CANCEL,
    &DECOMMISSION_LIST,
    &DECOMMISSION_STATUS,
    &DECOMMISSION,
    &EXPIRE_SHOW,
    &EXPIRE_LIST,
    &EXPIRE_EXTEND,
    &EXPIRE_SET,
    &EXPIRE_REMOVE,
    &QUOTA,
    &CAPACITY,
    &AUDIT,
    &DOCTOR,
];

/// What the gateway does with a line of `/iaas` text.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Command),
    /// Answer directly (help text), nothing dispatched.
    Help(String),
    /// Answer directly with what was wrong and the usage.
    Invalid(String),
}

pub fn parse(text: &str) -> Parsed {
    let words = match tokenize(text) {
        Ok(w) => w,
        Err(e) => return Parsed::Invalid(e),
    };
    if words.is_empty() || words[0].eq_ignore_ascii_case("help") {
        return Parsed::Help(help(words.get(1..).unwrap_or_default()));
    }
    let Some((spec, rest)) = lookup(&words) else {
        return Parsed::Invalid(unknown(&words));
    };
    match (spec.parse)(&rest) {
        Ok(cmd) => Parsed::Run(cmd),
        Err(problem) => Parsed::Invalid(format!("{problem}\nUsage: `{}`", spec.usage())),
    }
}

/// The spec the words name (by name or alias) and the arguments after it.
fn lookup(words: &[String]) -> Option<(&'static Spec, Vec<String>)> {
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    for spec in COMMANDS {
        let name_len = spec.name.split(' ').count();
        if lower.len() >= name_len && lower.iter().zip(spec.name.split(' ')).all(|(a, b)| a == b) {
            return Some((spec, words[name_len..].to_vec()));
        }
        if let Some(alias) = spec.aliases.iter().find(|a| a.word == lower[0]) {
            let mut rest = words[1..].to_vec();
            if alias.swapped && rest.len() >= 2 {
                rest.swap(0, 1);
            }
            let args = alias.inserts.iter().map(|s| s.to_string()).chain(rest).collect();
            return Some((spec, args));
        }
    }
    None
}

fn unknown(words: &[String]) -> String {
    let said = words.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
    let candidates = COMMANDS.iter().flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().map(|a| a.word)));
    let first = words[0].to_lowercase();
    let two = said.to_lowercase();
    let best = candidates
        .map(|c| (strsim::jaro_winkler(if c.contains(' ') { &two } else { &first }, c), c))
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, guess)) => format!("I don't know `{said}` — did you mean `{guess}`? Try `/iaas help`."),
        None => format!("I don't know `{said}`. Try `/iaas help` for the commands."),
    }
}

pub fn help(topic: &[String]) -> String {
    if !topic.is_empty() {
        if let Some((spec, _)) = lookup(topic) {
            let mut out = format!("*{}*\n{}", spec.usage(), spec.summary);
            if !spec.help.is_empty() {
                out.push_str(&format!("\n{}", spec.help));
            }
            if !spec.aliases.is_empty() {
                let aliases: Vec<String> = spec
                    .aliases
                    .iter()
                    .map(|a| format!("`{}` = `{}`", a.word, format!("{} {}", spec.name, a.inserts.join(" ")).trim_end()))
                    .collect();
                out.push_str(&format!("\nAliases: {}", aliases.join(", ")));
            }
            let examples: Vec<String> =
                spec.examples.iter().map(|e| format!("`{}`", format!("/iaas {} {e}", spec.name).trim_end())).collect();
            out.push_str(&format!("\nE.g. {}\nIt {}; IT's roles decide who may run it.", examples.join(", "), spec.effect.describe()));
            return out;
        }
        return unknown(topic);
    }
    let lines: Vec<String> = COMMANDS.iter().map(|s| format!("• `{}` — {}", s.usage(), s.summary)).collect();
    format!("*/iaas commands*\n{}\n`/iaas help <command>` for details.", lines.join("\n"))
}

/// The README's command table: one row per declaration, so the README cannot drift from what
/// the bot parses (a test compares the two).
pub fn markdown_table() -> String {
    let mut out = String::from("| command | what it does |\n|---|---|\n");
    for spec in COMMANDS {
        let aliases: Vec<String> = spec.aliases.iter().map(|a| format!("`{}`", a.word)).collect();
        let aliases = match aliases.as_slice() {
            [] => String::new(),
            [one] => format!(" Alias {one}."),
            many => format!(" Aliases {}.", many.join(", ")),
        };
        out.push_str(&format!("| `{}` | {}{aliases} |\n", spec.usage().replace('|', "\\|"), spec.summary));
    }
    out
}

/// Splits on spaces and newlines, keeping quoted names together. Slack turns quotes into
/// smart quotes and `--` into dashes, so those are read as what the user typed.
pub fn tokenize(text: &str) -> Result<Vec<String>, String> {
    // Typographic quotes and dashes (phones put them in) are all outside ASCII.
    let normalized: std::borrow::Cow<str> = if text.is_ascii() {
        text.into()
    } else {
        text.replace(['\u{201C}', '\u{201D}', '\u{201E}', '\u{201F}'], "\"")
            .replace(['\u{2018}', '\u{2019}'], "'")
            .replace(['\u{2014}', '\u{2013}'], "--")
            .into()
    };
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in normalized.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("A quote is not closed; put names with spaces in \"double quotes\".".into());
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

fn parse_power(args: &[String]) -> Result<Command, String> {
    let (Some(action), Some(vm)) = (args.first(), args.get(1)) else {
        return Err("Say what to do and to which VM.".into());
    };
    let action = PowerAction::parse(action).ok_or_else(|| format!("`{action}` is not a power action."))?;
    only(args, 2)?;
    Ok(Command::Power { action, vm: vm.into() })
}

fn parse_vm_list(args: &[String]) -> Result<Command, String> {
    only(args, 1)?;
    Ok(Command::VmList { pattern: args.first().cloned() })
}

fn parse_vm_info(args: &[String]) -> Result<Command, String> {
    let vm = args.first().ok_or("Say which VM.")?;
    only(args, 1)?;
    Ok(Command::VmInfo { vm: vm.into() })
}

/// Positional arguments and `--flag [value]` options, checked against what a command takes.
struct Args {
    positional: Vec<String>,
    flags: Vec<(String, Option<String>)>,
}

impl Args {
    /// `flags` lists the options the command takes, and whether each takes a value.
    fn parse(raw: &[String], flags: &[(&str, bool)]) -> Result<Args, String> {
        let mut out = Args { positional: Vec::new(), flags: Vec::new() };
        let mut words = raw.iter();
        while let Some(word) = words.next() {
            let Some(name) = word.strip_prefix("--") else {
                out.positional.push(word.clone());
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_lowercase(), Some(v.to_string())),
                None => (name.to_lowercase(), None),
            };
            let Some(&(_, takes_value)) = flags.iter().find(|(f, _)| *f == name) else {
                let known: Vec<String> = flags.iter().map(|(f, _)| format!("--{f}")).collect();
                return Err(if known.is_empty() {
                    format!("`--{name}` is not an option here.")
                } else {
                    format!("`--{name}` is not an option here; use {}.", known.join(", "))
                });
            };
            let value = match (takes_value, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(words.next().ok_or_else(|| format!("`--{name}` needs a value."))?.clone()),
                (false, None) => None,
                (false, Some(_)) => return Err(format!("`--{name}` takes no value.")),
            };
            if out.flags.iter().any(|(f, _)| *f == name) {
                return Err(format!("`--{name}` is given twice."));
            }
            out.flags.push((name, value));
        }
        Ok(out)
    }

    fn value(&self, flag: &str) -> Option<String> {
        self.flags.iter().find(|(f, _)| f == flag).and_then(|(_, v)| v.clone())
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| f == flag)
    }

    fn number(&self, flag: &str) -> Result<Option<u32>, String> {
        self.value(flag)
            .map(|v| v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| format!("`--{flag} {v}` needs a whole number above 0.")))
            .transpose()
    }

    /// Exactly as many positional arguments as `names`, which say what each one is.
    fn exactly<const N: usize>(&self, names: [&str; N]) -> Result<[String; N], String> {
        if self.positional.len() < N {
            return Err(format!("Missing {}.", names[self.positional.len()..].join(" and ")));
        }
        only(&self.positional, N)?;
        Ok(std::array::from_fn(|i| self.positional[i].clone()))
    }
}

fn parse_create(raw: &[String]) -> Result<Command, String> {
    let args = Args::parse(raw, &[("size", true), ("os", true), ("days", true)])?;
    let [name] = args.exactly(["the new VM's name"])?;
    Ok(Command::Create { name: name.into(), size: args.value("size"), os: args.value("os"), days: args.number("days")? })
}

fn parse_clone(raw: &[String]) -> Result<Command, String> {
    let [source, name] = Args::parse(raw, &[])?.exactly(["the source VM", "the new VM's name"])?;
    Ok(Command::Clone { source: source.into(), name: name.into() })
}

fn parse_deploy(raw: &[String]) -> Result<Command, String> {
    let [template, name] = Args::parse(raw, &[])?.exactly(["the template", "the new VM's name"])?;
    Ok(Command::Deploy { template, name: name.into() })
}

fn parse_resize(raw: &[String]) -> Result<Command, String> {
    let args = Args::parse(raw, &[("cpu", true), ("memory", true), ("restart", false)])?;
    let [vm] = args.exactly(["the VM"])?;
    let (cpus, memory_gb) = (args.number("cpu")?, args.number("memory")?);
    if cpus.is_none() && memory_gb.is_none() {
        return Err("Say the new size with --cpu and/or --memory.".into());
    }
    Ok(Command::Resize { vm: vm.into(), cpus, memory_gb, restart: args.has("restart") })
}

fn parse_delete(raw: &[String]) -> Result<Command, String> {
    let [vm] = Args::parse(raw, &[])?.exactly(["the VM"])?;
    Ok(Command::Delete { vm: vm.into() })
}

/// The most VMs one decommission request may name.
const MAX_DECOMMISSION_VMS: usize = 50;

fn parse_decommission(raw: &[String]) -> Result<Command, String> {
    let args = Args::parse(raw, &[("ticket", true), ("reason", true)])?;
    if args.positional.is_empty() {
        return Err("Say which VMs to decommission.".into());
    }
    let mut vms: Vec<VmName> = Vec::new();
    for vm in &args.positional {
        if !vms.iter().any(|v| v.eq_ignore_ascii_case(vm)) {
            vms.push(vm.into());
        }
    }
    if vms.len() > MAX_DECOMMISSION_VMS {
        return Err(format!("One request may name at most {MAX_DECOMMISSION_VMS} VMs; split it into several."));
    }
    Ok(Command::Decommission { vms, ticket: args.value("ticket"), reason: args.value("reason") })
}

fn parse_decommission_list(raw: &[String]) -> Result<Command, String> {
    let args = Args::parse(raw, &[("mine", false), ("state", true), ("vm", true), ("since", true)])?;
    args.exactly([])?;
    let state = args.value("state").map(|s| s.to_lowercase());
    if let Some(s) = &state {
        s.parse::<iaas_config::DecommissionState>().map_err(|unknown| unknown.to_string())?;
    }
    let since = args.value("since").map(|s| parse_since(&s, chrono::Utc::now())).transpose()?;
    Ok(Command::DecommissionList { mine: args.has("mine"), state, vm: args.value("vm"), since })
}

fn one_id(raw: &[String]) -> Result<RequestId, String> {
    let [id] = Args::parse(raw, &[])?.exactly(["the request id"])?;
    Ok(id.into())
}

fn one_vm(raw: &[String]) -> Result<VmName, String> {
    let [vm] = Args::parse(raw, &[])?.exactly(["the VM"])?;
    Ok(vm.into())
}

fn parse_expire_list(raw: &[String]) -> Result<Command, String> {
    let args = Args::parse(raw, &[("mine", false), ("days", true)])?;
    args.exactly([])?;
    Ok(Command::ExpireList { mine: args.has("mine"), days: args.number("days")? })
}

fn parse_expire_set(raw: &[String]) -> Result<Command, String> {
    let [vm, date] = Args::parse(raw, &[])?.exactly(["the VM", "the date"])?;
    chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| format!("`{date}` is not a date like 2026-12-31."))?;
    Ok(Command::ExpireSet { vm: vm.into(), date })
}

fn parse_quota(raw: &[String]) -> Result<Command, String> {
    Args::parse(raw, &[])?.exactly([])?;
    Ok(Command::Quota)
}

fn parse_doctor(raw: &[String]) -> Result<Command, String> {
    Args::parse(raw, &[])?.exactly([])?;
    Ok(Command::Doctor)
}

fn parse_audit(raw: &[String]) -> Result<Command, String> {
    let args = Args::parse(raw, &[("user", true), ("vm", true), ("since", true)])?;
    args.exactly([])?;
    // Slack shows a mention as <@U123> or <@U123|name>; keep the id.
    let user =
        args.value("user").map(|u| u.trim_start_matches("<@").trim_end_matches('>').split('|').next().unwrap_or_default().to_string());
    let since = args.value("since").map(|s| parse_since(&s, chrono::Utc::now())).transpose()?;
    Ok(Command::Audit { user, vm: args.value("vm"), since })
}

/// `2026-11-01`, `7d` or `24h`, as unix seconds.
fn parse_since(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    let bad = || format!("`--since {text}` should be a date like 2026-11-01, or 7d, or 24h.");
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc().timestamp());
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        _ => return Err(bad()),
    };
    Ok(now.timestamp() - secs)
}

fn only(args: &[String], n: usize) -> Result<(), String> {
    match args.get(n) {
        None => Ok(()),
        Some(extra) => Err(format!("Unexpected `{extra}`; put a name with spaces in \"quotes\".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Command {
        match parse(text) {
            Parsed::Run(c) => c,
            other => panic!("{text:?} → {other:?}"),
        }
    }

    fn invalid(text: &str) -> String {
        match parse(text) {
            Parsed::Invalid(e) => e,
            other => panic!("{text:?} → {other:?}"),
        }
    }

    #[test]
    fn commands_and_aliases() {
        let off = Command::Power { action: PowerAction::Off, vm: "app-web-01".into() };
        assert_eq!(run("power off app-web-01"), off);
        assert_eq!(run("  POWER  Off\napp-web-01 "), off);
        assert_eq!(run("poweroff app-web-01"), off);
        assert_eq!(run("reboot db"), Command::Power { action: PowerAction::Reboot, vm: "db".into() });
        assert_eq!(run("poweron\ndb"), Command::Power { action: PowerAction::On, vm: "db".into() });
        assert_eq!(run("vm list"), Command::VmList { pattern: None });
        assert_eq!(run("vm list app-*"), Command::VmList { pattern: Some("app-*".into()) });
        assert_eq!(run("list web"), Command::VmList { pattern: Some("web".into()) });
        assert_eq!(run("vm info app-db-01"), Command::VmInfo { vm: "app-db-01".into() });
    }

    #[test]
    fn lifecycle_commands_flags_and_vebafn_aliases() {
        assert_eq!(
            run("create web-07 --size medium —days 14"),
            Command::Create { name: "web-07".into(), size: Some("medium".into()), os: None, days: Some(14) }
        );
        assert_eq!(run("spawn x --os=windows"), Command::Create { name: "x".into(), size: None, os: Some("windows".into()), days: None });
        assert_eq!(run("clone app-web-01 app-web-03"), Command::Clone { source: "app-web-01".into(), name: "app-web-03".into() });
        assert_eq!(run("deploy tmpl-ubuntu-22 web-09"), Command::Deploy { template: "tmpl-ubuntu-22".into(), name: "web-09".into() });
        assert_eq!(
            run("clonetemplate web-09 tmpl-ubuntu-22"),
            Command::Deploy { template: "tmpl-ubuntu-22".into(), name: "web-09".into() }
        );
        assert_eq!(
            run("transform db --memory 8 --restart"),
            Command::Resize { vm: "db".into(), cpus: None, memory_gb: Some(8), restart: true }
        );
        assert_eq!(run("nuke app-web-02"), Command::Delete { vm: "app-web-02".into() });
        assert!(invalid("create").contains("Missing the new VM's name"));
        assert!(invalid("create x --colour red").contains("`--colour` is not an option here; use --size, --os, --days."));
        assert!(invalid("create x --days").contains("`--days` needs a value"));
        assert!(invalid("create x --days soon").contains("needs a whole number"));
        assert!(invalid("create x --size a --size b").contains("given twice"));
        assert!(invalid("resize db").contains("--cpu and/or --memory"));
        assert!(invalid("resize db --restart=yes --cpu 2").contains("takes no value"));
        assert!(invalid("clone a").contains("Missing the new VM's name"));
        assert!(invalid("delete a b").contains("Unexpected `b`"));
    }

    #[test]
    fn expire_commands() {
        assert_eq!(run("expire show app-web-01"), Command::ExpireShow { vm: "app-web-01".into() });
        assert_eq!(run("expire list --mine --days 7"), Command::ExpireList { mine: true, days: Some(7) });
        assert_eq!(run("expire extend x"), Command::ExpireExtend { vm: "x".into() });
        assert_eq!(run("expire set x 2026-12-31"), Command::ExpireSet { vm: "x".into(), date: "2026-12-31".into() });
        assert!(invalid("expire set x tomorrow").contains("not a date"));
        assert_eq!(run("expire remove x"), Command::ExpireRemove { vm: "x".into() });
        assert!(invalid("expire frob x").contains("did you mean"));
    }

    #[test]
    fn quota_and_audit() {
        assert_eq!(run("quota"), Command::Quota);
        assert_eq!(run("doctor"), Command::Doctor);
        assert_eq!(run("capacity"), Command::Capacity);
        assert!(invalid("capacity now").contains("Unexpected `now`"));
        assert!(invalid("quota now").contains("Unexpected `now`"));
        let Command::Audit { user, vm, since } = run("audit --user <@U123|ann> --vm app-web-01 --since 2026-11-01") else { panic!() };
        assert_eq!((user.as_deref(), vm.as_deref(), since), (Some("U123"), Some("app-web-01"), Some(1_793_491_200)));
        let now = chrono::DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(parse_since("2d", now), Ok(1_000_000 - 172_800));
        assert_eq!(parse_since("3h", now), Ok(1_000_000 - 10_800));
        assert!(parse_since("soon", now).is_err());
        assert!(invalid("audit --since yesterday").contains("should be a date"));
    }

    #[test]
    fn decommission_commands() {
        assert_eq!(
            run("decommission web-1 web-2 web-1 --ticket CHG-42 --reason \"end of project\""),
            Command::Decommission {
                vms: vec!["web-1".into(), "web-2".into()],
                ticket: Some("CHG-42".into()),
                reason: Some("end of project".into())
            }
        );
        assert_eq!(run("retire x"), Command::Decommission { vms: vec!["x".into()], ticket: None, reason: None });
        assert_eq!(run("decommission cancel 0192abcd"), Command::DecommissionCancel { id: "0192abcd".into() });
        assert_eq!(run("decommission status 0192abcd"), Command::DecommissionStatus { id: "0192abcd".into() });
        assert_eq!(
            run("decommission list --mine --state Running --vm web-1"),
            Command::DecommissionList { mine: true, state: Some("running".into()), vm: Some("web-1".into()), since: None }
        );
        assert!(invalid("decommission").contains("Say which VMs"));
        assert!(invalid("decommission list --state gone").contains("not a request state"));
        assert!(invalid("decommission cancel").contains("Missing the request id"));
        assert!(invalid("decommission x --force").contains("`--force` is not an option here"));
    }

    #[test]
    fn quotes_smart_quotes_and_dashes() {
        assert_eq!(tokenize("power on \"my vm\"").unwrap(), ["power", "on", "my vm"]);
        assert_eq!(tokenize("power on \u{201C}my vm\u{201D}").unwrap(), ["power", "on", "my vm"]);
        assert_eq!(tokenize("vm info \u{2018}a b\u{2019}").unwrap(), ["vm", "info", "a b"]);
        assert_eq!(tokenize("create x \u{2014}size small").unwrap(), ["create", "x", "--size", "small"]);
        assert_eq!(tokenize("x \u{2013}days 3").unwrap(), ["x", "--days", "3"]);
        assert_eq!(tokenize("a \"\" b").unwrap(), ["a", "", "b"]);
        assert!(invalid("power on \"my vm").contains("quote is not closed"));
    }

    #[test]
    fn mistakes_get_usage_and_suggestions() {
        assert!(invalid("powr off x").contains("did you mean `power`"));
        assert!(invalid("vm lst").contains("did you mean `vm list`"));
        assert!(invalid("frobnicate").contains("/iaas help"));
        let e = invalid("power sideways x");
        assert!(e.contains("`sideways` is not a power action") && e.contains("Usage: `/iaas power on|off"), "{e}");
        assert!(invalid("power off").contains("Usage"));
        assert!(invalid("power off a b").contains("Unexpected `b`"));
        assert!(invalid("vm info").contains("Say which VM"));
    }

    /// Each declaration's examples parse into commands that map back to it, so the variant →
    /// declaration match and the table cannot drift apart.
    #[test]
    fn every_example_parses_back_to_its_declaration() {
        for spec in COMMANDS {
            assert!(!spec.examples.is_empty(), "{} has no example", spec.name);
            for example in spec.examples {
                let command = run(&format!("{} {example}", spec.name));
                assert!(std::ptr::eq(command.spec(), *spec), "`{} {example}` maps to `{}`", spec.name, command.spec().name);
                assert_eq!(command.name(), spec.name);
                assert_eq!(command.function(), spec.function);
            }
        }
    }

    /// The effect decides the lock: a command that changes or creates a VM names it (so the kit
    /// locks it), and no other command does.
    #[test]
    fn effects_agree_with_the_vm_lock() {
        for spec in COMMANDS {
            let commands: Vec<Command> = spec.examples.iter().map(|e| run(&format!("{} {e}", spec.name))).collect();
            let locks = commands.iter().filter(|c| c.target_vm().is_some()).count();
            match spec.effect {
                Effect::ChangesVm | Effect::CreatesVm => assert!(locks > 0, "{}: no example names the VM to lock", spec.name),
                Effect::Reads | Effect::ChangesRecords | Effect::AsksFirst(_) => {
                    assert_eq!(locks, 0, "{} locks a VM but is declared {:?}", spec.name, spec.effect)
                }
            }
            if let Effect::AsksFirst(of) = spec.effect {
                for confirmed in [true, false] {
                    let press = Command::from_action(&of.action_id(confirmed), "token").unwrap();
                    assert!(std::ptr::eq(press.spec(), *spec), "{}'s press maps elsewhere", spec.name);
                }
            }
        }
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut words: Vec<&str> = COMMANDS.iter().map(|s| s.name).collect();
        words.extend(COMMANDS.iter().flat_map(|s| s.aliases.iter().map(|a| a.word)));
        let count = words.len();
        words.sort();
        words.dedup();
        assert_eq!(words.len(), count, "a name or alias is declared twice");
    }

    #[test]
    fn help_is_generated_from_the_table() {
        let Parsed::Help(all) = parse("help") else { panic!() };
        for spec in COMMANDS {
            assert!(all.contains(&spec.usage()), "{all}");
        }
        let Parsed::Help(power) = parse("help power") else { panic!() };
        assert!(power.contains("poweroff") && power.contains("It changes the VM"), "{power}");
        let Parsed::Help(delete) = parse("help delete") else { panic!() };
        assert!(delete.contains("asks you to confirm with a button") && delete.contains("`/iaas delete app-web-02`"), "{delete}");
        let Parsed::Help(empty) = parse("") else { panic!() };
        assert_eq!(empty, all);
        let Parsed::Help(unknown) = parse("help powr") else { panic!() };
        assert!(unknown.contains("did you mean `power`"));
    }
}
