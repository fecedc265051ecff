//! crctl(8) against the code it documents: the commands and their options as clap defines them
//! (synopsis and COMMANDS), the configs
//! `show` prints, the inventory's keywords and limits, the exit statuses, and the lists of
//! files and mounts the commands name. Each comparison fails on a difference either way.

use std::collections::BTreeSet;

use crctl::cli::{CONFIGS, EXIT_STATUS};
use crctl::inventory::{KEYWORDS, MAX_BYTES, MAX_LINE};

const MAN: &str = include_str!("../crctl.8");

/// The lines of section `name`, from its `.SH` to the next.
fn section(name: &str) -> Vec<&'static str> {
    let heading = format!(".SH {name}");
    let lines: Vec<&str> = MAN.lines().collect();
    let start = lines.iter().position(|l| *l == heading).unwrap_or_else(|| panic!("crctl.8 has no {heading}"));
    lines[start + 1..].iter().take_while(|l| !l.starts_with(".SH ")).copied().collect()
}

/// A macro line's arguments: words, or "quoted words".
fn arguments(rest: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Roff text as a reader sees it: font changes dropped, `\-` a hyphen, `\&` nothing.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => {
                chars.next();
            }
            Some('-') => out.push('-'),
            Some('&') | None => {}
            Some('(') => {
                chars.next();
                chars.next();
            }
            Some(other) => out.push(other),
        }
    }
    out
}

/// The words a `.TP` tag line starts with, as a reader sees them: the text of a `.B` or `.I`
/// line up to its first font change, or the first argument of an alternating macro (`.BI
/// "show " config` is `show`).
fn tag(line: &str) -> String {
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    let text = match name {
        ".B" | ".I" => rest.split("\\f").next().unwrap_or_default().replace('"', ""),
        _ => arguments(rest).into_iter().next().unwrap_or_default(),
    };
    plain(&text).trim().to_string()
}

/// The `.TP` items of a section: their depth (inside `.RS`) and tag line.
fn items(lines: &[&'static str]) -> Vec<(usize, &'static str)> {
    let (mut depth, mut out) = (0usize, Vec::new());
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with(".RS") {
            depth += 1;
        } else if line.starts_with(".RE") {
            depth = depth.saturating_sub(1);
        } else if (*line == ".TP" || line.starts_with(".TP ")) && i + 1 < lines.len() {
            out.push((depth, lines[i + 1]));
        }
    }
    out
}

/// A command's words at the start of `text`: `node add` of `node add name mac`.
fn command_words(text: &str) -> String {
    let words = text.split_whitespace().take_while(|w| w.bytes().all(|b| b.is_ascii_lowercase()));
    words.collect::<Vec<_>>().join(" ")
}

/// The whole page as a reader sees it, every run of white space one space.
fn page() -> String {
    let mut text = String::new();
    for line in MAN.lines() {
        let line = match line.split_once(' ') {
            // Alternating macros join their arguments; .B and .I put spaces between them.
            Some((m, rest)) if m.starts_with('.') && m.len() == 3 => arguments(rest).concat(),
            Some((m, rest)) if m.starts_with('.') => arguments(rest).join(" "),
            None if line.starts_with('.') => String::new(),
            _ => line.to_string(),
        };
        text.push_str(&plain(&line));
        text.push(' ');
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every command clap knows, by its words: `node add`, ..., `help`.
fn code_commands() -> BTreeSet<String> {
    crctl::cli::commands().into_iter().collect()
}

/// The long options of the command `words` (its own: not --help), as clap defines them.
fn code_options(words: &str) -> BTreeSet<String> {
    let mut cmd = crctl::cli::command();
    cmd.build();
    let cmd = words.split(' ').filter(|w| !w.is_empty()).fold(&cmd, |c, w| c.find_subcommand(w).expect(words));
    let longs = cmd.get_arguments().filter_map(|a| a.get_long());
    longs.filter(|l| !["help", "version"].contains(l)).map(|l| format!("--{l}")).collect()
}

/// The synopsis's entries, from each `.B crctl` to its `.br`: the command's words (empty for
/// crctl's own options) and the long options the entry shows.
fn synopsis() -> Vec<(String, BTreeSet<String>)> {
    let lines = section("SYNOPSIS");
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix(".B crctl") else { continue };
        let entry: Vec<&str> = lines[i + 1..].iter().take_while(|l| **l != ".br").copied().collect();
        let words = match rest.trim() {
            "" => entry.iter().find(|l| l.starts_with(".B ")).map(|l| command_words(&tag(l))),
            inline => Some(command_words(&plain(inline))),
        };
        let text = plain(&std::iter::once(rest).chain(entry).collect::<Vec<_>>().join(" "));
        let options = text
            .split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(str::to_string)
            .collect();
        entries.push((words.unwrap_or_default(), options));
    }
    entries
}

#[test]
fn the_commands_section_documents_exactly_the_commands() {
    let documented: BTreeSet<String> = items(&section("COMMANDS"))
        .iter()
        .filter(|(depth, _)| *depth == 0)
        .map(|(_, l)| command_words(&tag(l)))
        .collect();
    assert_eq!(documented, code_commands(), "crctl.8's COMMANDS (left) and crctl::cli::command() (right)");
}

#[test]
fn the_synopsis_shows_exactly_the_commands() {
    let shown: BTreeSet<String> = synopsis().into_iter().map(|(words, _)| words).filter(|w| !w.is_empty()).collect();
    assert_eq!(shown, code_commands(), "crctl.8's SYNOPSIS (left) and crctl::cli::command() (right)");
}

#[test]
fn the_synopsis_shows_exactly_each_command_s_options() {
    for (words, options) in synopsis() {
        if words.is_empty() || words == "help" {
            // crctl's own --help and --version, and help's words.
            continue;
        }
        assert_eq!(options, code_options(&words), "crctl.8's SYNOPSIS of {words} (left) and clap's (right)");
    }
    let own: BTreeSet<String> = synopsis().into_iter().filter(|(w, _)| w.is_empty()).flat_map(|(_, o)| o).collect();
    assert_eq!(own, ["--help", "--version"].map(String::from).into(), "crctl.8's SYNOPSIS of crctl's own options");
}

#[test]
fn show_lists_exactly_the_configs_in_their_order() {
    let commands = section("COMMANDS");
    let items = items(&commands);
    let show = items.iter().position(|(d, l)| *d == 0 && tag(l) == "show").expect("crctl.8 documents show");
    let listed: Vec<String> =
        items[show + 1..].iter().take_while(|(depth, _)| *depth == 1).map(|(_, l)| tag(l)).collect();
    assert_eq!(listed, CONFIGS, "crctl.8's show configs (left) and crctl::cli::CONFIGS (right)");
}

#[test]
fn the_inventory_section_documents_exactly_the_keywords() {
    let documented: BTreeSet<String> = items(&section("THE INVENTORY"))
        .iter()
        .map(|(_, l)| tag(l).split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    let keywords: BTreeSet<String> = KEYWORDS.iter().map(|k| k.key.to_string()).collect();
    assert_eq!(documented, keywords, "crctl.8's inventory lines (left) and crctl::inventory::KEYWORDS (right)");
    let page = page();
    for k in KEYWORDS.iter().filter_map(|k| k.default) {
        assert!(page.contains(&format!("(default {k})")), "crctl.8 does not give the default {k}");
    }
    assert!(page.contains(&format!("at most {} MiB", MAX_BYTES >> 20)), "crctl.8's size limit");
    assert!(page.contains(&format!("at most {MAX_LINE} bytes")), "crctl.8's line limit");
}

#[test]
fn the_exit_statuses_are_exactly_those_crctl_returns() {
    let documented: BTreeSet<u8> =
        items(&section("EXIT STATUS")).iter().map(|(_, l)| tag(l).parse().expect("a status")).collect();
    let code: BTreeSet<u8> = EXIT_STATUS.iter().map(|(s, _)| *s).collect();
    assert_eq!(documented, code, "crctl.8's EXIT STATUS (left) and crctl::cli::EXIT_STATUS (right)");
}

/// `crctl help` and every command's `--help`, one after the other.
fn every_help() -> String {
    let mut text = String::new();
    for words in std::iter::once(String::new()).chain(crctl::cli::commands().into_iter().filter(|c| c != "help")) {
        let mut args: Vec<String> = words.split_whitespace().map(String::from).collect();
        args.push("--help".into());
        match crctl::cli::parse(&args).unwrap().command {
            crctl::cli::Command::Print(help) => text.push_str(&help),
            other => panic!("crctl {words} --help: {other:?}"),
        }
    }
    text
}

#[test]
fn the_lists_the_commands_act_on_are_named() {
    let page = page();
    let help = every_help().split_whitespace().collect::<Vec<_>>().join(" ");
    let mut names: Vec<String> = crctl::generalize::MASTER_FILES.iter().map(|f| f.to_string()).collect();
    names.extend(crctl::generalize::MASTER_GLOBS.iter().map(|glob| glob.to_string()));
    names.push(format!("{{{}}}", crctl::identity::SSH_KEY_TYPES.join(",")));
    names.extend(crctl::image::edit::BINDS.iter().map(|b| b.to_string()));
    names.push(format!("tmpfs (mode 0755, nosuid, nodev) on {}", crctl::image::edit::TMPFS));
    for name in names {
        assert!(page.contains(&name), "crctl.8 does not name {name}");
        assert!(help.contains(&name), "crctl help does not name {name}");
    }
}

#[test]
fn the_reader_of_the_page_reads_it_as_written() {
    // The helpers themselves, on lines of the page's kinds.
    assert_eq!(tag(r#".BI "node remove " name"#), "node remove");
    assert_eq!(tag(r#".B node add \fIname mac \fR[\fIaddress\fR|\fB\-\fR]"#), "node add");
    assert_eq!(tag(r#".BR sync " [" \-\-dry\-run "] [" \-\-root"#), "sync");
    assert_eq!(tag(r#".BI ipv6 " prefix" "\fR|\fPnone""#), "ipv6");
    assert_eq!(tag(".B site\\-dhcp"), "site-dhcp");
    assert_eq!(command_words(&tag(r#".BI "image default " version"#)), "image default");
    assert_eq!(command_words(&tag(r#".B image edit \fR[\fB\-\-dry\-run\fR]"#)), "image edit");
    assert!(page().contains("machine-id"));
}
