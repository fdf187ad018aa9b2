//! `anteroom-worker --config FILE [--check]`
//!
//! Drains the buffered requests of every `[[buffer]]` into its sink, sharing
//! the pace with every other worker through Redis. Room admission needs no
//! worker: every gateway steps its rooms, safely from many gateways at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anteroom_config::Backend;
use anteroom_process::Shutdown;
use anteroom_store::{BufferStore, RedisStore, Store};
use clap::Parser;
use tokio::net::TcpListener;

/// Drains buffered booking requests into the booking store.
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The TLS files of `[store]` are tried as the client takes them, so
    // that `--check` finds a client key that is not its certificate's.
    let config = match anteroom_process::load_config_with(
        "anteroom-worker",
        &args.config,
        args.check,
        |config| match &config.store.backend {
            Backend::Memory => Ok(()),
            backend => RedisStore::check_backend(backend),
        },
    ) {
        Ok(config) => config,
        Err(code) => return code,
    };
    anteroom_process::init_tracing(config.log_format);
    if !config.store.backend.is_redis() {
        eprintln!(
            "anteroom-worker: store.backend is \"memory\": the gateway drains its buffers \
             in-process and there is nothing for a worker to do; set backend = \"redis\" to \
             run workers beside several gateways"
        );
        return ExitCode::FAILURE;
    }
    let store = match RedisStore::for_backend(&config.store.backend) {
        Ok(store) => Arc::new(store.with_min_replicas_acked(config.store.min_replicas_acked)),
        Err(error) => {
            eprintln!("anteroom-worker: store: {error}");
            return ExitCode::FAILURE;
        }
    };
    let admin = match TcpListener::bind(config.worker.admin_listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "anteroom-worker: cannot listen on {} (worker.admin_listen): {error}",
                config.worker.admin_listen
            );
            return ExitCode::FAILURE;
        }
    };
    anteroom_worker::admin::metrics_handle();
    let buffers: Arc<dyn BufferStore> = store.clone();
    let drainer = match anteroom_worker::Drainer::new(&config, buffers).await {
        Ok(drainer) => drainer,
        Err(error) => {
            eprintln!("anteroom-worker: {error}");
            return ExitCode::FAILURE;
        }
    };
    for buffer in &config.buffers {
        if buffer.sink_timeout > config.shutdown_grace {
            tracing::warn!(
                buffer = %buffer.name,
                sink_timeout = ?buffer.sink_timeout,
                shutdown_grace = ?config.shutdown_grace,
                "shutdown_grace_seconds is shorter than sink_timeout_seconds: on SIGTERM, slow requests may be cut short and handed back to the queue"
            );
        }
    }
    if let Some(replicas) = config.store.min_replicas_acked {
        tokio::spawn(check_replication(store.clone(), replicas));
    }
    if config.buffers.is_empty() {
        tracing::info!("no [[buffer]] configured: nothing to drain; serving health and metrics");
    }
    tracing::info!(
        admin_listen = %config.worker.admin_listen,
        buffers = config.buffers.len(),
        "anteroom worker started"
    );
    // The drain stops at the signal; health and metrics stay up until it
    // has finished.
    let draining = Shutdown::new();
    let stopped = Shutdown::new();
    let rooms: Arc<dyn Store> = store;
    let admin_stop = {
        let stopped = stopped.clone();
        async move { stopped.begun().await }
    };
    let admin_task = tokio::spawn(anteroom_worker::admin::serve(admin, rooms, admin_stop));
    let grace = config.shutdown_grace;
    tokio::spawn({
        let draining = draining.clone();
        async move {
            anteroom_process::shutdown_signal().await;
            tracing::info!(?grace, "stopping: no new requests taken");
            draining.begin();
        }
    });
    drainer.run(draining, grace).await;
    stopped.begin();
    let _ = admin_task.await;
    tracing::info!("anteroom worker stopped");
    ExitCode::SUCCESS
}

/// With `store.min_replicas_acked`, the deployment asked not to lose a
/// booking to a failover: says so at startup when this worker's Redis is
/// not the primary (its takes are refused, READONLY), or would go on taking
/// writes cut off from its replicas (`min-replicas-to-write` 0: in a split
/// brain this worker could deliver what the new primary's workers deliver
/// too; the idempotency key makes that harmless, not free).
async fn check_replication(store: Arc<RedisStore>, replicas: std::num::NonZeroU32) {
    match store.replication().await {
        Ok(replication) => {
            for warning in replication.warnings(replicas) {
                tracing::warn!(
                    %warning,
                    role = %replication.role,
                    connected_replicas = replication.connected_replicas,
                    min_replicas_acked = replicas.get(),
                    "Redis's replication falls short of what bookings wait for"
                );
            }
        }
        Err(error) => {
            tracing::warn!(%error, "could not read Redis's replication (INFO replication)");
        }
    }
}
