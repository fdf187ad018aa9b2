//! `anteroom-bench surge` against a site of its own: every visitor makes
//! the journey, and the reports (JSON, Markdown, SVG) are written.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anteroom_bench::origin::{self, OriginOptions};
use anteroom_config::schedule;
use anteroom_tests::{GatewayHandle, Limits, Room, gateway_to};
use serde_json::Value;

/// A site that keeps up with the small crowds of these tests.
async fn start_site() -> origin::Running {
    origin::start(OriginOptions {
        slot_capacity: 1_000,
        ..OriginOptions::default()
    })
    .await
    .expect("start the site")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_at_a_site_that_keeps_up_is_served_and_reported() {
    let server = start_site().await;
    let site = server.addr;
    let dir = std::env::temp_dir().join(format!("anteroom-bench-surge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, markdown) = (dir.join("surge.json"), dir.join("surge.md"));
    let output = tokio::task::spawn_blocking({
        let (json, markdown) = (json.clone(), markdown.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
                .args(["surge", "--visitors", "300", "--jitter-seconds", "1"])
                .args(["--think-ms", "10", "--quiet"])
                .arg("--target")
                .arg(format!("http://{site}"))
                .arg("--origin-stats")
                .arg(format!("http://{site}/_stats"))
                .arg("--json")
                .arg(&json)
                .arg("--markdown")
                .arg(&markdown)
                .output()
                .expect("run anteroom-bench")
        }
    })
    .await
    .unwrap();
    server.stop().await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["visitors"], 300);
    assert_eq!(report["served"], 300, "{report}");
    assert_eq!(report["booked"], 300, "{report}");
    assert_eq!(report["visitor_errors"], 0, "{report}");
    assert_eq!(report["origin_bookings"], 300, "{report}");
    assert_eq!(report["waited"], 0, "no waiting room in front: {report}");
    assert!(
        report["overtaken"].is_null(),
        "no tickets to read: {report}"
    );
    let admitted: u64 = report["admissions_per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(admitted, 300);
    let text = std::fs::read_to_string(&markdown).unwrap();
    assert!(text.contains("| served | 300 (300 booked) |"), "{text}");
    assert!(text.contains("(surge.svg)"), "{text}");
    let svg = std::fs::read_to_string(dir.join("surge.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{svg:.100}");
    assert!(svg.contains("per second"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_target_that_is_not_http_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .args([
            "surge",
            "--target",
            "https://example.org",
            "--visitors",
            "1",
            "--quiet",
        ])
        .output()
        .expect("run anteroom-bench");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("only http://"));
}

const SECRET: &str = "a-rehearsal-cookie-key-of-at-least-32-characters";

/// An in-process gateway (the test harness's) in front of a site of its
/// own, with one room (`vaccini`, the whole site), the shipped per-client
/// limits and the bench's address trusted for `X-Forwarded-For`.
struct Front {
    site: origin::Running,
    gateway: GatewayHandle,
}

impl Front {
    async fn start(capacity: u32, admit_per_minute: u32) -> Front {
        let room = Room::new("vaccini", &["/"], capacity, admit_per_minute).refresh_seconds(1);
        Front::with_room(room).await
    }

    /// The same, with a launch event: the pre-queue open from now, the
    /// opening on the whole second `opens_in` seconds from now or just after.
    async fn with_event(capacity: u32, admit_per_minute: u32, opens_in: u64) -> Front {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let utc = schedule::time_zone("UTC").unwrap();
        let at = |seconds: u64| schedule::format_instant(seconds * 1000, &utc);
        let room = Room {
            pre_queue_from: Some(at(now.as_secs())),
            opens_at: Some(at(now.as_secs() + opens_in + 1)),
            ..Room::new("vaccini", &["/"], capacity, admit_per_minute).refresh_seconds(1)
        };
        Front::with_room(room).await
    }

    async fn with_room(room: Room) -> Front {
        let site = start_site().await;
        let gateway = gateway_to(&format!("http://{}", site.addr))
            .cookie_keys(&[SECRET])
            .limits(Limits::default().trusted_proxies(&["127.0.0.1/32"]))
            .room(room)
            .start()
            .await;
        Front { site, gateway }
    }

    /// Sends a crowd of `visitors` through it, reading their tickets with
    /// the gateway's key, and returns the JSON report.
    async fn surge(&self, visitors: u32, extra: &[&str]) -> Value {
        let output = self.run_surge(visitors, extra).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(self.json()).expect("the report is written");
        let _ = std::fs::remove_file(self.json());
        serde_json::from_str(&text).expect("the report is JSON")
    }

    fn json(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "anteroom-bench-surge-front-{}-{}.json",
            std::process::id(),
            self.gateway.addr.port()
        ))
    }

    async fn run_surge(&self, visitors: u32, extra: &[&str]) -> std::process::Output {
        let json = self.json();
        let mut command = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"));
        command
            .args(["surge", "--visitors", &visitors.to_string()])
            .args(["--jitter-seconds", "1", "--think-ms", "10", "--quiet"])
            .args(["--room", "vaccini", "--read-tickets", "--forwarded-for"])
            .args(extra)
            .env("ANTEROOM_COOKIE_KEYS", SECRET)
            .arg("--target")
            .arg(format!("http://{}", self.gateway.addr))
            .arg("--json")
            .arg(&json);
        tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("run anteroom-bench")
    }

    async fn stop(self) {
        self.gateway.stop().await;
        self.site.stop().await;
    }
}

/// Through a gateway whose keys the bench is given, each visitor's ticket is
/// read and first come, first served is checked exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_gateways_keys_the_report_counts_overtaking() {
    let front = Front::start(5, 1200).await;
    let report = front.surge(60, &["--impatient", "0"]).await;
    front.stop().await;
    assert_eq!(report["served"], 60, "{report}");
    assert_eq!(report["visitor_errors"], 0, "{report}");
    assert!(report["waited"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["overtaken"], 0, "{report}");
}

/// Visitors who reload the page every few seconds instead of waiting for
/// it to move are still let in, in order, without errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impatient_visitors_reload_and_are_still_served_in_order() {
    let front = Front::start(5, 1200).await;
    let report = front.surge(40, &["--impatient", "1"]).await;
    front.stop().await;
    assert_eq!(report["served"], 40, "{report}");
    assert_eq!(report["visitor_errors"], 0, "{report}");
    assert!(report["waited"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["overtaken"], 0, "{report}");
}

/// A line that hardly moves (one visitor a minute) and visitors with a
/// second's patience on average: the first is let straight in, everyone
/// else leaves the line, and nobody is counted as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_who_lose_patience_abandon_the_line() {
    let front = Front::start(1, 1).await;
    let report = front
        .surge(
            20,
            &[
                "--impatient",
                "0",
                "--abandon",
                "1",
                "--abandon-after-seconds",
                "1",
                "--max-seconds",
                "60",
            ],
        )
        .await;
    front.stop().await;
    assert_eq!(report["served"], 1, "{report}");
    assert_eq!(report["abandoned"], 19, "{report}");
    assert_eq!(report["visitor_errors"], 0, "{report}");
    assert_eq!(report["unfinished"], 0, "{report}");
}

/// A room with a launch event in front of staging: the crowd comes on
/// both sides of the opening, and the report checks the pre-queue against
/// the room's public draw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_event_is_checked_against_the_rooms_draw() {
    let front = Front::with_event(5, 1200, 2).await;
    let report = front
        .surge(60, &["--opens-in", "2", "--impatient", "0"])
        .await;
    front.stop().await;
    assert_eq!(report["served"], 60, "{report}");
    assert_eq!(report["visitor_errors"], 0, "{report}");
    let event = &report["event"];
    assert_eq!(event["draw_verified"], true, "{event}");
    assert!(event["pre_queue"].as_u64().unwrap() > 0, "{event}");
    assert_eq!(event["pre_queue_visitors"], event["pre_queue"], "{event}");
    assert_eq!(event["pre_queue_first"], 0, "{event}");
    assert_eq!(event["draw_mismatches"], 0, "{event}");
    assert_eq!(event["draw_place_mismatches"], 0, "{event}");
    assert_eq!(report["overtaken"], 0, "{report}");
}

/// `--opens-in` that is not the room's opening is refused before anyone
/// is sent: the rehearsal would not be the one asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opening_that_is_not_the_rooms_is_refused() {
    let front = Front::with_event(5, 1200, 30).await;
    let output = front.run_surge(5, &["--opens-in", "5"]).await;
    front.stop().await;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("as --opens-in says"), "{stderr}");
}

/// `--adaptive` reads the room's pace from an admin API; one that has no
/// such room (`404`: here the site itself stands in for a gateway without
/// the controller) costs the run nothing, and the report records no pace
/// but the settings it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pace_that_cannot_be_read_is_left_out_of_the_report() {
    let front = Front::start(5, 1200).await;
    let admin = format!("http://{}", front.site.addr);
    let report = front
        .surge(
            40,
            &[
                "--impatient",
                "0",
                "--adaptive",
                "--admin",
                &admin,
                "--size-factor",
                "2.5",
            ],
        )
        .await;
    front.stop().await;
    assert_eq!(report["served"], 40, "{report}");
    assert_eq!(report["visitor_errors"], 0, "{report}");
    assert_eq!(
        report["settings"],
        serde_json::json!({"adaptive": true, "size_factor": 2.5, "capacity": null,
            "admit_per_minute": null, "max_in_flight_upstream": null, "site_ahead": null}),
        "{report}"
    );
    assert_eq!(report["pace_timeline"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["adaptive_reasons"],
        serde_json::json!({}),
        "{report}"
    );
    assert!(report["trouble_seconds"].is_null(), "{report}");
    assert!(
        report["pace_within_20pct_after_degrade_seconds"].is_null(),
        "{report}"
    );
}

#[test]
fn adaptive_and_size_factor_flags_are_checked() {
    let surge = |flags: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
            .args(["surge", "--target", "http://127.0.0.1:9", "--visitors", "1"])
            .args(["--quiet"])
            .args(flags)
            .output()
            .expect("run anteroom-bench")
    };
    for (flags, reason) in [
        (&["--adaptive", "--room", "vaccini"][..], "--admin"),
        (
            &["--adaptive", "--admin", "http://127.0.0.1:9"][..],
            "--room",
        ),
        (
            &[
                "--adaptive",
                "--room",
                "vaccini",
                "--admin",
                "https://127.0.0.1:9",
            ][..],
            "only http://host:port admin listeners",
        ),
        (&["--size-factor", "0"][..], "above 0 and finite"),
        (&["--size-factor", "NaN"][..], "above 0 and finite"),
        (&["--size-factor", "-1"][..], "above 0 and finite"),
        (&["--size-factor", "many"][..], "not a number"),
    ] {
        let output = surge(flags);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{flags:?}: {stderr}");
    }
}

#[test]
fn reading_tickets_needs_the_keys() {
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .args(["surge", "--target", "http://127.0.0.1:9", "--visitors", "1"])
        .args(["--room", "vaccini", "--read-tickets", "--quiet"])
        .env_remove("ANTEROOM_COOKIE_KEYS")
        .output()
        .expect("run anteroom-bench");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("ANTEROOM_COOKIE_KEYS"));
}

/// A site that refuses every connection: each visitor retries as people do
/// and gives up after `--give-up-after-errors`.
#[test]
fn visitors_give_up_after_too_many_errors() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let json = std::env::temp_dir().join(format!(
        "anteroom-bench-surge-give-up-{}.json",
        std::process::id()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .args(["surge", "--visitors", "5", "--jitter-seconds", "0"])
        .args(["--impatient", "1", "--give-up-after-errors", "2", "--quiet"])
        .args(["--max-seconds", "60"])
        .arg("--target")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run anteroom-bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["gave_up"], 5, "{report}");
    assert_eq!(report["served"], 0, "{report}");
    assert_eq!(report["visitor_errors"], 10, "{report}");
    assert_eq!(report["errors_no_answer"], 10, "{report}");
    assert_eq!(report["visitors_with_errors"], 5, "{report}");
}
