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

use std::process::Command;

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
