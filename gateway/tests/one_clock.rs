//! One clock, with the real binary: two `anteroom-gateway` processes on one
//! Redis, one run five minutes ahead and one five minutes behind by
//! libfaketime (the package `faketime`, which `scripts/test` installs), as
//! on hosts whose clocks are wrong. A pass is good on both and nobody inside
//! is expired; when the one ahead stops, the one behind goes on letting the
//! line in. (`tests/tests/one_clock.rs` has the same scenarios, and the
//! no-shows, with gateways in the test's process on skewed clocks.)

use std::time::{Duration, Instant};

use anteroom_tests::gateway_process::PATIENCE;
use anteroom_tests::{
    GatewayProcess, RedisServer, Skew, Upstream, gateway, reached_origin, room, upstream,
};

const ROOM: &str = "/echo/vaccini";

/// The binary on `room` at Redis, with its clock set off by `skew`, once
/// ready.
async fn start(
    redis: &RedisServer,
    up: &Upstream,
    spec: anteroom_tests::Room,
    skew: Skew,
) -> GatewayProcess {
    let file = gateway(up).room(spec).redis(redis).config_file().clone();
    GatewayProcess::start(env!("CARGO_BIN_EXE_anteroom-gateway"), &file, Some(skew)).await
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
    let mut ahead = start(&redis, &up, spec.clone(), Skew::AheadMinutes(5)).await;
    let behind = start(&redis, &up, spec, Skew::BehindMinutes(5)).await;
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
        assert_eq!(gw.figure("vaccini", "sessions_expired").await, 0);
        assert_eq!(gw.figure("vaccini", "admitted_through").await, 10);
    }

    // The one ahead stops; those inside leave through the one behind, which
    // lets the line in at once (the pace is the store's).
    ahead.stop();
    for visitor in &inside {
        visitor.with_base(&behind.url()).leave("vaccini").await;
    }
    eventually("the gateway behind lets the next ten in", || async {
        behind.figure("vaccini", "admitted_through").await >= 20
    })
    .await;
    assert_eq!(behind.figure("vaccini", "no_shows").await, 0);
}
