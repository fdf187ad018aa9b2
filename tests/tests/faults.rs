//! The fault suite, single-server faults: a crowd of visitors with real
//! cookies goes through two gateways on one Redis while Redis rolls back to
//! an older snapshot, loses everything, or freezes past the gateways'
//! timeout. After each, the crowd's checks (`CrowdReport::assert_fair`):
//! never more inside than the capacity, no ticket held twice, no place
//! lost, nobody who had a place passed by someone who came later, and
//! everyone let in without anyone's help. (Sentinel and Cluster failovers
//! are in `sentinel.rs` and `cluster.rs`.)

use std::process::Command;
use std::time::Duration;

use anteroom_tests::{
    Crowd, CrowdOptions, CrowdReport, GatewayHandle, RedisServer, Upstream, eventually, gateway,
    room, upstream,
};

const CAPACITY: u32 = 5;

fn crowd(gateways: &[&GatewayHandle]) -> Crowd {
    Crowd::start(CrowdOptions {
        gateways: gateways.iter().map(|gw| gw.url("")).collect(),
        room: "vaccini".into(),
        path: "/echo/vaccini".into(),
        visitors: 60,
        arrive_every: Duration::from_millis(50),
        stay: Duration::from_millis(400),
        give_up_after: Duration::from_secs(60),
    })
}

/// Two gateways on `redis`, and the site behind them (kept alive by the
/// caller).
async fn two_gateways(redis: &RedisServer) -> (GatewayHandle, GatewayHandle, Upstream) {
    let up = upstream().await;
    let room = || room("vaccini").capacity(CAPACITY).admit_per_minute(1200);
    let a = gateway(&up).room(room()).redis(redis).start().await;
    let b = gateway(&up).room(room()).redis(redis).start().await;
    (a, b, up)
}

/// The crowd's report once everyone is through, checked (and how long
/// admissions stopped printed, for the README; never asserted).
async fn checked(crowd: Crowd) -> CrowdReport {
    let report = crowd.finish().await;
    eprintln!(
        "admissions resumed {:?} after the fault",
        report.resumed_after()
    );
    report.assert_fair(CAPACITY as usize);
    report
}

fn save(redis: &RedisServer) {
    let status = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "SAVE"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success(), "SAVE");
}

/// Redis restarts from a snapshot taken a second and a half earlier: the
/// counters, the passes inside and the leaves of that time are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_through_a_restart_from_an_older_snapshot() {
    let mut redis = RedisServer::start().await;
    let (a, b, _site) = two_gateways(&redis).await;
    let crowd = crowd(&[&a, &b]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    save(&redis);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    crowd.fault();
    redis.restart().await;
    let report = checked(crowd).await;
    assert!(report.ticketed() > 30, "most of the crowd waited in line");
}

/// Redis restarts empty (no persistence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_through_a_restart_without_persistence() {
    let mut redis = RedisServer::start().await;
    let (a, b, _site) = two_gateways(&redis).await;
    let crowd = crowd(&[&a, &b]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    crowd.fault();
    redis.restart().await;
    let report = checked(crowd).await;
    assert!(report.ticketed() > 30, "most of the crowd waited in line");
}

/// Redis freezes for three seconds (longer than the gateways' one-second
/// timeout), then thaws with every call sent meanwhile: arrivals and
/// leaves whose replies were lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_through_a_frozen_store() {
    let redis = RedisServer::start().await;
    let (a, b, _site) = two_gateways(&redis).await;
    let crowd = crowd(&[&a, &b]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    crowd.fault();
    redis.pause();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.resume();
    eventually("ready again", || async { a.readiness().await == 200 }).await;
    checked(crowd).await;
}
