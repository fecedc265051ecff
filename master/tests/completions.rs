//! `crctl completions SHELL` from the built crctl: the scripts name every command, and bash,
//! sourcing its script, completes crctl's commands and image's.

use std::path::Path;
use std::process::{Command, Stdio};

/// What `crctl completions shell` prints.
fn script(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_crctl")).args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "crctl completions {shell}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("a script is UTF-8")
}

/// The words of every command, split at the first: (`image`, `edit`), (`sync`, ``).
fn commands() -> Vec<(String, String)> {
    let all = crctl::cli::commands();
    all.iter().map(|c| c.split_once(' ').map_or((c.clone(), String::new()), |(a, b)| (a.into(), b.into()))).collect()
}

#[test]
fn the_bash_script_names_every_command() {
    let bash = script("bash");
    let tops: Vec<String> = commands().into_iter().map(|(top, _)| top).collect();
    for top in ["node", "render", "diff", "generalize", "show", "sync", "apply", "image", "completions", "help"] {
        assert!(tops.iter().any(|t| t == top), "crctl has no {top}");
    }
    for (top, sub) in commands() {
        // The case labels the script dispatches on: `crctl,image)`, then `..._image,edit)`.
        assert!(bash.contains(&format!("crctl,{top})")), "the bash script lacks {top}");
        if !sub.is_empty() {
            assert!(bash.contains(&format!("{top},{sub})")), "the bash script lacks {top} {sub}");
        }
    }
    assert!(bash.contains("complete -F _crctl "), "the bash script registers no _crctl");
}

#[test]
fn zsh_and_fish_get_theirs() {
    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef crctl"), "{zsh}");
    let fish = script("fish");
    assert!(fish.contains("complete -c crctl"), "{fish}");
    for (top, _) in commands() {
        assert!(zsh.contains(&format!("'{top}:")) && fish.contains(&format!(" -a \"{top}\"")), "{top}");
    }
}

/// What bash's completion offers for `words`, the last being the word under the cursor: the
/// script sourced, COMP_WORDS and COMP_CWORD set and `_crctl` called as `complete -F` calls it.
fn bash_completes(file: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_crctl crctl '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash").arg("-c").arg(&program).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn bash_completes_commands() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("skipped: no bash to run the completion script in");
        return;
    }
    let file = std::env::temp_dir().join(format!("crctl-completion-{}.bash", std::process::id()));
    std::fs::write(&file, script("bash")).unwrap();
    assert_eq!(bash_completes(&file, &["crctl", "no"]), ["node"]);
    let image: Vec<String> = commands().into_iter().filter(|(top, _)| top == "image").map(|(_, sub)| sub).collect();
    let offered = bash_completes(&file, &["crctl", "image", ""]);
    let subcommands: Vec<String> = offered.into_iter().filter(|w| !w.starts_with('-')).collect();
    assert_eq!(subcommands, image);
    assert_eq!(bash_completes(&file, &["crctl", "node", "re"]), ["remove"]);
    assert_eq!(bash_completes(&file, &["crctl", "show", "dn"]), ["dnsmasq"]);
    assert_eq!(bash_completes(&file, &["crctl", "completions", "f"]), ["fish"]);
    std::fs::remove_file(&file).unwrap();
}
