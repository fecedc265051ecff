//! A command line clap refuses, said in one line: the problem, in the words of the command it
//! belongs to, and its usage where operands are missing or too many.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::args::prefix;
use super::UsageError;

/// The words of the command `args` name (`node add`), as far as they name one: the help's
/// (`crctl help node add`) and the message's. A leading `help` is passed over: its words name
/// the command whose help is asked for.
pub fn command_words(root: &clap::Command, args: &[String]) -> Vec<String> {
    let (mut words, mut cmd) = (Vec::new(), root);
    let mut it = args.iter().enumerate();
    while let Some((i, a)) = it.next() {
        if a == "--" {
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            // An option that takes a value (not given with =) takes the next word.
            if !a.contains('=') && takes_value(cmd, a) {
                it.next();
            }
            continue;
        }
        if a == "help" && i == 0 {
            continue;
        }
        match cmd.find_subcommand(a) {
            Some(sc) => {
                words.push(sc.get_name().to_string());
                cmd = sc;
            }
            None => break,
        }
    }
    words
}

/// The command `words` name, below `root`.
fn find<'a>(root: &'a clap::Command, words: &[String]) -> &'a clap::Command {
    words.iter().fold(root, |cmd, w| cmd.find_subcommand(w).unwrap_or(cmd))
}

/// Whether `option` (`--root`, `-f`) is one of `cmd`'s that takes a value.
fn takes_value(cmd: &clap::Command, option: &str) -> bool {
    cmd.get_arguments().any(|a| {
        let named = match option.strip_prefix("--") {
            Some(long) => a.get_long() == Some(long),
            None => option.len() == 2 && a.get_short() == option.chars().nth(1),
        };
        named && a.get_action().takes_values()
    })
}

/// The usage of `cmd` (whose words are `words`), from its definition: `crctl node add NAME MAC
/// [ADDRESS|-] [GROUP,...] [--root DIR] [--into-image]`.
pub fn usage(cmd: &clap::Command, words: &[String]) -> String {
    let mut out = vec!["crctl".to_string()];
    out.extend(words.iter().cloned());
    if cmd.has_subcommands() {
        out.push("COMMAND".into());
    }
    let name = |a: &clap::Arg| {
        a.get_value_names().and_then(|n| n.first()).map_or_else(|| a.get_id().to_string(), |n| n.to_string())
    };
    let positionals: Vec<&clap::Arg> = cmd.get_positionals().filter(|a| !a.is_hide_set()).collect();
    for a in positionals.iter().filter(|a| !a.is_last_set()) {
        out.push(if a.is_required_set() { name(a) } else { format!("[{}]", name(a)) });
    }
    for a in cmd.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()) {
        let Some(long) = a.get_long() else { continue };
        if ["help", "version"].contains(&long) {
            continue;
        }
        out.push(if a.get_action().takes_values() { format!("[--{long} {}]", name(a)) } else { format!("[--{long}]") });
    }
    for a in positionals.iter().filter(|a| a.is_last_set()) {
        out.push(format!("[-- {}...]", name(a)));
    }
    out.join(" ")
}

/// What a value names, for "--root needs a directory".
fn noun(value_name: &str) -> String {
    match value_name {
        "DIR" => "a directory".into(),
        "FILE" => "the inventory's file".into(),
        other => format!("its {other}"),
    }
}

fn text(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(" ")),
        _ => None,
    }
}

fn texts(err: &clap::Error, kind: ContextKind) -> Vec<String> {
    match err.get(kind) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `<NAME>` as `NAME`, `--root <DIR>` as (`--root`, `DIR`).
fn unbracket(s: &str) -> String {
    s.replace(['<', '>'], "")
}

/// The one-line message for clap's refusal of `args`, below the command `root`.
pub fn refusal(err: &clap::Error, root: &clap::Command, args: &[String]) -> UsageError {
    let words = command_words(root, args);
    let cmd = find(root, &words);
    let name = words.join(" ");
    let pre = prefix(&name);
    let subcommands = || -> Vec<String> {
        let each = cmd.get_subcommands().filter(|sc| !sc.is_hide_set() && sc.get_name() != "help");
        each.map(|sc| format!("{name} {}", sc.get_name()).trim_start().to_string()).collect()
    };
    let message = match err.kind() {
        ErrorKind::InvalidSubcommand => {
            let bad = text(err, ContextKind::InvalidSubcommand).unwrap_or_default();
            if name.is_empty() {
                format!("unknown command '{bad}'")
            } else {
                format!("unknown command '{name} {bad}' (want {})", subcommands().join(", "))
            }
        }
        // `node`, `image`: clap's own answer is their help, on standard error.
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("{name} needs a command: {}", subcommands().join(", "))
        }
        ErrorKind::UnknownArgument => {
            let bad = text(err, ContextKind::InvalidArg).unwrap_or_default();
            if bad.starts_with('-') {
                format!("{pre}unknown option '{bad}'")
            } else if let Some(last) = cmd.get_positionals().find(|a| a.is_last_set()) {
                let value = last.get_value_names().and_then(|n| n.first()).map_or("ARG".into(), |n| n.to_string());
                format!("{pre}put the command after --: crctl {name} -- {value} [ARG...]")
            } else {
                format!("{pre}unexpected '{bad}' ({})", usage(cmd, &words))
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let missing: Vec<String> = texts(err, ContextKind::InvalidArg).iter().map(|a| unbracket(a)).collect();
            let verb = if missing.len() == 1 { "is" } else { "are" };
            format!("{pre}{} {verb} missing ({})", missing.join(" and "), usage(cmd, &words))
        }
        ErrorKind::InvalidValue => {
            let arg = text(err, ContextKind::InvalidArg).unwrap_or_default();
            let (option, value_name) = match arg.split_once(' ') {
                Some((o, v)) => (o.to_string(), unbracket(v)),
                None => (String::new(), unbracket(&arg)),
            };
            let value = text(err, ContextKind::InvalidValue).unwrap_or_default();
            let valid = texts(err, ContextKind::ValidValue);
            if !valid.is_empty() {
                format!("no {} named '{value}' (want one of {})", value_name.to_lowercase(), valid.join(", "))
            } else if value.is_empty() && !option.is_empty() {
                format!("{pre}{option} needs {}", noun(&value_name))
            } else {
                format!("{pre}'{value}' is not a valid {value_name}")
            }
        }
        // Any other (none that crctl's definitions allow): clap's own first line.
        _ => {
            let shown = err.to_string();
            let first = shown.lines().next().unwrap_or_default();
            format!("{pre}{}", first.trim_start_matches("error: "))
        }
    };
    UsageError::Malformed { command: name, message }
}
