//! The `gridscope` command: parses arguments and calls the library (see `src/cli/`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
