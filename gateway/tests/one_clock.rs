//! One clock, with the real binary: two `anteroom-gateway` processes on one
//! Redis, one run five minutes ahead and one five minutes behind by
//! libfaketime (the package `faketime`, which `scripts/test` installs), as
//! on hosts whose clocks are wrong. A pass is good on both and nobody inside
//! is expired; when the one ahead stops, the one behind goes on letting the
//! line in. (`tests/tests/one_clock.rs` has the same scenarios, and the
//! no-shows, with gateways in the test's process on skewed clocks.)

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anteroom_tests::{
    RedisServer, Skew, Upstream, Visitor, config_path, free_port, gateway, plain_client,
    reached_origin, room, start_binary, upstream,
};

const ROOM: &str = "/echo/vaccini";
/// Long enough for a process to start on a slow shared machine; a bound,
/// not a measurement.
const PATIENCE: Duration = Duration::from_secs(30);

/// An `anteroom-gateway` process, killed when dropped.
struct GatewayProcess {
    child: Option<Child>,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    config_path: std::path::PathBuf,
}

impl GatewayProcess {
    /// Starts the binary on `room` at Redis, with its clock set off by
    /// `skew`, and waits until it is ready (Redis answers).
    async fn start(
        redis: &RedisServer,
        up: &Upstream,
        spec: anteroom_tests::Room,
        skew: Skew,
    ) -> GatewayProcess {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut file = gateway(up).room(spec).redis(redis).config_file().clone();
        file.listen = Some(addr);
        file.admin_listen = Some(admin_addr);
        let config_path = config_path("one-clock", addr.port());
        let child = start_binary(
            env!("CARGO_BIN_EXE_anteroom-gateway"),
            &file.toml(),
            &config_path,
            Some(skew),
        );
        let process = GatewayProcess {
            child: Some(child),
            addr,
            admin_addr,
            config_path,
        };
        let started = Instant::now();
        while !process.is_ready().await {
            assert!(started.elapsed() < PATIENCE, "the gateway never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process
    }

    async fn is_ready(&self) -> bool {
        plain_client()
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    fn visitor(&self) -> Visitor {
        Visitor::new(&self.url())
    }

    /// The room's figures as this gateway last saw them.
    async fn figure(&self, name: &str) -> u64 {
        let figures: serde_json::Value = plain_client()
            .get(self.admin_url("/admin/rooms/vaccini"))
            .send()
            .await
            .expect("the admin listener answers")
            .json()
            .await
            .expect("the room's figures");
        figures[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no figure {name} in {figures}"))
    }

    /// SIGTERM, and waits for the process to end.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("send SIGTERM");
            assert!(status.success());
            child.wait().expect("reap the gateway");
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// Polls `check` every 100 ms until it holds, for at most `PATIENCE`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_ten_minutes_apart_share_one_clock() {
    let redis = RedisServer::start().await;
    let up = upstream().await;
    // Two-minute sessions, far less than the ten minutes between the
    // gateways' clocks; 10 let in a second.
    let spec = room("vaccini")
        .capacity(10)
        .admit_per_minute(600)
        .session_seconds(120);
    let mut ahead = GatewayProcess::start(&redis, &up, spec.clone(), Skew::AheadMinutes(5)).await;
    let behind = GatewayProcess::start(&redis, &up, spec, Skew::BehindMinutes(5)).await;
    let gateways = [&ahead, &behind];

    // Ten go in, five each way; thirty more wait.
    let mut inside = Vec::new();
    for index in 0..10 {
        let visitor = gateways[index % 2].visitor();
        assert!(
            reached_origin(visitor.get(ROOM).await).await,
            "{index} goes in"
        );
        inside.push(visitor);
    }
    let mut line = Vec::new();
    for index in 0..30 {
        let visitor = gateways[index % 2].visitor();
        assert!(
            !reached_origin(visitor.get(ROOM).await).await,
            "the room is full: no slot of a visitor inside was given away"
        );
        line.push(visitor);
    }
    // Everyone inside is served by the other gateway, twice round.
    for hop in 1..=2 {
        for (index, visitor) in inside.iter().enumerate() {
            let there = visitor.with_base(&gateways[(index + hop) % 2].url());
            assert!(
                reached_origin(there.get(ROOM).await).await,
                "visitor {index}, hop {hop}: the pass is good on the other gateway"
            );
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
    for gw in gateways {
        assert_eq!(gw.figure("sessions_expired").await, 0);
        assert_eq!(gw.figure("admitted_through").await, 10);
    }

    // The one ahead stops; those inside leave through the one behind, which
    // lets the line in at once (the pace is the store's).
    ahead.stop();
    for visitor in &inside {
        visitor.with_base(&behind.url()).leave("vaccini").await;
    }
    eventually("the gateway behind lets the next ten in", || async {
        behind.figure("admitted_through").await >= 20
    })
    .await;
    assert_eq!(behind.figure("no_shows").await, 0);
}
