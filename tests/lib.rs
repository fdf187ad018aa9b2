//! The end-to-end test harness: real gateways on port 0, a private
//! `redis-server` per test on a free port (so tests run in parallel and can
//! kill their Redis on purpose), the bench's origin as the upstream site, and
//! visitors that are real HTTP clients with their own cookies.
//!
//! ```ignore
//! let redis = RedisServer::start().await;
//! let up = upstream().await;
//! let gw = gateway(&up).room(room("vaccini").capacity(2)).redis(&redis).start().await;
//! let visitor = gw.visitor();
//! ```
//!
//! One module per fake, each re-exported here so suites write
//! `use anteroom_tests::{gateway, room, upstream}`:
//! - [`redis`]: a private `redis-server` (kill, freeze, restart) and the
//!   `MONITOR` command counter;
//! - [`upstream`]: the origin site on port 0;
//! - [`gateway`]: the gateway builder and the handle of a running gateway;
//! - [`backend`]: memory or Redis, and `on_both_backends!` (also on a
//!   simulated store clock);
//! - [`visitor`]: browser-like clients and response helpers;
//! - [`postgres`]: a private database per test;
//! - [`tcp_proxy`]: a proxy that can cut or stall a connection;
//! - [`tls`]: a private CA's certificates and a Redis that speaks only TLS;
//! - [`browser`]: a real headless Chromium;
//! - [`crowd`]: visitors arriving, waiting, staying and leaving through a
//!   fault, and the fault suite's checks;
//! - [`faketime`]: a process of ours on a clock set ahead or behind;
//! - [`gateway_process`]: the gateway binary as a process (stopped, killed,
//!   frozen, restarted on the same ports).

pub mod backend;
pub mod browser;
pub mod crowd;
pub mod faketime;
pub mod gateway;
pub mod gateway_process;
pub mod log;
pub mod postgres;
pub mod redis;
pub mod redis_ha;
pub mod source;
pub mod tcp_proxy;
pub mod tls;
pub mod upstream;
pub mod visitor;

pub use backend::Backend;
pub use crowd::{Crowd, CrowdOptions, CrowdReport};
pub use faketime::{Skew, config_path, skew_clock, start_binary};
pub use gateway::{
    Buffer, COOKIE_KEY, ConfigFile, CookieSecure, GatewayBuilder, GatewayHandle, Limits, OnError,
    RedisTls, Room, STEP_INTERVAL, Sink, eventually, gateway, gateway_to, loose_limits, room,
};
pub use gateway_process::GatewayProcess;
pub use log::CapturedLog;
pub use postgres::{DEFAULT_POSTGRES_URL, Postgres};
pub use redis::{CommandCounter, RedisServer};
pub use redis_ha::{RedisCluster, RedisProcess, SentinelGroup};
pub use source::{client_from, connect_from, loopback};
pub use tcp_proxy::TcpProxy;
pub use tls::{Certificates, TlsRedisServer};
pub use upstream::{Upstream, upstream, upstream_with};
pub use visitor::{Visitor, cookie_value, header, plain_client, reached_origin, set_cookies};

/// Sends `signal` (`-STOP`, `-CONT`, …) to a child process of the suite's,
/// if it runs: what the suite's servers and gateways pause and resume with.
pub(crate) fn signal(child: Option<&std::process::Child>, signal: &str) {
    if let Some(child) = child {
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }
}

/// SIGKILL a child process of the suite's, if it runs, and wait for it.
pub(crate) fn kill_and_wait(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// The value of the Prometheus sample of `name` in `text` whose labels
/// include all of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
