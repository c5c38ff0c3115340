//! The `gridscope` command: parses arguments and calls the library (see `src/cli/`).

mod cli;

/// mimalloc: the server allocates many small strings per request (JSON, headers); it serves
/// them markedly faster than the system allocator under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}
