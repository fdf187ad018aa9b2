//! A small opening day, replayed through the real binary: the contract of
//! `anteroom-bench lazio --visitors N --origin-capacity C --json FILE`, and
//! what anteroom promises on the day. Behaviour only, no timing thresholds.

use std::process::Command;

use serde_json::Value;

/// 2,000 visitors in two seconds at a site that serves 10 requests at once
/// (about 140 visitors a second at 20 ms a request): a surge of about
/// seven times what the site can take.
fn replay(extra: &[&str]) -> Value {
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
        .args([
            "lazio",
            "--visitors",
            "2000",
            "--origin-capacity",
            "10",
            "--jitter-seconds",
            "2",
            "--quiet",
            "--json",
        ])
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

#[test]
fn bad_flags_exit_2_with_the_reason() {
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .args(["lazio", "--visitors", "10", "--abandon", "2"])
        .output()
        .expect("run anteroom-bench");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--abandon"));
}

/// A private `redis-server` on a free port, stopped when dropped.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        let redis = Redis { child, port };
        // Wait until it answers PING.
        for _ in 0..500 {
            if let Ok(mut connection) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let mut answer = [0u8; 7];
                if connection.write_all(b"PING\r\n").is_ok()
                    && connection.read_exact(&mut answer).is_ok()
                    && &answer == b"+PONG\r\n"
                {
                    return redis;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server on port {port} did not answer");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_replay_runs_on_redis_when_given() {
    let redis = Redis::start();
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let reports = replay(&["--only-anteroom", "--redis-url", &url]);
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
