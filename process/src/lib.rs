//! What every anteroom binary does around its work: `--config FILE
//! [--check]`, logging set up from the config, and waiting for the signal to
//! stop. The gateway, the worker and the bench share it, so a binary depends
//! on this crate for its plumbing rather than on another binary's library.
//!
//! A library returns errors; only a binary decides to exit. The functions
//! here print what the operator is to read and hand `main` the exit code to
//! return; none of them exits the process.

use std::path::Path;
use std::process::ExitCode;

use anteroom_config::{Config, ConfigError, LogFormat};

mod shutdown;

pub use shutdown::Shutdown;

/// The exit code for a config that does not validate, apart from 1 (a
/// failure while running) so that a deploy script can tell "fix the file"
/// from "it failed".
pub const EXIT_INVALID_CONFIG: u8 = 2;

/// `--config FILE [--check]`, the same for every binary: load and validate
/// the file. `Ok` is the config to run with. `Err` is the code `main` is to
/// return at once, having bound nothing:
/// - the file is invalid: `{program}: invalid config {path}: {error}` on
///   stderr, code 2 (a bad config never starts a half-working server);
/// - `check` and the file is valid: `{program}: {path} is valid` on
///   stdout, code 0.
///
/// ```no_run
/// # fn main() -> std::process::ExitCode {
/// # let path = std::path::Path::new("anteroom.toml");
/// let config = match anteroom_process::load_config("anteroom-worker", path, false) {
///     Ok(config) => config,
///     Err(code) => return code,
/// };
/// # std::process::ExitCode::SUCCESS
/// # }
/// ```
pub fn load_config(program: &str, path: &Path, check: bool) -> Result<Config, ExitCode> {
    load_config_with(program, path, check, |_| Ok::<(), ConfigError>(()))
}

/// [`load_config`], with a binary's own checks of what it alone understands
/// (the gateway compiles the pages of `[pages] dir`): a problem there is an
/// invalid config too, code 2. The problem names the key.
pub fn load_config_with<Problem: std::fmt::Display>(
    program: &str,
    path: &Path,
    check: bool,
    also: impl FnOnce(&Config) -> Result<(), Problem>,
) -> Result<Config, ExitCode> {
    let loaded = Config::load(path).and_then(|config| match also(&config) {
        Ok(()) => Ok(config),
        Err(problem) => Err(ConfigError::Invalid(problem.to_string())),
    });
    match loaded {
        Err(error) => {
            eprintln!("{program}: invalid config {}: {error}", path.display());
            Err(ExitCode::from(EXIT_INVALID_CONFIG))
        }
        Ok(_) if check => {
            println!("{program}: {} is valid", path.display());
            Err(ExitCode::SUCCESS)
        }
        Ok(config) => Ok(config),
    }
}

/// `RUST_LOG` filters (default `info`); `log_format` picks text or JSON.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        let _ = interrupt.await;
        return;
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn demo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml")
    }

    #[test]
    fn a_valid_file_runs_and_a_check_of_it_ends_with_success() {
        let config = load_config("test", &demo(), false).expect("demo.toml is valid");
        assert!(config.room("demo").is_some());
        assert_eq!(
            load_config("test", &demo(), true).err(),
            Some(ExitCode::SUCCESS)
        );
    }

    #[test]
    fn an_invalid_file_or_a_failed_own_check_ends_with_code_2() {
        let invalid = ExitCode::from(EXIT_INVALID_CONFIG);
        let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-file.toml");
        assert_eq!(load_config("test", &missing, false).err(), Some(invalid));
        assert_eq!(load_config("test", &missing, true).err(), Some(invalid));
        let refused = load_config_with("test", &demo(), true, |_| {
            Err("pages.dir: waiting.html: broken".to_owned())
        });
        assert_eq!(refused.err(), Some(invalid));
    }
}
