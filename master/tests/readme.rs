//! README.md's crctl command lines against clap's definitions: every `crctl WORDS` shown in a
//! code span or block names a command crctl has (`crctl image edit`, not `crctl image change`),
//! so that the README cannot drift from the parser.

const README: &str = include_str!("../../README.md");

/// The code of `text`: its fenced blocks' lines and its code spans (a span may run over a line
/// break, which is a space in it).
fn code(text: &str) -> Vec<String> {
    let (mut out, mut prose, mut fenced) = (Vec::new(), String::new(), false);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            out.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    // Code spans: the text between each pair of backticks.
    out.extend(prose.split('`').skip(1).step_by(2).map(|span| span.replace('\n', " ")));
    out
}

/// A `crctl` command line shown: its command's words and the long options it gives.
#[derive(Debug, PartialEq)]
struct Shown {
    words: Vec<String>,
    options: Vec<String>,
}

/// The command lines of `code`: the words after each `crctl` (a word of its own, or a path's
/// last part: `/usr/bin/crctl`), without crctl's own `-f FILE`, up to the first that is not a
/// command's (an operand, an option, a comment); and its long options, up to the end of the
/// command (a comment, `--`, `;`, a pipe).
fn shown(code: &str) -> Vec<Shown> {
    let words: Vec<&str> = code.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if *w != "crctl" && !w.ends_with("/crctl") {
            continue;
        }
        let mut rest = &words[i + 1..];
        if rest.first() == Some(&"-f") {
            rest = rest.get(2..).unwrap_or_default();
        }
        let end = rest.iter().position(|w| ["#", "--", ";", "|", "||", "&&"].contains(w)).unwrap_or(rest.len());
        let options = rest[..end].iter().filter(|w| w.starts_with("--")).map(|w| w.trim_end_matches([',', ')', ';']));
        let word = |w: &&&str| {
            w.starts_with(|c: char| c.is_ascii_lowercase()) && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        };
        out.push(Shown {
            words: rest.iter().take_while(word).map(|w| w.to_string()).collect(),
            options: options.map(String::from).collect(),
        });
    }
    out
}

/// The words after each `crctl` of `code` (see [`shown`]).
fn invocations(code: &str) -> Vec<Vec<String>> {
    shown(code).into_iter().map(|s| s.words).collect()
}

/// Whether `words` start with a command crctl has: its words one by one, as far as they go
/// into the tree of commands (a command with commands below it, such as `image`, followed by
/// a word must be followed by one of them), and whether that command has each of `options`.
/// `Err` names the first word or option it lacks.
fn check(words: &[String], options: &[String]) -> Result<(), String> {
    let mut cmd = crctl::cli::command();
    cmd.build();
    let mut at = &cmd;
    let mut path = Vec::new();
    for w in words {
        if !at.has_subcommands() || at.get_name() == "help" {
            break;
        }
        match at.find_subcommand(w) {
            Some(sc) => at = sc,
            None => return Err(format!("'{w}' is no command of crctl{}", path.concat())),
        }
        path.push(format!(" {w}"));
    }
    for o in options {
        if !at.get_arguments().any(|a| a.get_long().is_some_and(|l| format!("--{l}") == *o)) {
            return Err(format!("crctl{} has no option {o}", path.concat()));
        }
    }
    Ok(())
}

#[test]
fn every_crctl_command_line_of_the_readme_is_crctl_s() {
    let mut seen = 0;
    let mut wrong = Vec::new();
    for c in code(README) {
        for Shown { words, options } in shown(&c) {
            seen += 1;
            if let Err(e) = check(&words, &options) {
                wrong.push(format!("`{c}`: {e}"));
            }
        }
    }
    assert!(wrong.is_empty(), "README.md's crctl commands that crctl lacks:\n{}", wrong.join("\n"));
    // The sections that show crctl (The inventory: `crctl`, Image versions) are read.
    assert!(seen >= 30, "only {seen} crctl command lines found in README.md");
}

#[test]
fn the_readme_s_sections_on_crctl_show_its_commands() {
    for heading in ["### The inventory: `crctl`", "### Image versions"] {
        let start = README.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README.md has no {heading}"));
        let body = &README[start + heading.len() + 2..];
        let body = &body[..body.find("\n## ").or_else(|| body.find("\n### ")).unwrap_or(body.len())];
        let shown: Vec<Vec<String>> = code(body).iter().flat_map(|c| invocations(c)).collect();
        assert!(shown.iter().filter(|w| !w.is_empty()).count() >= 5, "{heading} shows few crctl commands: {shown:?}");
    }
}

#[test]
fn the_reader_finds_commands_and_refuses_others() {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(invocations("crctl -f /x image list --root /r"), [words("image list")]);
    assert_eq!(invocations("ExecStartPost=/usr/bin/crctl image export"), [words("image export")]);
    assert_eq!(invocations("crctl diff master --state /tmp/m"), [words("diff master")]);
    assert_eq!(code("a `crctl image\nedit` b\n```sh\ncrctl sync\n```\n"), ["crctl sync", "crctl image edit"]);
    let line = "crctl diff node1 --state /tmp/node1 # --frob; crctl image edit -- ls --root";
    let lines = shown(line);
    assert_eq!(lines[0], Shown { words: words("diff"), options: words("--state") });
    assert_eq!(lines[1], Shown { words: words("image edit"), options: vec![] });
    for good in ["", "help", "help image", "image", "image edit", "diff master", "node add n3"] {
        assert_eq!(check(&words(good), &[]), Ok(()), "{good}");
    }
    for bad in ["images list", "image change", "node show", "nodes"] {
        assert!(check(&words(bad), &[]).is_err(), "{bad}");
    }
    assert_eq!(check(&words("sync"), &words("--dry-run --into-image")), Ok(()));
    assert_eq!(
        check(&words("image list"), &words("--dry-run")),
        Err("crctl image list has no option --dry-run".into())
    );
}
