//! Running a helper program (`zfs`, `exportfs`) to completion: its output, or why it failed.

use std::ffi::OsStr;
use std::path::Path;

/// Each caller turns these into its own error, with the hint that fits its program.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("running `{argv}` failed: {source}")]
    Spawn { argv: String, source: std::io::Error },
    #[error("`{argv}` failed ({status}): {stderr}")]
    Failed { argv: String, status: String, stderr: String },
}

/// Runs `program` with `args` and no standard input; its standard output on success, its
/// first non-blank line of standard error when it exits non-zero.
pub fn run_checked<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Result<String, CommandError> {
    let program = program.as_ref();
    let argv = || {
        let words = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned());
        std::iter::once(Path::new(program).display().to_string()).chain(words).collect::<Vec<_>>().join(" ")
    };
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| CommandError::Spawn { argv: argv(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(CommandError::Failed {
            argv: argv(),
            status: out.status.to_string(),
            stderr: stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_or_the_first_line_of_stderr() {
        assert_eq!(run_checked("sh", &["-c", "echo hi"]).unwrap(), "hi\n");
        let e = run_checked("sh", &["-c", "echo >&2; echo 'first' >&2; echo second >&2; exit 3"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`sh -c echo >&2; echo 'first' >&2; echo second >&2; exit 3` failed (exit status: 3): first"
        );
        let e = run_checked("/nonexistent/crctl-test", &["-ra"]).unwrap_err();
        assert!(matches!(&e, CommandError::Spawn { argv, .. } if argv == "/nonexistent/crctl-test -ra"), "{e}");
    }
}
