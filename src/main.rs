//! The `chorus` command: parse arguments, dispatch, map errors to exit codes.
mod cli;
mod progress;

fn main() -> std::process::ExitCode {
    cli::main()
}
