//! `anteroom-gateway --config FILE [--check]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;

/// The front door: waiting rooms in front of an existing site.
#[derive(Debug, Parser)]
#[command(name = "anteroom-gateway", version)]
struct Args {
    /// The deployment's TOML file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the config and exit: 0 valid, 2 invalid.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The pages of `[pages] dir` and the TLS files of `[store]` are part of
    // the config: compiled and tried here too, so that `--check` finds a
    // broken template or a client key that is not its certificate's.
    let config = match anteroom_process::load_config_with(
        "anteroom-gateway",
        &args.config,
        args.check,
        anteroom_gateway::check,
    ) {
        Ok(config) => config,
        Err(code) => return code,
    };
    anteroom_process::init_tracing(config.log_format);

    let public = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "anteroom-gateway: cannot listen on {} (listen): {error}",
                config.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let admin = match TcpListener::bind(config.admin_listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "anteroom-gateway: cannot listen on {} (admin_listen): {error}",
                config.admin_listen
            );
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listen = %config.listen,
        admin_listen = %config.admin_listen,
        upstream = %config.upstream.uri,
        rooms = config.rooms.len(),
        "anteroom gateway started"
    );
    match anteroom_gateway::run(public, admin, config, anteroom_process::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("anteroom-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}
