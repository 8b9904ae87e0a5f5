//! Entry point: parse arguments, set up logging, dispatch to a subcommand,
//! print any error once (with its causes) and exit with the status
//! [`exit::status`] gives. The only place the process exits.

use clap::Parser;
use qcc_customers::cli::{Cli, Command, LogFormat};
use qcc_customers::cmd;
use qcc_customers::exit::{self, Ended};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the pipeline allocates and frees
/// many small buffers per call across threads, where glibc's malloc spent a
/// measurable share of the client's CPU (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(exit::status(&try_main()));
}

/// Parse, set up logging and run the subcommand; how it ended decides the
/// exit status (in [`exit::status`]), and an error is printed here, once.
fn try_main() -> anyhow::Result<Ended> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Printing can only fail when stderr is closed: the exit code still says it.
            let _ = e.print();
            return Ok(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => Ended::Done,
                _ => Ended::Usage,
            });
        }
    };
    init_tracing(cli.log_format, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Ok(Ended::Internal);
        }
    };
    let quiet = cli.quiet;
    // A second signal: end at once, without waiting for calls in flight.
    let abort = CancellationToken::new();
    let result = runtime.block_on(async {
        let command = async {
            match cli.command {
                Command::Run(args) => cmd::run::run(*args, quiet, &abort).await,
                Command::Demo(args) => cmd::demo::run(args, quiet, &abort).await,
                Command::MockServer(args) => cmd::mock_server::run(args).await,
                Command::Status(args) => cmd::status::run(args),
                Command::Export(args) => cmd::export::run(args),
                Command::Rebuild(args) => cmd::rebuild::run(args),
                Command::Completions(args) => cmd::shell::completions(args),
                Command::Man(args) => cmd::shell::man(args),
            }
        };
        tokio::select! {
            result = command => result,
            _ = abort.cancelled() => Ok(Ended::Resumable),
        }
    });
    if abort.is_cancelled() {
        // Nothing is waited for: every committed page is already durable.
        runtime.shutdown_background();
    } else {
        // Do not wait long for stray tasks (e.g. a stalled connection) at exit.
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    }
    if let Err(e) = &result {
        eprint!("{}", cmd::error_report(e));
    }
    result
}

fn init_tracing(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_env("QCC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    // Colours only for people: cron logs and pipes get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(qcc_customers::pipeline::report::progress::log_writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
