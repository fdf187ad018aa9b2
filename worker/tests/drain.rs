//! The worker as operators run it: real `anteroom-worker` processes, a real
//! Redis, a real gateway taking bookings and the bench's origin as the
//! booking site. Processes are killed with SIGKILL and stopped with SIGTERM.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use anteroom_bench::config_file;
use anteroom_bench::origin::OriginOptions;
use anteroom_tests::{
    Buffer, ConfigFile, GatewayHandle, Postgres, RedisServer, Sink, Skew, Upstream, Visitor,
    config_path, free_port, gateway, gateway_to, plain_client, room, start_binary, upstream_with,
};

const BUFFER: &str = "bookings";
/// Dead letters show their bodies only behind a token.
const ADMIN_TOKEN: &str = "drain-test-admin-token";
/// Long enough for any drain below to finish on a slow shared machine; the
/// tests assert what happened, never how fast.
const PATIENCE: Duration = Duration::from_secs(120);

/// Options of the `[[buffer]]` under test.
#[derive(Clone)]
struct BufferSpec {
    drain_per_second: u32,
    max_in_flight: u32,
    max_attempts: u32,
    max_depth: u64,
    /// `sink_timeout_seconds`; `reclaim_after_seconds` is 1 more, or 30
    /// when the sink timeout is longer than 1.
    sink_timeout: u64,
    sink: Sink,
    /// `content_types`, when not the default.
    content_types: Option<Vec<String>>,
    /// `retry_initial_ms` and `retry_max_seconds`: short by default, so
    /// that retries come soon.
    retry_initial_ms: u64,
    retry_max_seconds: u64,
}

impl Default for BufferSpec {
    fn default() -> Self {
        BufferSpec {
            drain_per_second: 1000,
            max_in_flight: 8,
            max_attempts: 5,
            max_depth: 100_000,
            sink_timeout: 1,
            sink: Sink::Http,
            content_types: None,
            retry_initial_ms: 20,
            retry_max_seconds: 1,
        }
    }
}

impl BufferSpec {
    /// The `[[buffer]]`: bookings (`POST /api/bookings`) in room `vaccini`.
    fn buffer(&self) -> Buffer {
        Buffer {
            max_in_flight: Some(self.max_in_flight),
            sink: self.sink.clone(),
            max_depth: Some(self.max_depth),
            // One visitor books for everyone here.
            max_per_pass: Some(self.max_depth),
            content_types: self.content_types.clone(),
            max_attempts: Some(u64::from(self.max_attempts)),
            retry_initial_ms: Some(self.retry_initial_ms),
            retry_max_seconds: Some(self.retry_max_seconds),
            sink_timeout_seconds: Some(self.sink_timeout),
            reclaim_after_seconds: Some(if self.sink_timeout > 1 { 30 } else { 2 }),
            ..Buffer::new(BUFFER, "vaccini", "/api/bookings", self.drain_per_second)
        }
    }
}

/// `file` for a worker process: against `upstream`, its admin listener on
/// port `admin_port`.
fn worker_config(file: &ConfigFile, upstream: &str, admin_port: u16) -> String {
    ConfigFile {
        upstream: upstream.to_owned(),
        worker: Some(config_file::Worker {
            admin_listen: SocketAddr::from(([127, 0, 0, 1], admin_port)),
        }),
        ..file.clone()
    }
    .toml()
}

/// A gateway on Redis taking bookings, the origin behind it, and the config
/// file workers are started with.
struct Stage {
    redis: RedisServer,
    origin: Upstream,
    gateway: GatewayHandle,
    config: ConfigFile,
}

impl Stage {
    /// Redis runs as the README asks for buffers (`appendonly yes`,
    /// `appendfsync always`), so `202` means the booking is on disk.
    async fn new(spec: BufferSpec, origin: OriginOptions) -> Stage {
        let redis = RedisServer::start_durable().await;
        let origin = upstream_with(origin).await;
        let builder = gateway(&origin)
            .room(room("vaccini").paths(&["/api/"]).capacity(1000))
            .redis(&redis)
            .admin_token(ADMIN_TOKEN)
            .buffer(spec.buffer());
        let config = builder.config_file().clone();
        let gateway = builder.start().await;
        Stage {
            redis,
            origin,
            gateway,
            config,
        }
    }

    /// A worker process with its own admin port, against `upstream` (the
    /// origin unless a test points it elsewhere).
    async fn worker(&self) -> Worker {
        self.worker_to(&self.origin.url()).await
    }

    /// A running, healthy worker. Its admin port is picked free, which can
    /// race with another test taking it first: then it starts again on
    /// another.
    async fn worker_to(&self, upstream: &str) -> Worker {
        self.worker_on(upstream, None).await
    }

    /// As [`Stage::worker_to`], on a clock set off by `skew` (libfaketime),
    /// or the machine's.
    async fn worker_on(&self, upstream: &str, skew: Option<Skew>) -> Worker {
        for _ in 0..3 {
            let mut worker = self.spawn_worker(upstream, skew);
            if worker.wait_healthy().await {
                return worker;
            }
        }
        panic!("the worker exited at startup three times");
    }

    fn spawn_worker(&self, upstream: &str, skew: Option<Skew>) -> Worker {
        let admin_port = free_port();
        Worker::start(
            &worker_config(&self.config, upstream, admin_port),
            admin_port,
            skew,
        )
    }

    /// A visitor inside the room (the room has space: straight in).
    async fn admitted_visitor(&self) -> Visitor {
        let visitor = self.gateway.visitor();
        let response = visitor.get("/api/slots").await;
        assert_eq!(response.status(), 200, "the visitor got in");
        visitor
    }

    async fn figures(&self) -> serde_json::Value {
        plain_client()
            .get(self.gateway.admin_url(&format!("/admin/buffers/{BUFFER}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("admin answers")
            .json()
            .await
            .expect("buffer figures")
    }

    async fn done(&self) -> u64 {
        self.figures().await["done"].as_u64().expect("done count")
    }

    /// Waits until at least `count` requests are at the sink.
    async fn wait_in_flight(&self, count: u64) {
        let started = Instant::now();
        while self.figures().await["in_flight"].as_u64() < Some(count) {
            assert!(started.elapsed() < PATIENCE, "never {count} in flight");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `done` requests are finished, or panics after PATIENCE.
    async fn wait_done(&self, done: u64) {
        let started = Instant::now();
        loop {
            let figures = self.figures().await;
            if figures["done"].as_u64() == Some(done) && figures["depth"].as_u64() == Some(0) {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "never finished {done} requests: {figures}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn booking(index: usize) -> serde_json::Value {
    serde_json::json!({ "name": format!("visitor {index}"), "slot": "2021-03-01T09:00" })
}

/// Posts a booking and returns its receipt id.
async fn book(visitor: &Visitor, key: &str, body: &serde_json::Value) -> String {
    let response = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("booking request");
    assert_eq!(response.status(), 202, "the booking was accepted");
    let answer: serde_json::Value = response.json().await.expect("receipt JSON");
    answer["receipt"].as_str().expect("a receipt").to_owned()
}

/// Posts `count` bookings with keys `key-0..`, a few at a time.
async fn book_many(visitor: &Visitor, count: usize) -> Vec<String> {
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .map(|index| {
            let visitor = visitor.clone();
            async move { book(&visitor, &format!("key-{index}"), &booking(index)).await }
        })
        .buffered(16)
        .collect()
        .await
}

async fn receipt(stage: &Stage, id: &str) -> serde_json::Value {
    plain_client()
        .get(stage.gateway.url(&format!("/_anteroom/receipts/{id}")))
        .send()
        .await
        .expect("receipt answers")
        .json()
        .await
        .expect("receipt JSON")
}

struct Worker {
    child: Option<Child>,
    admin_port: u16,
    config_path: std::path::PathBuf,
}

impl Worker {
    fn start(config: &str, admin_port: u16, skew: Option<Skew>) -> Worker {
        let config_path = config_path("worker-test", admin_port);
        let child = start_binary(
            env!("CARGO_BIN_EXE_anteroom-worker"),
            config,
            &config_path,
            skew,
        );
        Worker {
            child: Some(child),
            admin_port,
            config_path,
        }
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// Waits until the worker answers `/healthz`: true, or false if it
    /// exited first.
    async fn wait_healthy(&mut self) -> bool {
        let started = Instant::now();
        while plain_client()
            .get(self.admin_url("/healthz"))
            .send()
            .await
            .is_err()
        {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                eprintln!("the worker exited at startup: {status}");
                return false;
            }
            assert!(started.elapsed() < PATIENCE, "the worker never came up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to finish anything.
    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 the worker");
            child.wait().expect("reap the worker");
        }
    }

    /// SIGTERM, then waits for the exit; returns its status code.
    fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("send SIGTERM");
        assert!(status.success());
        let mut child = self.child.take().expect("running");
        child.wait().expect("reap the worker").code()
    }

    async fn metrics(&self) -> String {
        plain_client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .expect("worker metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill_9();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// `anteroom_buffer_applied_total{buffer="bookings",result="done"}` from a
/// Prometheus text.
fn applied_done(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|line| {
            line.starts_with("anteroom_buffer_applied_total")
                && line.contains("result=\"done\"")
                && line.contains(&format!("buffer=\"{BUFFER}\""))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map_or(0, |value| value as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_is_accepted_then_applied_through_the_http_sink() {
    let stage = Stage::new(BufferSpec::default(), OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let id = book(&visitor, "only-once", &booking(1)).await;
    let queued = receipt(&stage, &id).await;
    assert_eq!(queued["state"], "queued", "no worker yet: {queued}");
    assert_eq!(queued["position"], 1);
    assert_eq!(stage.origin.stats().await["bookings"], 0);

    let worker = stage.worker().await;
    stage.wait_done(1).await;
    let done = receipt(&stage, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["result"]["status"], 201, "{done}");
    let body: serde_json::Value =
        serde_json::from_str(done["result"]["body"].as_str().expect("body")).expect("JSON body");
    assert_eq!(body["name"], "visitor 1");
    assert_eq!(stage.origin.stats().await["bookings"], 1);
    assert_eq!(applied_done(&worker.metrics().await), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_pace() {
    const RATE: u32 = 100;
    const COUNT: u64 = 600;
    let spec = BufferSpec {
        drain_per_second: RATE,
        ..BufferSpec::default()
    };
    let origin = OriginOptions {
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    };
    let stage = Stage::new(spec, origin).await;
    let visitor = stage.admitted_visitor().await;
    book_many(&visitor, COUNT as usize).await;
    let first = stage.worker().await;
    let second = stage.worker().await;
    // Sample the finished count over the drain; measure the pace between
    // 100 and 500 finished (away from the start's burst and the tail).
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let started = Instant::now();
    loop {
        let done = stage.done().await;
        samples.push((Instant::now(), done));
        if done >= COUNT {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "the drain never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let from = samples.iter().find(|(_, done)| *done >= 100).expect("100");
    let to = samples.iter().find(|(_, done)| *done >= 500).expect("500");
    let pace = (to.1 - from.1) as f64 / to.0.duration_since(from.0).as_secs_f64();
    let ratio = pace / f64::from(RATE);
    eprintln!("pace: {pace:.2}/s for drain_per_second = {RATE} (ratio {ratio:.4})");
    assert!(
        (0.95..=1.05).contains(&ratio),
        "two workers drained at {pace:.1}/s for drain_per_second = {RATE} (ratio {ratio:.3})"
    );
    let (first_done, second_done) = (
        applied_done(&first.metrics().await),
        applied_done(&second.metrics().await),
    );
    assert_eq!(first_done + second_done, COUNT);
    assert!(
        first_done > 0 && second_done > 0,
        "both workers took part: {first_done} and {second_done}"
    );
    assert_eq!(stage.origin.stats().await["bookings"], COUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_drain_loses_nothing_and_applies_nothing_twice() {
    const COUNT: usize = 1000;
    let spec = BufferSpec {
        drain_per_second: 300,
        ..BufferSpec::default()
    };
    // Each booking takes the origin 20 ms, so a worker always has some in
    // flight when it is killed.
    let origin = OriginOptions {
        service_time: Duration::from_millis(20),
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    };
    let stage = Stage::new(spec, origin).await;
    let visitor = stage.admitted_visitor().await;
    let receipts = book_many(&visitor, COUNT).await;
    let mut doomed = stage.worker().await;
    let _survivor = stage.worker().await;
    let started = Instant::now();
    loop {
        let figures = stage.figures().await;
        if figures["done"].as_u64() >= Some(300) && figures["in_flight"].as_u64() > Some(0) {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "the drain never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.kill_9();
    stage.wait_done(COUNT as u64).await;

    let stats = stage.origin.stats().await;
    assert_eq!(
        stats["bookings"], COUNT,
        "every booking applied exactly once, by idempotency key: {stats}"
    );
    let figures = stage.figures().await;
    assert_eq!(figures["dead"], 0, "{figures}");
    for id in &receipts {
        let answer = receipt(&stage, id).await;
        assert_eq!(answer["state"], "done", "{id}: {answer}");
        assert_eq!(answer["result"]["status"], 201, "{id}: {answer}");
    }
}

/// A site that takes connections and never answers: every request to it
/// times out (`sink_timeout_seconds`). It listens until the task is
/// dropped with the test.
async fn silent_site() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the silent site");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    (url, task)
}

/// Leases and retries are kept on the store's clock (Redis's `TIME`), so
/// workers whose clocks differ share them: what a worker five minutes
/// ahead took and never finished, or put back for a retry, a worker five
/// minutes behind takes again as soon as it is due, not ten minutes later
/// (`PATIENCE` is two). Each worker process runs under libfaketime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_whose_clocks_differ_share_leases_and_retries() {
    const COUNT: usize = 20;
    let spec = BufferSpec {
        // No dead letters here: every request must end done.
        max_attempts: 100,
        ..BufferSpec::default()
    };
    let stage = Stage::new(spec, OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let receipts = book_many(&visitor, COUNT).await;
    // The worker ahead sends to a site that never answers: its requests
    // time out and wait for a retry, and the next it tries is leased.
    let (silent, _site) = silent_site().await;
    let mut ahead = stage.worker_on(&silent, Some(Skew::AheadMinutes(5))).await;
    let started = Instant::now();
    loop {
        let figures = stage.figures().await;
        if figures["retrying"].as_u64() > Some(0) && figures["in_flight"].as_u64() > Some(0) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the worker ahead never had a retry and a lease: {figures}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ahead.kill_9();
    let _behind = stage
        .worker_on(&stage.origin.url(), Some(Skew::BehindMinutes(5)))
        .await;
    stage.wait_done(COUNT as u64).await;
    assert_eq!(stage.origin.stats().await["bookings"], COUNT);
    for id in &receipts {
        let answer = receipt(&stage, id).await;
        assert_eq!(answer["state"], "done", "{id}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_is_retried_then_dead_lettered() {
    let spec = BufferSpec {
        max_attempts: 3,
        ..BufferSpec::default()
    };
    let stage = Stage::new(spec, OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let id = book(&visitor, "doomed", &booking(7)).await;
    // The worker's upstream refuses connections.
    let worker = stage
        .worker_to(&format!("http://127.0.0.1:{}", free_port()))
        .await;
    let started = Instant::now();
    let failed = loop {
        let answer = receipt(&stage, &id).await;
        if answer["state"] == "failed" {
            break answer;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "never dead-lettered: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let why = failed["why"].as_str().expect("a reason");
    assert!(why.contains("gave up after 3 attempts"), "{why}");
    assert!(why.contains("unreachable"), "{why}");

    let figures = stage.figures().await;
    assert_eq!(figures["dead"], 1, "{figures}");
    assert_eq!(figures["depth"], 0, "{figures}");
    let letters = figures["dead_letters"].as_array().expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["receipt"], id.as_str());
    // The key the store and the site know it by is scoped to the visitor;
    // the client's own is shown beside it.
    let scoped = letters[0]["idempotency_key"].as_str().expect("a key");
    assert!(scoped.starts_with("key-") && scoped.len() == 68, "{scoped}");
    assert_eq!(letters[0]["client_idempotency_key"], "doomed");
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["target"], "/api/bookings");
    assert!(
        letters[0]["body"]
            .as_str()
            .is_some_and(|body| body.contains("visitor 7")),
        "the operator sees what was not applied: {}",
        letters[0]
    );
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("anteroom_buffer_dead_letters_total{buffer=\"bookings\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_from_the_site_is_final_and_not_retried() {
    let stage = Stage::new(BufferSpec::default(), OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let unknown_slot = serde_json::json!({ "name": "Ada", "slot": "1999-01-01T00:00" });
    let id = book(&visitor, "no-such-slot", &unknown_slot).await;
    let served_before = stage.origin.requests_served().await;
    let _worker = stage.worker().await;
    stage.wait_done(1).await;
    let answer = receipt(&stage, &id).await;
    assert_eq!(answer["state"], "done", "{answer}");
    let status = answer["result"]["status"].as_u64().expect("status");
    assert!((400..500).contains(&status), "{answer}");
    assert_eq!(
        stage.origin.requests_served().await - served_before,
        1,
        "a 4xx is the site's answer, not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_takes_no_more() {
    let spec = BufferSpec {
        drain_per_second: 1000,
        max_in_flight: 4,
        ..BufferSpec::default()
    };
    let origin = OriginOptions {
        service_time: Duration::from_millis(400),
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    };
    let stage = Stage::new(spec, origin).await;
    let visitor = stage.admitted_visitor().await;
    book_many(&visitor, 40).await;
    let mut worker = stage.worker().await;
    stage.wait_in_flight(1).await;
    assert_eq!(worker.terminate(), Some(0), "a clean exit");
    let figures = stage.figures().await;
    assert_eq!(
        figures["in_flight"], 0,
        "requests in flight were finished, not abandoned: {figures}"
    );
    let done = figures["done"].as_u64().expect("done");
    assert!(done >= 1, "{figures}");
    assert_eq!(figures["queued"].as_u64(), Some(40 - done), "{figures}");
    assert_eq!(stage.origin.stats().await["bookings"], done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_bookings_survive_a_redis_restart_with_aof() {
    const COUNT: usize = 100;
    let mut stage = Stage::new(BufferSpec::default(), OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let receipts = book_many(&visitor, COUNT).await;
    stage.redis.kill();
    stage.redis.restart().await;
    let _worker = stage.worker().await;
    stage.wait_done(COUNT as u64).await;
    assert_eq!(stage.origin.stats().await["bookings"], COUNT);
    for id in &receipts {
        assert_eq!(receipt(&stage, id).await["state"], "done");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reports_health_readiness_and_metrics() {
    let mut stage = Stage::new(BufferSpec::default(), OriginOptions::default()).await;
    let worker = stage.worker().await;
    let client = plain_client();
    let get = |path: &str| client.get(worker.admin_url(path)).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    anteroom_tests::eventually("the worker exports its buffer's depth", || async {
        worker
            .metrics()
            .await
            .contains("anteroom_buffer_depth{buffer=\"bookings\"} 0")
    })
    .await;
    stage.redis.kill();
    let not_ready = get("/readyz").await.expect("readyz");
    assert_eq!(not_ready.status(), 503);
    assert!(
        not_ready
            .text()
            .await
            .expect("reason")
            .contains("unreachable")
    );
    stage.redis.restart().await;
    anteroom_tests::eventually("the worker is ready again", || async {
        get("/readyz")
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_the_memory_backend() {
    let origin = upstream_with(OriginOptions::default()).await;
    let builder = gateway_to(&origin.url())
        .room(room("vaccini").paths(&["/api/"]))
        .buffer(BufferSpec::default().buffer());
    let config = worker_config(builder.config_file(), &origin.url(), free_port());
    let path = std::env::temp_dir().join(format!("anteroom-worker-memory-{}.toml", free_port()));
    std::fs::write(&path, config).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_anteroom-worker"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run the worker");
    let _ = std::fs::remove_file(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in-process"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_sink_never_overbooks_a_slot() {
    let database = Postgres::database().await;
    database
        .client()
        .await
        .batch_execute(
            "CREATE TABLE slots (id int PRIMARY KEY, capacity int NOT NULL, \
                 booked int NOT NULL DEFAULT 0, CHECK (booked <= capacity)); \
             CREATE TABLE bookings (id serial PRIMARY KEY, \
                 slot_id int NOT NULL REFERENCES slots (id), name text NOT NULL, \
                 idempotency_key text NOT NULL UNIQUE); \
             INSERT INTO slots (id, capacity) VALUES (1, 5), (2, 5), (3, 5);",
        )
        .await
        .expect("schema");
    let statement = "WITH s AS (UPDATE slots SET booked = booked + 1 WHERE id = $1 RETURNING id) \
                     INSERT INTO bookings (slot_id, name, idempotency_key) \
                     SELECT id, $2, $3 FROM s RETURNING id, slot_id";
    let spec = BufferSpec {
        drain_per_second: 50,
        sink: Sink::Postgres {
            postgres_url: database.url().to_owned(),
            statement: statement.to_owned(),
            params: ["slot_id", "patient.name", "$idempotency_key"]
                .map(str::to_owned)
                .to_vec(),
        },
        content_types: Some(vec!["application/json".to_owned()]),
        ..BufferSpec::default()
    };
    let stage = Stage::new(spec, OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let body = |index: usize| serde_json::json!({ "slot_id": index % 3 + 1, "patient": { "name": format!("patient {index}") } });
    let mut receipts = Vec::new();
    for index in 0..30 {
        receipts.push(book(&visitor, &format!("pg-{index}"), &body(index)).await);
    }
    // A retried submission is the same booking.
    for (index, first_receipt) in receipts.iter().enumerate().take(5) {
        let again = book(&visitor, &format!("pg-{index}"), &body(index)).await;
        assert_eq!(&again, first_receipt);
    }
    // A body without a parameter the statement needs is refused at the door.
    let missing = visitor
        .client
        .post(visitor.url("/api/bookings"))
        .json(&serde_json::json!({ "slot_id": 1 }))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 422);
    assert!(missing.text().await.expect("text").contains("patient.name"));

    let _first = stage.worker().await;
    let _second = stage.worker().await;
    stage.wait_done(30).await;

    let mut statuses = std::collections::BTreeMap::new();
    for id in &receipts {
        let answer = receipt(&stage, id).await;
        assert_eq!(answer["state"], "done", "{answer}");
        *statuses
            .entry(answer["result"]["status"].as_u64().expect("status"))
            .or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        [(201, 15), (409, 15)].into_iter().collect(),
        "15 seats, 30 bookings"
    );
    let client = database.client().await;
    for row in client
        .query(
            "SELECT s.id, s.booked, s.capacity, count(b.id) FROM slots s \
             LEFT JOIN bookings b ON b.slot_id = s.id GROUP BY s.id ORDER BY s.id",
            &[],
        )
        .await
        .expect("slots")
    {
        let (booked, capacity, rows): (i32, i32, i64) = (row.get(1), row.get(2), row.get(3));
        assert_eq!(booked, capacity, "slot {} is full", row.get::<_, i32>(0));
        assert_eq!(i64::from(booked), rows, "one row per seat taken");
    }
    let applied: i64 = client
        .query_one("SELECT count(*) FROM anteroom_applied", &[])
        .await
        .expect("applied")
        .get(0);
    assert_eq!(applied, 30, "every request applied once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_site_makes_no_dead_letters() {
    const COUNT: usize = 30;
    let spec = BufferSpec {
        max_attempts: 2,
        ..BufferSpec::default()
    };
    let stage = Stage::new(spec, OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let receipts = book_many(&visitor, COUNT).await;
    // The worker's site is down: nothing listens on its port yet.
    let port = free_port();
    let worker = stage.worker_to(&format!("http://127.0.0.1:{port}")).await;
    anteroom_tests::eventually("the worker notices the site is down", || async {
        worker
            .metrics()
            .await
            .contains("anteroom_buffer_sink_down{buffer=\"bookings\"} 1")
    })
    .await;
    // Far more failed tries than max_attempts allows per request.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let figures = stage.figures().await;
    assert_eq!(
        figures["dead"], 0,
        "an outage is not the requests' fault: {figures}"
    );
    assert_eq!(figures["done"], 0, "{figures}");

    // The site comes back.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the site's port");
    let _site = anteroom_bench::origin::serve_on(listener, OriginOptions::default())
        .expect("serve the site");
    stage.wait_done(COUNT as u64).await;
    for id in &receipts {
        let answer = receipt(&stage, id).await;
        assert_eq!(answer["result"]["status"], 201, "{answer}");
    }
    assert_eq!(stage.figures().await["dead"], 0);
    assert!(
        worker
            .metrics()
            .await
            .contains("anteroom_buffer_sink_down{buffer=\"bookings\"} 0")
    );
}

/// Two workers, the site down: the first to probe it when it is back takes
/// the whole pace, so the other's probes find no request and none of its
/// own could tell it the site answers. It leaves probe mode anyway, from the
/// requests the buffer finishes (found stuck at 1 for 55 s in a chaos run).
/// Its next probe is at least 20 s away here, so only that can tell it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_leaves_probe_mode_when_another_finds_the_site_answering() {
    const COUNT: usize = 40;
    let spec = BufferSpec {
        // The probe after the first is 20 to 40 s away, and more after it.
        retry_initial_ms: 40_000,
        retry_max_seconds: 120,
        ..BufferSpec::default()
    };
    let stage = Stage::new(spec, OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    book_many(&visitor, COUNT).await;
    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    let prober = stage.worker_to(&site).await;
    anteroom_tests::eventually("the first worker finds the site down", || async {
        prober
            .metrics()
            .await
            .contains("anteroom_buffer_sink_down{buffer=\"bookings\"} 1")
    })
    .await;

    // The site comes back, and a second worker finds it so first.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the site's port");
    let _site = anteroom_bench::origin::serve_on(listener, OriginOptions::default())
        .expect("serve the site");
    let _drainer = stage.worker_to(&site).await;
    anteroom_tests::eventually("the second worker drains", || async {
        stage.done().await > 0
    })
    .await;
    anteroom_tests::eventually("the first worker leaves probe mode", || async {
        prober
            .metrics()
            .await
            .contains("anteroom_buffer_sink_down{buffer=\"bookings\"} 0")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_in_flight_cap() {
    const COUNT: usize = 40;
    let spec = BufferSpec {
        drain_per_second: 1000,
        max_in_flight: 3,
        ..BufferSpec::default()
    };
    // Slow bookings: each worker alone would fill the site with 3 at once.
    let origin = OriginOptions {
        service_time: Duration::from_millis(100),
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    };
    let stage = Stage::new(spec, origin).await;
    let visitor = stage.admitted_visitor().await;
    book_many(&visitor, COUNT).await;
    let _first = stage.worker().await;
    let _second = stage.worker().await;
    stage.wait_done(COUNT as u64).await;
    let stats = stage.origin.stats().await;
    assert_eq!(stats["bookings"], COUNT);
    let most = stats["max_concurrency"].as_u64().expect("max concurrency");
    assert!(
        most <= 3,
        "the site saw {most} bookings at once for max_in_flight = 3 across two workers"
    );
}

/// A site that answers each booking with the next status of `script`, then
/// 201; it records the `Idempotency-Key` of every request it sees.
async fn scripted_site(
    script: Vec<u16>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            let script = script.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        let script = script.clone();
                        async move {
                            let key = request
                                .headers()
                                .get("idempotency-key")
                                .and_then(|value| value.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let count = {
                                let mut log = log.lock().expect("log");
                                log.push(key);
                                log.len()
                            };
                            let status = script.get(count - 1).copied().unwrap_or(201);
                            let mut response = http::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(format!("answer {count}")),
                            ));
                            *response.status_mut() =
                                http::StatusCode::from_u16(status).expect("status");
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_not_now_answers_are_retried_with_the_same_key() {
    let spec = BufferSpec {
        max_attempts: 5,
        ..BufferSpec::default()
    };
    let stage = Stage::new(spec, OriginOptions::default()).await;
    let visitor = stage.admitted_visitor().await;
    let id = book(&visitor, "retried", &booking(3)).await;
    let (site, seen) = scripted_site(vec![503, 429, 408, 500]).await;
    let _worker = stage.worker_to(&site).await;
    stage.wait_done(1).await;
    let answer = receipt(&stage, &id).await;
    assert_eq!(answer["result"]["status"], 201, "{answer}");
    assert_eq!(answer["result"]["body"], "answer 5");
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 5, "five tries: {seen:?}");
    assert!(seen.iter().all(|key| key == &seen[0]), "one key: {seen:?}");
    // The visitor's key, scoped to them (not the client's own).
    assert!(
        seen[0].starts_with("key-") && seen[0].len() == 68,
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_still_in_flight_when_the_grace_ends_are_handed_back() {
    // The site takes 5 s per booking; the worker's grace is 2 s (the
    // harness's shutdown_grace_seconds) and its leases last 30 s.
    let spec = BufferSpec {
        max_in_flight: 4,
        sink_timeout: 10,
        ..BufferSpec::default()
    };
    let origin = OriginOptions {
        service_time: Duration::from_secs(5),
        slot_capacity: 1_000_000,
        ..OriginOptions::default()
    };
    let stage = Stage::new(spec, origin).await;
    let visitor = stage.admitted_visitor().await;
    book_many(&visitor, 3).await;
    let mut worker = stage.worker().await;
    stage.wait_in_flight(3).await;
    assert_eq!(worker.terminate(), Some(0), "a clean exit");
    let figures = stage.figures().await;
    assert_eq!(
        figures["in_flight"], 0,
        "handed back, not left to their 30 s leases: {figures}"
    );
    assert_eq!(figures["retrying"], 3, "{figures}");
    assert_eq!(figures["dead"], 0, "{figures}");
}
