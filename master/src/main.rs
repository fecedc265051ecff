//! `crctl`: turns the arguments into a command and runs it ([`crctl::cli`]).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::ExitCode::from(crctl::cli::main(&args))
}
