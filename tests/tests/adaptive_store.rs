//! Adaptive admission at the store seam, on both backends and a simulated
//! clock: gateways' reports tick one controller for the fleet, the bucket
//! accrues at its pace, a site down drops it to the floor, a silent
//! gateway leaves the sum, and turning it off gives the ceiling back at
//! once.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anteroom_config::Adaptive;
use anteroom_store::adaptive::{Reason, Report, View};
use anteroom_store::{Clock, RoomParams, Schedule, Store};
use anteroom_tests::backend::{At, arrive};

const T0: u64 = 1_800_000_000_000;

fn room() -> RoomParams {
    RoomParams {
        name: "vaccini".into(),
        capacity: 100_000,
        admit_per_minute: 6_000,
        inside_ttl: Duration::from_secs(300),
        arrival: Duration::from_secs(60),
        schedule: Schedule::default(),
    }
}

fn on() -> Adaptive {
    Adaptive {
        enabled: true,
        min_admit_per_minute: NonZeroU32::new(60).unwrap(),
        latency_p90_ms: 1_000,
        max_error_rate: 0.01,
    }
}

/// Three seconds of `n` requests answered in `ms` by the site, `failed` of
/// them failed, with nothing waiting for a place.
fn report(n: u64, failed: u64, ms: f64) -> Report {
    let mut report = Report {
        started: n,
        done: n - failed,
        failed,
        peak_in_flight: 10,
        max_places: 64,
        ..Report::default()
    };
    for _ in 0..n {
        report.site.record(ms);
        report.seen.record(ms);
        report.recent_site.record(ms);
    }
    report
}

async fn adapt(store: &At, gateway: &str, report: &Report, now: u64) -> View {
    store.clock.set(now);
    store
        .store
        .adapt(&room(), &on(), gateway, report)
        .await
        .expect("adapt")
}

/// Admissions over `seconds` of steps every 100 ms from `from`.
async fn admitted_over(store: &At, from: u64, seconds: u64) -> u64 {
    let start = store.advance(&room(), from).await.unwrap().admitted_through;
    let mut last = start;
    for step in 1..=seconds * 10 {
        last = store
            .advance(&room(), from + step * 100)
            .await
            .unwrap()
            .admitted_through;
    }
    last - start
}

anteroom_tests::on_both_backends_on_a_simulated_clock!(
    the_fleet_shares_one_controller_and_the_bucket_follows_its_pace,
    a_site_down_drops_the_pace_to_the_floor_and_says_so,
    a_silent_gateway_leaves_the_sum,
    turning_it_off_gives_the_ceiling_back_at_once,
);

async fn the_fleet_shares_one_controller_and_the_bucket_follows_its_pace(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let store = At::new(store, clock);
    let room = room();
    // A long line, so that the pace (not the line) bounds admissions.
    for index in 0..3_000u64 {
        arrive(&store, &room, T0 + index).await;
    }
    let first = adapt(&store, "a", &report(30, 0, 20.0), T0 + 10_000).await;
    let controller = first.controller.expect("on");
    // The ramp starts at an eighth of the ceiling.
    assert_eq!(controller.pace, 6_000.0 / 8.0);
    let second = adapt(&store, "b", &report(30, 0, 20.0), T0 + 10_100).await;
    assert_eq!(
        second.controller.as_ref().map(|c| c.ticked_at),
        Some(controller.ticked_at),
        "one tick a second for the whole fleet"
    );
    // The bucket accrues at the pace (750 a minute), not the ceiling
    // (6,000): about 125 in ten seconds, the burst of a full bucket aside.
    let admitted = admitted_over(&store, T0 + 10_200, 10).await;
    assert!(
        (120..=145).contains(&admitted),
        "{admitted} admitted in 10 s at 750 a minute"
    );
    // Each gateway's share of the places is its part of the demand.
    assert!(second.share.is_some_and(|share| share >= 1));
}

async fn a_site_down_drops_the_pace_to_the_floor_and_says_so(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    for index in 0..100u64 {
        arrive(&store, &room(), T0 + index).await;
    }
    let mut now = T0 + 1_000;
    adapt(&store, "a", &report(30, 0, 20.0), now).await;
    now += 1_000;
    let down = adapt(&store, "a", &report(30, 30, 5.0), now).await;
    let controller = down.controller.expect("on");
    assert_eq!(controller.pace, 60.0);
    assert!(controller.trouble);
    assert_eq!(controller.reason, Reason::SiteDown);
    // It recovers by itself: three good ticks clear the trouble.
    for _ in 0..3 {
        now += 1_000;
        adapt(&store, "a", &report(30, 0, 20.0), now).await;
    }
    now += 1_000;
    let back = adapt(&store, "a", &report(30, 0, 20.0), now).await;
    assert!(!back.controller.expect("on").trouble);
}

async fn a_silent_gateway_leaves_the_sum(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    for index in 0..100u64 {
        arrive(&store, &room(), T0 + index).await;
    }
    let mut now = T0 + 1_000;
    adapt(&store, "a", &report(30, 0, 20.0), now).await;
    adapt(&store, "b", &report(30, 0, 20.0), now + 10).await;
    now += 1_000;
    let both = adapt(&store, "a", &report(30, 0, 20.0), now).await;
    assert_eq!(both.controller.expect("on").gateways, 2);
    // "b" stops; "a" goes on reporting.
    for _ in 0..4 {
        now += 1_000;
        adapt(&store, "a", &report(30, 0, 20.0), now).await;
    }
    let alone = adapt(&store, "a", &report(30, 0, 20.0), now + 1_000).await;
    let controller = alone.controller.expect("on");
    assert_eq!(controller.gateways, 1, "its report left the sum");
    assert_eq!(controller.fleet_started, 30);
}

async fn turning_it_off_gives_the_ceiling_back_at_once(store: Arc<dyn Store>, clock: Clock) {
    let store = At::new(store, clock);
    let room = room();
    for index in 0..3_000u64 {
        arrive(&store, &room, T0 + index).await;
    }
    adapt(&store, "a", &report(30, 0, 20.0), T0 + 10_000).await;
    let paced = admitted_over(&store, T0 + 10_000, 5).await;
    assert!(paced < 100, "{paced} admitted in 5 s at 750 a minute");
    let stored = store
        .store
        .change_adaptive(
            &room,
            &anteroom_store::adaptive::Overrides {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.enabled, Some(false));
    // 6,000 a minute: 100 a second.
    let free = admitted_over(&store, T0 + 20_000, 5).await;
    assert!(free >= 450, "{free} admitted in 5 s at 6,000 a minute");
    let view = adapt(&store, "a", &report(30, 0, 20.0), T0 + 30_000).await;
    assert!(view.controller.is_none() && view.share.is_none());
    assert!(!view.settings.enabled);
}
