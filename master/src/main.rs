//! `crctl`: turns the arguments into a command and runs it ([`crctl::cli`]).

fn main() -> std::process::ExitCode {
    // args_os: an argument that is not UTF-8 is the parser's to refuse, not a panic here.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::ExitCode::from(crctl::cli::main(&args))
}
