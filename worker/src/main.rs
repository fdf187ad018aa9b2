//! `anteroom-worker --config FILE [--check]`
//!
//! The worker will drain buffered booking requests into the booking store
//! (the intake issue). Today it validates the deployment's config like every
//! binary, and refuses to pretend: with `[[buffer]]` routes configured it
//! exits with an error saying draining is not available yet.
//!
//! Room admission needs no worker: every gateway steps its rooms, and the
//! store's step is safe to run from many gateways at once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Background work for gateways sharing Redis.
#[derive(Debug, Parser)]
#[command(name = "anteroom-worker", version)]
struct Args {
    /// The deployment's TOML file (the same one the gateways read).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the config and exit: 0 valid, 2 invalid.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt().init();
    let config = anteroom_config::load_for_binary(&args.config, args.check, "anteroom-worker");
    if config.buffers.is_empty() {
        tracing::info!("no [[buffer]] routes configured: nothing to drain");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "anteroom-worker: {} [[buffer]] route(s) configured, but draining buffered requests is not implemented yet",
            config.buffers.len()
        );
        ExitCode::FAILURE
    }
}
