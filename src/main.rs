//! Entry point: parse arguments, set up logging, dispatch to a subcommand,
//! print any error once (with its causes) and exit with its code.

use clap::Parser;
use qcc_customers::cli::{Cli, Command, LogFormat};
use qcc_customers::{cmd, exit};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the pipeline allocates and frees
/// many small buffers per call across threads, where glibc's malloc spent a
/// measurable share of the client's CPU (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => exit::OK,
                _ => exit::USAGE,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    init_tracing(cli.log_format, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::SOFTWARE);
        }
    };
    let quiet = cli.quiet;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => cmd::run::run(*args, quiet).await,
            Command::Demo(args) => cmd::demo::run(args, quiet).await,
            Command::MockServer(args) => cmd::mock_server::run(args).await,
            Command::Status(args) => cmd::status::run(args),
            Command::Export(args) => cmd::export::run(args),
            Command::Rebuild(args) => cmd::rebuild::run(args),
        }
    });
    // Do not wait for stray tasks (e.g. a stalled connection) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let code = cmd::exit_code_of(&e);
            eprint!("{}", cmd::error_report(&e));
            code
        }
    };
    std::process::exit(code);
}

fn init_tracing(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_env("QCC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    // Colours only for people: cron logs and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(qcc_customers::progress::log_writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
