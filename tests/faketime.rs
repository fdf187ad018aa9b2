//! A process of ours on a clock set off from the machine's, with
//! libfaketime (Debian: `faketime`, which `scripts/test` installs): a host
//! whose clock is wrong, for the binaries (`anteroom-gateway`,
//! `anteroom-worker`). In-process gateways take a skewed `Clock` instead.
//!
//! The library is preloaded into the process itself (`LD_PRELOAD` and
//! `FAKETIME`) rather than run under the `faketime` command, which would
//! stand between the test and the process: a `kill -9` must reach the
//! process. (Redis cannot be run so: its allocator and libfaketime do not
//! get on, and the store's clock is the one we keep right.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where Debian and others put the library.
const PLACES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// How far a process's clock is from the machine's.
#[derive(Debug, Clone, Copy)]
pub enum Skew {
    /// Minutes ahead.
    AheadMinutes(u32),
    /// Minutes behind.
    BehindMinutes(u32),
}

impl Skew {
    /// libfaketime's relative offset: the clock runs, set off by this.
    fn offset(self) -> String {
        match self {
            Skew::AheadMinutes(minutes) => format!("+{minutes}m"),
            Skew::BehindMinutes(minutes) => format!("-{minutes}m"),
        }
    }
}

/// Sets `command`'s process clock off by `skew`. Panics, naming the
/// package, when libfaketime is not installed: the tests that need it fail
/// rather than skip.
pub fn skew_clock(command: &mut Command, skew: Skew) {
    let library = PLACES
        .iter()
        .find(|place| std::path::Path::new(place).exists())
        .unwrap_or_else(|| {
            panic!("libfaketime is missing: install the faketime package (scripts/test does)")
        });
    command
        .env("LD_PRELOAD", library)
        .env("FAKETIME", skew.offset());
}

/// Starts one of our binaries (`binary`: its path, e.g.
/// `env!("CARGO_BIN_EXE_anteroom-worker")`) on `config`, written to
/// `config_path`, with its clock set off by `skew` when there is one; it
/// logs warnings and errors to the test's stderr. The caller keeps the file
/// and removes it when the process ends.
pub fn start_binary(binary: &str, config: &str, config_path: &Path, skew: Option<Skew>) -> Child {
    std::fs::write(config_path, config).expect("write the config file");
    let mut command = Command::new(binary);
    if let Some(skew) = skew {
        skew_clock(&mut command, skew);
    }
    command
        .arg("--config")
        .arg(config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|error| panic!("start {binary}: {error}"))
}

/// A config file's path of its own in the temp directory, named after
/// `what` and a port of the test.
pub fn config_path(what: &str, port: u16) -> PathBuf {
    std::env::temp_dir().join(format!(
        "anteroom-{what}-{}-{port}.toml",
        std::process::id()
    ))
}
