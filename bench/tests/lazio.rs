//! A small opening day, replayed through the real binary: the contract of
//! `anteroom-bench lazio --visitors N --origin-capacity C --json FILE`, and
//! what anteroom promises on the day. Behaviour only, no timing thresholds.

use std::process::Command;

use serde_json::Value;

/// 2,000 visitors in two seconds at a site that serves 10 requests at once
/// (about 140 visitors a second at 20 ms a request): a surge of about
/// seven times what the site can take.
fn replay(extra: &[&str]) -> Value {
    let crowd = ["--visitors", "2000", "--jitter-seconds", "2"];
    replay_of(&crowd, extra)
}

/// `lazio` with the crowd flags `crowd` and more flags `extra`, at a site
/// that serves 10 requests at once.
fn replay_of(crowd: &[&str], extra: &[&str]) -> Value {
    // One replay at a time: each is a crowd, a site and a gateway, and two
    // at once on a small machine would measure the machine.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let json = std::env::temp_dir().join(format!(
        "anteroom-bench-lazio-{}-{run}.json",
        std::process::id()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .args(["lazio", "--origin-capacity", "10", "--quiet"])
        .args(crowd)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("run anteroom-bench");
    assert!(
        output.status.success(),
        "lazio failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| | straight at the site | through anteroom |"),
        "the side-by-side table is printed: {stdout}"
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report is written");
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).expect("the report is JSON")
}

fn assert_contract_fields(report: &Value) {
    for field in [
        "visitors",
        "served",
        "visitor_errors",
        "origin_errors",
        "origin_capacity",
        "origin_max_concurrency",
        "kendall_tau",
        "last_served_seconds",
        "ideal_seconds",
    ] {
        assert!(report.get(field).is_some(), "{field} missing from {report}");
    }
}

#[test]
fn anteroom_turns_a_surge_that_melts_the_site_into_an_orderly_queue() {
    let reports = replay(&["--direct-max-seconds", "30"]);
    let direct = &reports["direct"];
    let anteroom = &reports["anteroom"];
    assert_contract_fields(direct);
    assert_contract_fields(anteroom);
    assert_eq!(direct["visitors"], 2000);
    assert_eq!(anteroom["visitors"], 2000);
    assert_eq!(anteroom["origin_capacity"], 10);

    // Straight at the site: it is pushed past its capacity, melts, and
    // visitors see errors.
    assert!(
        direct["origin_max_concurrency"].as_u64().unwrap() > 10,
        "{direct}"
    );
    assert!(direct["origin_errors"].as_u64().unwrap() > 0, "{direct}");
    assert!(direct["visitor_errors"].as_u64().unwrap() > 0, "{direct}");

    // Through anteroom: never above capacity, no errors anywhere, everyone
    // served, nobody let in ahead of an earlier ticket.
    assert!(
        anteroom["origin_max_concurrency"].as_u64().unwrap() <= 10,
        "{anteroom}"
    );
    assert_eq!(anteroom["origin_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["served"], 2000, "{anteroom}");
    assert_eq!(anteroom["booked"], 2000, "{anteroom}");
    assert_eq!(anteroom["origin_bookings"], 2000, "{anteroom}");
    assert!(anteroom["waited"].as_u64().unwrap() > 0, "{anteroom}");
    assert_eq!(anteroom["overtaken"], 0, "{anteroom}");
    assert_eq!(
        anteroom["sent_back"], 0,
        "nobody's pass ends mid-journey: {anteroom}"
    );
    // Arrival order and the order of reaching the site agree (poll
    // intervals shuffle neighbours only).
    assert!(
        anteroom["kendall_tau"].as_f64().unwrap() > 0.8,
        "{anteroom}"
    );
    assert!(anteroom["last_served_seconds"].as_f64().is_some());
    assert!(anteroom["ideal_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn bookings_through_a_buffer_are_each_applied_once() {
    let reports = replay(&["--only-anteroom", "--buffer"]);
    assert!(reports["direct"].is_null());
    let anteroom = &reports["anteroom"];
    assert_contract_fields(anteroom);
    assert!(
        anteroom["origin_max_concurrency"].as_u64().unwrap() <= 10,
        "{anteroom}"
    );
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["served"], 2000, "{anteroom}");
    assert_eq!(anteroom["booked"], 2000, "{anteroom}");
    assert_eq!(anteroom["buffered"], 2000, "{anteroom}");
    assert_eq!(anteroom["origin_bookings"], 2000, "{anteroom}");
    assert_eq!(anteroom["overtaken"], 0, "{anteroom}");
}

/// A launch event: 400 visitors, half of them during a three-second
/// pre-queue, the others within a second of the opening. The pre-queue goes
/// in first, in the order of the draw the room publishes, and those who
/// came later first come, first served; the site is never above capacity.
#[test]
fn a_launch_event_lets_the_pre_queue_in_first_in_the_order_of_its_draw() {
    let crowd = [
        "--visitors",
        "400",
        "--jitter-seconds",
        "1",
        "--opens-in",
        "3",
    ];
    let reports = replay_of(&crowd, &["--refresh-seconds", "2"]);
    assert!(
        reports["direct"].is_null(),
        "no pre-queue straight at the site"
    );
    let anteroom = &reports["anteroom"];
    assert_contract_fields(anteroom);
    assert!(
        anteroom["origin_max_concurrency"].as_u64().unwrap() <= 10,
        "{anteroom}"
    );
    assert_eq!(anteroom["origin_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["served"], 400, "{anteroom}");
    assert_eq!(anteroom["origin_bookings"], 400, "{anteroom}");
    assert_eq!(anteroom["sent_back"], 0, "{anteroom}");

    let event = &anteroom["event"];
    assert_eq!(event["draw_verified"], true, "{event}");
    assert!(event["draw_problem"].is_null(), "{event}");
    // Everyone in the room's pre-queue is one of the crowd, and the crowd
    // came on both sides of the opening.
    let pre_queue = event["pre_queue"].as_u64().unwrap();
    assert!(pre_queue > 0, "{event}");
    assert_eq!(event["pre_queue_visitors"], pre_queue, "{event}");
    assert!(
        event["after_opening_visitors"].as_u64().unwrap() > 0,
        "{event}"
    );
    assert_eq!(
        pre_queue + event["after_opening_visitors"].as_u64().unwrap(),
        400,
        "{event}"
    );
    assert_eq!(event["unknown_visitors"], 0, "{event}");

    // The order: the pre-queue first, then by the draw, then by ticket.
    assert_eq!(event["pre_queue_first"], 0, "{event}");
    assert_eq!(event["draw_mismatches"], 0, "{event}");
    assert_eq!(anteroom["overtaken"], 0, "{anteroom}");
    // What the waiting page told each pre-queue visitor is the draw anyone
    // can recompute.
    assert!(event["draw_place_checked"].as_u64().unwrap() > 0, "{event}");
    assert_eq!(event["draw_place_mismatches"], 0, "{event}");
    // The draw does not follow arrival (|tau| is about 0.05 at random
    // for 200 tickets; 1 would be arrival order itself).
    assert!(
        event["kendall_tau"].as_f64().unwrap().abs() < 0.5,
        "{event}"
    );
}

/// The site halves its capacity 1 s after it starts and gets it back at
/// 2 s: the report carries the change on the run's clock (the site starts
/// before the crowd, so its times move by the same amount).
#[test]
fn a_site_that_loses_capacity_reports_its_timeline() {
    let crowd = ["--visitors", "400", "--jitter-seconds", "1"];
    let degrade = [
        "--only-anteroom",
        "--degrade-at",
        "1",
        "--degrade-to",
        "5",
        "--recover-at",
        "2",
    ];
    let reports = replay_of(&crowd, &degrade);
    let anteroom = &reports["anteroom"];
    assert_eq!(anteroom["served"], 400, "{anteroom}");
    let timeline = anteroom["origin_capacity_timeline"]
        .as_array()
        .expect("a timeline");
    let points: Vec<(f64, u64)> = timeline
        .iter()
        .map(|point| (point[0].as_f64().unwrap(), point[1].as_u64().unwrap()))
        .collect();
    assert_eq!(
        points.iter().map(|point| point.1).collect::<Vec<_>>(),
        [10, 5, 10],
        "{anteroom}"
    );
    assert_eq!(points[0].0, 0.0);
    assert!(points[1].0 < 1.0, "the site started before the crowd");
    // One second apart on the site's clock, so on the run's (to the
    // millisecond the report keeps).
    assert!(
        (points[2].0 - points[1].0 - 1.0).abs() < 0.002,
        "{points:?}"
    );
}

/// Half the hand-tuned room: the generated config is half of it, the
/// site never sees more than the halved `max_in_flight_upstream`, and the
/// report says how the gateway was set up and what the site could take in
/// visitors a minute.
#[test]
fn a_size_factor_scales_the_room_and_is_reported() {
    let crowd = ["--visitors", "400", "--jitter-seconds", "1"];
    let reports = replay_of(&crowd, &["--only-anteroom", "--size-factor", "0.5"]);
    let anteroom = &reports["anteroom"];
    assert_eq!(anteroom["served"], 400, "{anteroom}");
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    // 10 requests at once of 20 ms, 3.5 a visitor: 142.9 visitors a second.
    // By hand: capacity 2,858 (20 s of them), 7,714 a minute (0.9 of
    // them), 10 at the site; halved and rounded down.
    assert_eq!(
        anteroom["settings"],
        serde_json::json!({"adaptive": false, "size_factor": 0.5, "capacity": 1429,
            "admit_per_minute": 3857, "max_in_flight_upstream": 5, "site_ahead": true}),
        "{anteroom}"
    );
    assert!(
        anteroom["origin_max_concurrency"].as_u64().unwrap() <= 5,
        "{anteroom}"
    );
    assert_eq!(anteroom["origin_collapse"], 20, "{anteroom}");
    assert_eq!(anteroom["origin_passed_collapse"], false, "{anteroom}");
    let site = &anteroom["site_visitors_per_minute_timeline"];
    assert_eq!(site.as_array().unwrap().len(), 1, "{anteroom}");
    assert_eq!(site[0][0], 0.0, "{anteroom}");
    assert!(
        (site[0][1].as_f64().unwrap() - 10.0 / 0.02 / 3.5 * 60.0).abs() < 1e-6,
        "{anteroom}"
    );
    assert_eq!(
        anteroom["pace_timeline"],
        serde_json::json!([]),
        "not adaptive: not read"
    );
}

#[test]
fn bad_flags_exit_2_with_the_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .args(["lazio", "--visitors", "10", "--abandon", "2"])
        .output()
        .expect("run anteroom-bench");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--abandon"));

    for (flags, reason) in [
        (
            &["--degrade-to", "5"][..],
            "--degrade-to needs --degrade-at",
        ),
        (
            &["--degrade-at", "1", "--degrade-to", "10"][..],
            "--degrade-to 10 must be below the site's capacity (10)",
        ),
        (
            &[
                "--degrade-at",
                "3",
                "--degrade-to",
                "5",
                "--recover-at",
                "2",
            ][..],
            "--recover-at 2 must be later than --degrade-at 3",
        ),
        (&["--size-factor", "0"][..], "must be above 0 and finite"),
        (&["--size-factor", "-2"][..], "must be above 0 and finite"),
        (&["--size-factor", "inf"][..], "must be above 0 and finite"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
            .args(["lazio", "--visitors", "10", "--origin-capacity", "10"])
            .args(flags)
            .output()
            .expect("run anteroom-bench");
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{flags:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_replay_runs_on_redis_when_given() {
    let redis = anteroom_tests::RedisServer::start().await;
    let url = redis.url();
    let reports =
        tokio::task::spawn_blocking(move || replay(&["--only-anteroom", "--redis-url", &url]))
            .await
            .unwrap();
    let anteroom = &reports["anteroom"];
    assert!(
        anteroom["origin_max_concurrency"].as_u64().unwrap() <= 10,
        "{anteroom}"
    );
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["served"], 2000, "{anteroom}");
    assert_eq!(anteroom["origin_bookings"], 2000, "{anteroom}");
    assert_eq!(anteroom["overtaken"], 0, "{anteroom}");
    assert!(anteroom["waited"].as_u64().unwrap() > 0, "{anteroom}");
}

/// The pace samples of a run, `(seconds, pace a minute)`.
fn pace_timeline(report: &Value) -> Vec<(f64, f64)> {
    report["pace_timeline"]
        .as_array()
        .expect("the pace timeline")
        .iter()
        .map(|point| (point[0].as_f64().unwrap(), point[1].as_f64().unwrap()))
        .collect()
}

/// Goal 1, small: the room, its pace and the gateway's places sized ten
/// times what the site can take, adaptive admission on. The site never
/// passes its collapse point, nobody sees an error, and the pace came down
/// from the ceiling to something the site can take.
#[test]
fn an_adaptive_room_sized_ten_times_too_generously_never_melts_the_site() {
    let reports = replay(&["--only-anteroom", "--adaptive", "--size-factor", "10"]);
    let anteroom = &reports["anteroom"];
    assert_contract_fields(anteroom);
    assert_eq!(anteroom["settings"]["adaptive"], true, "{anteroom}");
    assert_eq!(anteroom["origin_passed_collapse"], false, "{anteroom}");
    assert!(
        anteroom["origin_max_concurrency"].as_u64().unwrap()
            < anteroom["origin_collapse"].as_u64().unwrap(),
        "{anteroom}"
    );
    assert_eq!(anteroom["served"], 2000, "{anteroom}");
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    let ceiling = anteroom["settings"]["admit_per_minute"].as_f64().unwrap();
    let pace = pace_timeline(anteroom);
    assert!(!pace.is_empty(), "the pace was sampled: {anteroom}");
    assert!(
        pace.iter().all(|(_, pace)| *pace < ceiling),
        "the pace stays under a ceiling ten times too high: {pace:?}"
    );
}

/// Goal 2, small: the site loses half its capacity for a while and gets it
/// back. Nobody sees an error; the pace after the loss is below the pace
/// before it, and after the recovery above the pace during it.
#[test]
fn an_adaptive_pace_follows_a_site_that_loses_half_and_regains_it() {
    let crowd = ["--visitors", "6000", "--jitter-seconds", "2"];
    let reports = replay_of(
        &crowd,
        &[
            "--only-anteroom",
            "--adaptive",
            "--degrade-at",
            "12",
            "--degrade-to",
            "5",
            "--recover-at",
            "30",
        ],
    );
    let anteroom = &reports["anteroom"];
    assert_eq!(anteroom["visitor_errors"], 0, "{anteroom}");
    assert_eq!(anteroom["served"], 6000, "{anteroom}");
    let pace = pace_timeline(anteroom);
    let highest = |from: f64, to: f64| {
        pace.iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, pace)| *pace)
            .fold(f64::NAN, f64::max)
    };
    let lowest = |from: f64, to: f64| {
        pace.iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, pace)| *pace)
            .fold(f64::NAN, f64::min)
    };
    let before = highest(0.0, 12.0);
    let during = lowest(12.0, 30.0);
    let after = highest(30.0, f64::MAX);
    assert!(during < before, "the pace came down: {pace:?}");
    assert!(after > during, "and went back up: {pace:?}");
}
