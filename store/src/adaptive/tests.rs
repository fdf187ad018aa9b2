use super::*;
use proptest::prelude::*;

mod plant;

fn settings() -> Settings {
    Settings {
        enabled: true,
        floor: 60.0,
        ceiling: 6_000.0,
        latency_p90_ms: 1_000.0,
        max_error_rate: 0.01,
    }
}

fn facts(now: Millis, admitted: u64) -> Facts {
    Facts {
        now,
        waiting: 1_000,
        admitted,
        serving: true,
    }
}

/// A window of `n` outcomes: `failed` of them failed, every latency `ms`.
fn window(n: u64, failed: u64, ms: f64) -> Window {
    let mut report = Report {
        started: n,
        done: n - failed,
        failed,
        peak_in_flight: 100,
        max_places: 500,
        ..Report::default()
    };
    for _ in 0..n {
        report.site.record(ms);
        report.seen.record(ms);
    }
    Window {
        sum: report,
        gateways: 1,
    }
}

/// `window` with a line for places of `line` requests.
fn lined(mut window: Window, line: u64) -> Window {
    window.sum.line = line;
    window
}

/// A controller past its first probe, with a known base.
fn settled(now: Millis) -> Controller {
    let mut controller = Controller::start(&settings(), &facts(now, 0));
    controller.base_ms = Some(20.0);
    controller.probe_at = now + PROBE_INTERVAL_MS;
    controller.places = 40.0;
    controller
}

#[test]
fn a_report_survives_its_text() {
    let mut report = Report {
        started: 12,
        queued: 3,
        done: 10,
        failed: 1,
        busy: 1,
        peak_in_flight: 7,
        max_places: 64,
        ..Report::default()
    };
    report.site.record(20.0);
    report.seen.record(1_500.0);
    report.seen.record(0.5);
    report.lag.record(4.0);
    report.recent_lag.record(9.0);
    let text = report.encode();
    assert_eq!(Report::decode(&text), Some(report));
    let empty = Report::default();
    assert_eq!(Report::decode(&empty.encode()), Some(empty));
    for bad in [
        "",
        "2 1 1 1 1 1 1 1 - - -",
        "1 1 1 1 1 1 1 - - -",
        "1 1 1 1 1 1 1 1 99:1 - -",
    ] {
        assert_eq!(Report::decode(bad), None, "{bad:?}");
    }
}

#[test]
fn a_report_from_a_gateway_before_the_lag_reads_with_none() {
    let mut report = Report {
        started: 5,
        done: 5,
        max_places: 8,
        ..Report::default()
    };
    report.site.record(20.0);
    // Version 1: the same fields without the two lag histograms.
    let mut text = report.encode();
    text.replace_range(0..1, "1");
    text.truncate(text.len() - " - -".len());
    assert_eq!(Report::decode(&text), Some(report.clone()));
    // Version 2 needs them.
    let mut short = report.encode();
    short.truncate(short.len() - " -".len());
    assert_eq!(Report::decode(&short), None);
}

/// A window whose site answers in `site_ms` as the gateway measures it,
/// `lag_ms` of it the gateway's own lateness (its lag samples say so), or
/// with no lag samples at all (`None`).
fn lagging(site_ms: f64, lag_ms: Option<f64>) -> Window {
    let mut window = window(200, 0, site_ms);
    if let Some(lag) = lag_ms {
        for _ in 0..150 {
            window.sum.lag.record(lag);
        }
        for _ in 0..50 {
            window.sum.recent_lag.record(lag);
        }
    }
    window.sum.queued = 150;
    window.sum.recent_queued = 50;
    window
}

#[test]
fn the_gateways_own_lag_is_not_read_as_the_site_slowing() {
    let settings = settings();
    // The site answers in its base's 20 ms; the gateway, short of CPU,
    // reads every answer 25 ms late and woke its timers 25 ms late too.
    let mut lagged = settled(0);
    let mut plain = settled(0);
    for tick in 1..=5u64 {
        let now = tick * TICK_MS;
        lagged.tick(
            &lagging(45.0, Some(25.0)),
            &settings,
            &facts(now, tick * 100),
        );
        plain.tick(&lagging(45.0, None), &settings, &facts(now, tick * 100));
    }
    assert!(
        lagged.places >= 40.0,
        "the places fell to {} for the gateway's own delay",
        lagged.places
    );
    let site = lagged.site_p50_ms.expect("a net median");
    assert!(site < 20.0 * (1.0 + PLACES_BUFFER), "net median {site}");
    assert!(lagged.lag_p90_ms.is_some_and(|lag| lag > 20.0));
    // The same latencies with no lag measured are the site slowing.
    assert!(plain.places < 40.0, "places {}", plain.places);
}

#[test]
fn a_base_taken_on_a_busy_start_falls_to_the_fastest_median_seen() {
    let settings = settings();
    let mut controller = settled(0);
    // The first figures came while the machine was busy: 46 ms.
    controller.base_ms = Some(46.0);
    let mut quiet = window(200, 0, 21.0);
    for _ in 0..60 {
        quiet.sum.recent_site.record(21.0);
    }
    controller.tick(&quiet, &settings, &facts(TICK_MS, 100));
    let base = controller.base_ms.expect("a base");
    assert!((19.0..23.0).contains(&base), "base {base}");
    // A slower second does not raise it (only a probe does).
    let mut slow = window(200, 0, 40.0);
    for _ in 0..60 {
        slow.sum.recent_site.record(40.0);
    }
    controller.tick(&slow, &settings, &facts(2 * TICK_MS, 200));
    assert_eq!(controller.base_ms, Some(base));
}

#[test]
fn stale_reports_leave_the_sum_whatever_the_order() {
    let fresh = window(10, 0, 20.0).sum;
    let old = window(30, 30, 20.0).sum;
    let now = 100_000;
    let one = Window::merge([(now - 1_000, &fresh), (now - 4_000, &old)], now);
    let other = Window::merge([(now - 4_000, &old), (now - 1_000, &fresh)], now);
    assert_eq!(one, other);
    assert_eq!((one.gateways, one.sum.failed, one.sum.done), (1, 0, 10));
}

#[test]
fn the_pace_never_leaves_its_bounds() {
    let settings = settings();
    let mut controller = settled(0);
    let mut now = 0;
    for tick in 0..300u64 {
        now += TICK_MS;
        let bad = tick % 7 < 3;
        let window = if bad {
            window(50, 0, 3_000.0)
        } else {
            window(50, 0, 20.0)
        };
        controller.tick(&window, &settings, &facts(now, tick * 1_000));
        assert!(controller.pace >= settings.floor && controller.pace <= settings.ceiling);
    }
}

#[test]
fn nobody_waiting_or_too_few_samples_is_no_reason_to_grow() {
    let settings = settings();
    let mut controller = settled(0);
    let start = controller.pace;
    let mut empty = facts(0, 0);
    empty.waiting = 0;
    for tick in 1..20 {
        empty.now = tick * TICK_MS;
        empty.admitted = tick * 100;
        controller.tick(&window(50, 0, 20.0), &settings, &empty);
    }
    assert_eq!((controller.pace, controller.reason), (start, Reason::Idle));
    for tick in 20..40 {
        controller.tick(
            &window(2, 0, 20.0),
            &settings,
            &facts(tick * TICK_MS, tick * 100),
        );
    }
    assert_eq!((controller.pace, controller.reason), (start, Reason::Idle));
    // Not in use: nobody was admitted although the pace allowed it (a
    // full room).
    for tick in 40..60 {
        controller.tick(&window(50, 0, 20.0), &settings, &facts(tick * TICK_MS, 0));
    }
    assert_eq!(controller.pace, start);
}

#[test]
fn the_ramp_doubles_until_the_site_fills() {
    let settings = settings();
    let mut controller = settled(0);
    let start = controller.pace;
    assert_eq!(start, 6_000.0 * RAMP_START);
    let mut admitted = 0;
    // Two doublings' worth of ticks.
    let ticks = 2 * RAMP_MS / TICK_MS;
    for tick in 1..=ticks {
        admitted += 100;
        controller.tick(
            &window(50, 0, 20.0),
            &settings,
            &facts(tick * TICK_MS, admitted),
        );
    }
    assert_eq!(controller.pace, start * 4.0);
    assert_eq!(controller.phase, Phase::Ramp);
    // Most requests had to wait for a place, and the site is slower than
    // its base allows: it is full.
    let mut full = window(50, 0, 30.0);
    full.sum.queued = 45;
    controller.tick(
        &full,
        &settings,
        &facts((ticks + 1) * TICK_MS, admitted + 100),
    );
    assert_eq!(
        (controller.phase, controller.pace),
        (Phase::Steady, start * 4.0)
    );
    assert_eq!(controller.reason, Reason::Hold);
}

#[test]
fn places_at_the_gateways_bound_with_the_site_at_its_speed_let_the_pace_grow() {
    let settings = settings();
    let mut controller = settled(0);
    let start = controller.pace;
    // Every place the gateways have (`max_in_flight_upstream`) is in use and
    // most requests waited for one, but the site answers at its base speed
    // and the visitors see far less than the target: the operator's bound,
    // not the site, makes the line, and the ramp goes on as it would with
    // adaptive off.
    let mut bound = window(50, 0, 20.0);
    bound.sum.queued = 45;
    bound.sum.max_places = 40;
    let mut admitted = 0;
    let ticks = 2 * RAMP_MS / TICK_MS;
    for tick in 1..=ticks {
        admitted += 100;
        controller.tick(&bound, &settings, &facts(tick * TICK_MS, admitted));
    }
    assert_eq!(
        (controller.phase, controller.pace),
        (Phase::Ramp, start * 4.0)
    );
    // Once the visitors see more than half the target, the bound is full.
    let mut slow = window(50, 0, 20.0);
    slow.sum.seen = Histogram::default();
    for _ in 0..50 {
        slow.sum.seen.record(settings.latency_p90_ms * 0.6);
    }
    slow.sum.queued = 45;
    slow.sum.max_places = 40;
    controller.tick(
        &slow,
        &settings,
        &facts((ticks + 1) * TICK_MS, admitted + 100),
    );
    assert_eq!(
        (controller.phase, controller.pace, controller.reason),
        (Phase::Steady, start * 4.0, Reason::Hold)
    );
}

#[test]
fn one_cut_per_hold_and_none_while_easing() {
    let settings = settings();
    let mut controller = settled(0);
    controller.pace = 1_000.0;
    controller.phase = Phase::Steady;
    // A slow p90 and a line growing by a tenth of what the site finishes.
    let slow = |line| lined(window(3_000, 0, 2_000.0), line);
    controller.tick(&slow(100), &settings, &facts(1_000, 10));
    assert_eq!(controller.pace, 800.0);
    assert_eq!(controller.reason, Reason::Latency);
    controller.tick(&slow(200), &settings, &facts(2_000, 20));
    controller.tick(&slow(300), &settings, &facts(3_000, 30));
    assert_eq!(controller.pace, 800.0, "held");
    // Past the hold but the line shrinks: the cut is working.
    controller.tick(&slow(200), &settings, &facts(4_500, 40));
    assert_eq!(controller.pace, 800.0, "easing");
    // Past the hold, growing again: cut again (fast convergence lowers the
    // plateau below the pace it was cut from).
    controller.tick(&slow(300), &settings, &facts(5_000, 50));
    assert_eq!(controller.pace, 640.0);
    assert!(controller.w_max < 800.0);
    // Over the target with a flat line: a trim, so that it drains.
    controller.tick(&slow(300), &settings, &facts(8_500, 60));
    assert_eq!(controller.pace, 640.0 * TRIM);
}

#[test]
fn a_full_site_whose_line_holds_within_the_target_keeps_its_pace() {
    let settings = settings();
    let mut controller = settled(0);
    controller.pace = 1_000.0;
    controller.phase = Phase::Steady;
    // Every place in use (the site at the gateways' bound), the visitors'
    // p90 600 ms against 1,000, and a line in front of the places that
    // takes 700 ms to clear at the site's 1,000 a second: a correctly
    // sized room at its ceiling looks like this.
    let full = |line| {
        let mut window = lined(window(3_000, 0, 600.0), line);
        window.sum.max_places = 40;
        window
    };
    controller.line = 700;
    controller.tick(&full(700), &settings, &facts(1_000, 16));
    controller.tick(&full(710), &settings, &facts(2_000, 32));
    controller.tick(&full(700), &settings, &facts(3_000, 48));
    assert_eq!(controller.pace, 1_000.0);
    assert_eq!(controller.reason, Reason::Hold);
    // The room lets in 600 a minute (its capacity binds): the pace comes
    // down towards that, 5% a tick, never below it, until it is within
    // reach of the use.
    let mut admitted = 48;
    for tick in 4..20 {
        admitted += 10;
        controller.tick(&full(700), &settings, &facts(tick * TICK_MS, admitted));
    }
    assert!(
        controller.pace >= 600.0 && controller.pace <= 600.0 / UNUSED_SHARE,
        "pace {}",
        controller.pace
    );
    // The same line growing by a tenth of what the site finishes: cut.
    controller.tick(&full(800), &settings, &facts(20 * TICK_MS, admitted + 10));
    assert!(controller.pace < 600.0, "pace {}", controller.pace);
}

#[test]
fn a_long_line_held_flat_while_visitors_see_close_to_the_target_is_trimmed() {
    let settings = settings();
    let mut controller = settled(0);
    controller.pace = 1_000.0;
    controller.phase = Phase::Steady;
    // The site at its knee, every place in use, a line of 900 that takes
    // 900 ms to clear and does not grow (the visitors' connections send no
    // more), the visitors' p90 at 0.9 of the target, and the pace used in
    // full: the site does not keep up with the pace; the line cannot show it.
    let near = settings.latency_p90_ms * 0.9;
    let held = |line| {
        let mut window = lined(window(3_000, 0, near), line);
        window.sum.max_places = 40;
        window
    };
    controller.line = 900;
    controller.tick(&held(900), &settings, &facts(1_000, 17));
    assert_eq!(controller.pace, 1_000.0 * TRIM);
    assert_eq!(controller.reason, Reason::Latency);
    controller.tick(&held(905), &settings, &facts(2_000, 33));
    assert_eq!(controller.pace, 1_000.0 * TRIM * TRIM);
    // The same line with the visitors at a healthy share of the target:
    // the site keeps up, the pace holds (see the test above).
    let mut controller = settled(0);
    controller.pace = 1_000.0;
    controller.phase = Phase::Steady;
    controller.line = 900;
    let healthy = |line| {
        let mut window = lined(window(3_000, 0, settings.latency_p90_ms * 0.7), line);
        window.sum.max_places = 40;
        window
    };
    controller.tick(&healthy(900), &settings, &facts(1_000, 17));
    assert_eq!(
        (controller.pace, controller.reason),
        (1_000.0, Reason::Hold)
    );
}

#[test]
fn a_line_far_past_the_site_is_cut_to_what_the_site_keeps_up_with() {
    let settings = settings();
    let mut controller = settled(0);
    controller.pace = 1_000.0;
    controller.phase = Phase::Steady;
    // The site finishes 100 a second and the line grows by 60 a second:
    // it keeps up with 100 / 160 of the demand.
    controller.tick(
        &lined(window(300, 0, 2_000.0), 60),
        &settings,
        &facts(1_000, 10),
    );
    assert!(
        (controller.pace - 625.0).abs() < 1e-9,
        "{}",
        controller.pace
    );
    // Never more than half in one cut.
    let mut other = settled(0);
    other.pace = 1_000.0;
    other.tick(
        &lined(window(300, 0, 2_000.0), 1_000),
        &settings,
        &facts(1_000, 10),
    );
    assert_eq!(other.pace, 500.0);
}

#[test]
fn the_cubic_is_back_at_its_plateau_after_k_healthy_seconds() {
    let settings = settings();
    let mut controller = settled(0);
    controller.pace = 1_000.0;
    controller.phase = Phase::Steady;
    controller.tick(
        &lined(window(3_000, 0, 2_000.0), 100),
        &settings,
        &facts(1_000, 0),
    );
    assert_eq!((controller.pace, controller.w_max), (800.0, 1_000.0));
    let mut admitted = 0;
    let mut now = 1_000;
    for _ in 0..CUBIC_K as u64 {
        now += TICK_MS;
        admitted += 20;
        controller.tick(&window(50, 0, 20.0), &settings, &facts(now, admitted));
    }
    assert!(
        (controller.pace - 1_000.0).abs() < 1e-6,
        "{}",
        controller.pace
    );
    for _ in 0..CUBIC_K as u64 {
        now += TICK_MS;
        admitted += 20;
        controller.tick(&window(50, 0, 20.0), &settings, &facts(now, admitted));
    }
    assert!(
        (controller.pace - 1_200.0).abs() < 1e-6,
        "{}",
        controller.pace
    );
    assert_eq!(controller.reason, Reason::Grow);
}

#[test]
fn a_site_down_drops_to_the_floor_at_once_and_clears_after_three_good_ticks() {
    let settings = settings();
    let mut controller = settled(0);
    controller.pace = 3_000.0;
    controller.tick(&window(20, 20, 5.0), &settings, &facts(1_000, 0));
    assert_eq!(controller.pace, settings.floor);
    assert!(controller.trouble);
    assert_eq!(controller.reason, Reason::SiteDown);
    for tick in 2..4 {
        controller.tick(
            &window(20, 0, 20.0),
            &settings,
            &facts(tick * TICK_MS, tick),
        );
        assert!(controller.trouble);
    }
    controller.tick(&window(20, 0, 20.0), &settings, &facts(4 * TICK_MS, 4));
    assert!(!controller.trouble);
    // And it ramps back by itself.
    let before = controller.pace;
    for tick in 5..12 {
        controller.tick(
            &window(20, 0, 20.0),
            &settings,
            &facts(tick * TICK_MS, tick * 1_000),
        );
    }
    assert!(controller.pace > 4.0 * before);
}

#[test]
fn places_follow_the_gradient_and_probe_on_schedule() {
    let settings = settings();
    let mut controller = Controller::start(&settings, &facts(0, 0));
    // The first traffic, on the fewest places, gives the base: no pin.
    let mut first = window(50, 0, 20.0);
    first.sum.recent_site = first.sum.site.clone();
    controller.tick(&first, &settings, &facts(1_000, 0));
    assert!(!controller.probing());
    assert_eq!(controller.places, MIN_PLACES);
    let base = controller.base_ms.unwrap();
    assert!((base - 20.0).abs() < 20.0 * 0.1, "{base}");
    assert_eq!(controller.probe_at, 1_000 + PROBE_INTERVAL_MS);
    // At the base latency, while they bind, the places double while they
    // are few, and grow by half after.
    let binding = |ms: f64| {
        let mut window = window(50, 0, ms);
        window.sum.recent_queued = 5;
        window.sum.recent_site = window.sum.site.clone();
        window
    };
    let before = controller.places;
    controller.tick(&binding(base), &settings, &facts(3_000, 0));
    assert!((controller.places - before * 2.0).abs() < 1e-6);
    controller.places = 4.0 * MIN_PLACES;
    controller.tick(&binding(base), &settings, &facts(3_500, 0));
    assert!((controller.places - 4.0 * MIN_PLACES * 1.5).abs() < 1e-6);
    // A little slower than the base: Envoy's rule, smoothed.
    controller.places = 40.0;
    controller.tick(&binding(base * 1.2), &settings, &facts(4_000, 0));
    let g = (1.0 + PLACES_BUFFER) / 1.2;
    let proposed = 40.0 * g + (40.0 * g).sqrt();
    let expected = 40.0 * 0.8 + proposed * 0.2;
    assert!(
        (controller.places - expected).abs() < 0.5,
        "{} {expected}",
        controller.places
    );
    // Much slower: they shrink.
    let before = controller.places;
    controller.tick(&binding(base * 2.5), &settings, &facts(5_000, 0));
    assert!(controller.places < before);
    // Never past the sum of the gateways' bounds.
    for tick in 6..200 {
        controller.tick(&binding(base), &settings, &facts(tick * 1_000, 0));
        assert!(controller.places <= 500.0);
    }
    assert!(controller.probing() || controller.probe_at > 200_000 - PROBE_INTERVAL_MS);
    // A probe on schedule pins the places to a quarter, measures the base
    // again, and gives the places back.
    let mut controller = settled(0);
    controller.probe_at = 10_000;
    controller.tick(&binding(20.0), &settings, &facts(10_000, 0));
    assert!(controller.probing());
    assert_eq!(controller.places, 10.0);
    let mut probed = binding(30.0);
    probed.sum.probe = probed.sum.site.clone();
    probed.sum.probe.0[Histogram::bucket_of(30.0)] += PROBE_SAMPLES;
    controller.tick(&probed, &settings, &facts(11_000, 0));
    assert!(!controller.probing());
    let base = controller.base_ms.unwrap();
    assert!((base - 30.0).abs() < 3.0, "{base}");
    assert_eq!(controller.places, 40.0);
    assert_eq!(controller.probe_at, 11_000 + PROBE_INTERVAL_MS);
}

#[test]
fn places_not_in_use_neither_grow_nor_stay_far_above_their_use() {
    let settings = settings();
    let mut controller = settled(0);
    // Nothing waited for a place: no growth, however fast the site.
    let mut idle = window(50, 0, 10.0);
    idle.sum.peak_in_flight = 40;
    controller.tick(&idle, &settings, &facts(1_000, 0));
    assert_eq!(controller.places, 40.0);
    // The demand fell away: the places come down to a margin over it.
    let mut quiet = window(50, 0, 20.0);
    quiet.sum.peak_in_flight = 8;
    controller.tick(&quiet, &settings, &facts(2_000, 0));
    assert_eq!(controller.places, 8.0 * USAGE_HEADROOM);
}

#[test]
fn shares_add_up_to_the_places() {
    let mut controller = settled(0);
    controller.places = 90.0;
    controller.fleet_started = 300;
    controller.gateways = 3;
    let shares: u64 = [100, 150, 50]
        .iter()
        .map(|s| controller.share(*s, 1_000))
        .sum();
    assert_eq!(shares, 90);
    assert_eq!(controller.share(0, 1_000), 1, "at least one");
    assert_eq!(controller.share(300, 16), 16, "at most the gateway's bound");
}

/// The shares are computed at the tick, from the reports it summed: they
/// add up to the places whatever each gateway reports later, and a gateway
/// the tick did not count gets one.
#[test]
fn shares_given_at_the_tick_add_up_to_the_places() {
    let report = |started: u64| Report {
        started,
        done: started,
        max_places: 1_000,
        ..Report::default()
    };
    let mut controller = None;
    let settings = settings();
    let reports = |a: u64, b: u64| {
        vec![
            ("a".to_owned(), 9_900, report(a)),
            ("b".to_owned(), 9_900, report(b)),
            ("gone".to_owned(), 1_000, report(500)),
        ]
    };
    step(&mut controller, &settings, &facts(0, 0), &reports(10, 10));
    let before_tick = controller.as_ref().unwrap();
    assert_eq!(
        before_tick.share_of("a", 1_000),
        before_tick.share(0, 1_000)
    );
    assert!(step(
        &mut controller,
        &settings,
        &facts(10_000, 0),
        &reports(100, 300)
    ));
    let controller = controller.unwrap();
    let ids: Vec<_> = controller
        .shares
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(ids.len(), 2, "the stale report has no share: {ids:?}");
    let (a, b) = (
        controller.share_of("a", 1_000),
        controller.share_of("b", 1_000),
    );
    assert!(b >= a, "b asked more: {a} {b}");
    assert!(
        (a + b) as f64 <= controller.places.ceil() + 1.0,
        "{a} + {b} within rounding of {}",
        controller.places
    );
    assert_eq!(controller.share_of("gone", 1_000), 1, "not counted: one");
    assert_eq!(controller.share_of("new", 1_000), 1, "not counted: one");
}

#[test]
fn the_state_survives_the_hash() {
    let mut controller = settled(5_000);
    controller.tick(&window(50, 0, 2_000.0), &settings(), &facts(6_000, 3));
    controller.shares = vec![("a".to_owned(), 3), ("b".to_owned(), 12)];
    let fields: HashMap<String, String> = controller
        .fields()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    assert_eq!(Controller::from_fields(&fields), Some(controller));
    let mut broken = fields.clone();
    broken.remove("pace");
    assert_eq!(Controller::from_fields(&broken), None);
    assert_eq!(Controller::field_names().len(), fields.len());
}

#[test]
fn a_gap_restarts_the_ramp_and_the_probe() {
    let settings = settings();
    let mut controller = settled(0);
    controller.phase = Phase::Steady;
    controller.tick(&window(50, 0, 20.0), &settings, &facts(60_000, 0));
    assert!(controller.probing());
    assert_eq!(controller.phase, Phase::Ramp);
}

proptest! {
    /// The histogram's quantiles land in the bucket of the exact one.
    #[test]
    fn quantiles_match_sorted_samples(
        mut samples in proptest::collection::vec(0.5f64..40_000.0, 1..400),
        q in 0.05f64..1.0,
    ) {
        let mut histogram = Histogram::default();
        for sample in &samples {
            histogram.record(*sample);
        }
        samples.sort_by(f64::total_cmp);
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        let exact = samples[rank - 1];
        let estimate = histogram.quantile(q).unwrap();
        // Within one bucket's width of the exact one.
        prop_assert!(estimate <= exact.max(1.0) * GROWTH * 1.0001 + 1e-9);
        prop_assert!(estimate >= exact.max(1.0) / GROWTH / 1.0001 - 1e-9);
    }
}
