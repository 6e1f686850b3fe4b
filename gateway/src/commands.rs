//! The `/iaas` command table. Every command is declared once — name, aliases, usage, help,
//! required permission, destructive or not, and its argument parser — and `/iaas help`,
//! "did you mean", usage errors and routing all derive from this one table.

use iaas_invocation::{Command, PowerAction};

/// What a caller needs to run a command (enforced against the directory in the policy issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Operate,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Operate => "operate",
        }
    }
}

/// Another word for a command, with arguments it stands for (vebafn's `poweroff` = `power off`).
pub struct Alias {
    pub word: &'static str,
    pub inserts: &'static [&'static str],
}

pub struct CommandSpec {
    /// One or two words, e.g. `power` or `vm list`.
    pub name: &'static str,
    pub aliases: &'static [Alias],
    /// Arguments after the name, e.g. `<vm>`.
    pub args: &'static str,
    pub summary: &'static str,
    pub help: &'static str,
    pub permission: Permission,
    pub destructive: bool,
    pub parse: fn(&[String]) -> Result<Command, String>,
}

impl CommandSpec {
    pub fn usage(&self) -> String {
        format!("/iaas {} {}", self.name, self.args).trim_end().to_string()
    }
}

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "power",
        aliases: &[
            Alias { word: "poweron", inserts: &["on"] },
            Alias { word: "poweroff", inserts: &["off"] },
            Alias { word: "reboot", inserts: &["reboot"] },
        ],
        args: "on|off|shutdown|reboot|reset|suspend|status <vm>",
        summary: "Power a VM on or off, restart, suspend, or show its power state.",
        help: "`off` and `reset` are hard (like pulling the plug); `shutdown` and `reboot` ask the guest OS through VMware Tools.",
        permission: Permission::Operate,
        destructive: false,
        parse: parse_power,
    },
    CommandSpec {
        name: "vm list",
        aliases: &[Alias { word: "list", inserts: &[] }],
        args: "[pattern]",
        summary: "List VMs with power state, IP, guest OS, CPU and memory.",
        help: "The pattern is a glob (`app-*`) or a piece of the name (`web`).",
        permission: Permission::Read,
        destructive: false,
        parse: parse_vm_list,
    },
    CommandSpec {
        name: "vm info",
        aliases: &[Alias { word: "info", inserts: &[] }],
        args: "<vm>",
        summary: "Show one VM: power, IP, OS, size, host, datastores, folder, owner, lease.",
        help: "",
        permission: Permission::Read,
        destructive: false,
        parse: parse_vm_info,
    },
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
fn lookup(words: &[String]) -> Option<(&'static CommandSpec, Vec<String>)> {
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    for spec in COMMANDS {
        let name: Vec<&str> = spec.name.split(' ').collect();
        if lower.len() >= name.len() && lower.iter().zip(&name).all(|(a, b)| a == b) {
            return Some((spec, words[name.len()..].to_vec()));
        }
        if let Some(alias) = spec.aliases.iter().find(|a| a.word == lower[0]) {
            let args = alias.inserts.iter().map(|s| s.to_string()).chain(words[1..].iter().cloned()).collect();
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
            out.push_str(&format!("\nNeeds permission: {}{}", spec.permission.as_str(), if spec.destructive { " · destructive (asks for confirmation)" } else { "" }));
            return out;
        }
        return unknown(topic);
    }
    let lines: Vec<String> = COMMANDS.iter().map(|s| format!("• `{}` — {}", s.usage(), s.summary)).collect();
    format!("*/iaas commands*\n{}\n`/iaas help <command>` for details.", lines.join("\n"))
}

/// Splits on spaces and newlines, keeping quoted names together. Slack turns quotes into
/// smart quotes and `--` into dashes, so those are read as what the user typed.
pub fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let normalized = text
        .replace(['\u{201C}', '\u{201D}', '\u{201E}', '\u{201F}'], "\"")
        .replace(['\u{2018}', '\u{2019}'], "'")
        .replace(['\u{2014}', '\u{2013}'], "--");
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
    Ok(Command::Power { action, vm: vm.clone() })
}

fn parse_vm_list(args: &[String]) -> Result<Command, String> {
    only(args, 1)?;
    Ok(Command::VmList { pattern: args.first().cloned() })
}

fn parse_vm_info(args: &[String]) -> Result<Command, String> {
    let vm = args.first().ok_or("Say which VM.")?;
    only(args, 1)?;
    Ok(Command::VmInfo { vm: vm.clone() })
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

    #[test]
    fn help_is_generated_from_the_table() {
        let Parsed::Help(all) = parse("help") else { panic!() };
        for spec in COMMANDS {
            assert!(all.contains(&spec.usage()), "{all}");
        }
        let Parsed::Help(power) = parse("help power") else { panic!() };
        assert!(power.contains("poweroff") && power.contains("Needs permission: operate"), "{power}");
        let Parsed::Help(empty) = parse("") else { panic!() };
        assert_eq!(empty, all);
        let Parsed::Help(unknown) = parse("help powr") else { panic!() };
        assert!(unknown.contains("did you mean `power`"));
    }
}
