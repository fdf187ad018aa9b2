//! `anteroom-bench`: rehearse opening day.
//!
//! `origin` runs the simulated booking site; `surge` sends an opening-day
//! crowd at a site; `lazio` replays one surge without and with anteroom;
//! `http` measures the gateway's hot paths against nginx; `verify-draw`
//! recomputes a room's draw from its public JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anteroom_bench::origin::{self, DegradeArgs, Melt, OriginOptions};
use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "anteroom-bench",
    version,
    about = "Rehearse opening day: a simulated origin, surges and reports"
)]
struct Cli {
    /// The deployment's TOML file (read by the rehearsals that start a gateway).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Validate `--config` and exit: 0 valid, 2 invalid.
    #[arg(long, requires = "config")]
    check: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo booking site that stands in for the existing site.
    Origin(OriginArgs),
    /// Send an opening-day crowd at a site and report what it saw.
    Surge(Box<anteroom_bench::surge::command::SurgeArgs>),
    /// Replay one surge straight at a simulated site, then through anteroom.
    Lazio(Box<anteroom_bench::lazio::LazioArgs>),
    /// Measure the gateway's hot paths against nginx, in one run.
    Http(anteroom_bench::http::HttpArgs),
    /// Recompute a room's draw from its public JSON: check the seed against
    /// the commitment and print each pre-queue ticket's place (or one).
    VerifyDraw(anteroom_bench::verify_draw::VerifyDrawArgs),
}

#[derive(Debug, Args)]
struct OriginArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Simulated service time per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    service_ms: u64,
    /// Bookings each appointment slot takes before answering 409.
    #[arg(long, default_value_t = 100)]
    slot_capacity: u32,
    /// Requests the site serves well at once; beyond it the site melts
    /// (latency climbs, then throughput falls, then 503s). Unset: never.
    #[arg(long)]
    capacity: Option<u32>,
    /// Requests at once past which the site's threads are exhausted and its
    /// throughput falls (default: twice --capacity).
    #[arg(long, requires = "capacity")]
    collapse: Option<u32>,
    /// A request that would take longer is answered 503 at this point.
    #[arg(long, default_value_t = 10_000, requires = "capacity")]
    timeout_ms: u64,
    /// The site loses capacity during the run, and may get it back.
    #[command(flatten)]
    degrade: DegradeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr: stdout carries the reports.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A rehearsal holds thousands of connections at each end.
    let open_files = anteroom_bench::fd_limit::raise();
    tracing::debug!(?open_files, "the bench's limit on open files");
    // Validates (and with --check, ends) like every anteroom binary.
    if let Some(path) = &cli.config
        && let Err(code) = anteroom_process::load_config("anteroom-bench", path, cli.check)
    {
        return code;
    }
    match cli.command {
        Some(Command::Origin(args)) => origin_command(args).await,
        Some(Command::Surge(args)) => anteroom_bench::surge::command::command(*args).await,
        Some(Command::Lazio(args)) => anteroom_bench::lazio::command(*args).await,
        Some(Command::Http(args)) => anteroom_bench::http::run(args).await,
        Some(Command::VerifyDraw(args)) => anteroom_bench::verify_draw::command(args).await,
        None => {
            eprintln!("anteroom-bench: say what to run, e.g. `anteroom-bench origin` (see --help)");
            ExitCode::from(2)
        }
    }
}

async fn origin_command(args: OriginArgs) -> ExitCode {
    let degradation = match args.degrade.check(args.capacity) {
        Ok(degradation) => degradation,
        Err(problem) => {
            eprintln!("anteroom-bench origin: {problem}");
            return ExitCode::from(2);
        }
    };
    let melt = args.capacity.map(|capacity| Melt {
        capacity,
        collapse: args.collapse.unwrap_or(capacity.saturating_mul(2)),
        timeout: Duration::from_millis(args.timeout_ms),
    });
    let options = OriginOptions {
        service_time: Duration::from_millis(args.service_ms),
        slot_capacity: args.slot_capacity,
        melt,
        degradation,
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            error!(%error, listen = %args.listen, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let listen = listener.local_addr().unwrap_or(args.listen);
    info!(%listen, service_ms = args.service_ms, slot_capacity = args.slot_capacity, ?melt, ?degradation, "origin listening");
    origin::run(listener, options, anteroom_process::shutdown_signal()).await;
    info!("origin stopped");
    ExitCode::SUCCESS
}
