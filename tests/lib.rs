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

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anteroom_config::Config;
use anteroom_gateway::{Clock, Gateway};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use anteroom_gateway::room::STEP_INTERVAL;

/// A cookie key shared by every gateway of a test.
pub const COOKIE_KEY: &str = "test-cookie-key-0123456789abcdefghijklmnop";

// ---------------------------------------------------------------- Redis

/// A private `redis-server`, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: std::path::PathBuf,
    durable: bool,
}

impl RedisServer {
    /// A server that keeps nothing on disk: a restart starts it empty.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(false).await
    }

    /// A server with the append-only file on and fsynced on every write
    /// (`appendonly yes`, `appendfsync always`): whatever it acknowledged
    /// survives a kill, and a restart reloads it.
    pub async fn start_durable() -> RedisServer {
        RedisServer::start_with(true).await
    }

    async fn start_with(durable: bool) -> RedisServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("anteroom-test-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir for redis");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            durable,
        };
        server.spawn().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL); its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers,
    /// the data is kept.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill {signal} failed");
        }
    }

    /// Kills the server and starts it again on the same port: empty, or,
    /// if it was started durable, with the data it had acknowledged.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        let append_only: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(append_only)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Starts counting the commands clients send to this server (round
    /// trips' worth: commands that scripts run inside Redis are not counted).
    pub async fn monitor(&self) -> CommandCounter {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to redis");
        stream
            .write_all(b"MONITOR\r\n")
            .await
            .expect("send MONITOR");
        let mut lines = BufReader::new(stream).lines();
        let first = lines.next_line().await.expect("MONITOR reply");
        assert_eq!(first.as_deref(), Some("+OK"));
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = count.clone();
        let task = tokio::spawn(async move {
            // Lines look like `+1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" ...`,
            // or `[0 lua]` for a command a script ran.
            while let Ok(Some(line)) = lines.next_line().await {
                if !line.contains(" lua]") {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        });
        CommandCounter { count, task }
    }

    async fn ping(&self) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Counts commands clients send to a Redis (see [`RedisServer::monitor`]).
pub struct CommandCounter {
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: JoinHandle<()>,
}

impl CommandCounter {
    /// Commands seen so far. MONITOR output lags the commands slightly, so
    /// callers wait a moment before reading a final figure.
    pub async fn seen(&self) -> u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for CommandCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

// ---------------------------------------------------------------- upstream

/// The bench's origin site, serving `/echo/...` (what reached it) and the
/// demo pages.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Stops the site when the test drops it.
    _site: anteroom_bench::origin::Running,
}

pub async fn upstream() -> Upstream {
    upstream_with(anteroom_bench::origin::OriginOptions::default()).await
}

pub async fn upstream_with(options: anteroom_bench::origin::OriginOptions) -> Upstream {
    let site = anteroom_bench::origin::start(options)
        .await
        .expect("start the upstream");
    Upstream {
        addr: site.addr,
        _site: site,
    }
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The origin's own figures (`/_stats`, read directly; reading them does
    /// not count as a request).
    pub async fn stats(&self) -> serde_json::Value {
        plain_client()
            .get(format!("{}/_stats", self.url()))
            .send()
            .await
            .expect("origin stats")
            .json()
            .await
            .expect("origin stats JSON")
    }

    /// Requests the origin has served so far.
    pub async fn requests_served(&self) -> u64 {
        self.stats().await["requests"]
            .as_u64()
            .expect("the origin counts requests")
    }
}

// ---------------------------------------------------------------- HTTP

/// A client without a cookie jar that follows no redirects: it sends exactly
/// the cookies a test gives it.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A response header as text.
pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// Every `Set-Cookie` line of a response for the cookie called `name`.
pub fn set_cookies(response: &reqwest::Response, name: &str) -> Vec<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter(|cookie| cookie.starts_with(prefix.as_str()))
        .map(str::to_owned)
        .collect()
}

/// The value a response sets for cookie `name` (deletions ignored).
pub fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response, name).iter().find_map(|cookie| {
        let value = cookie.split(';').next()?.split_once('=')?.1;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Polls until `check` holds, for at most ten seconds, then panics naming
/// `what`. For effects that arrive with the gateway's next step or report.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

// ---------------------------------------------------------------- rooms

/// A `[[room]]` table for a test config.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    pub name: String,
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub capacity: u32,
    pub admit_per_minute: u32,
    pub session_seconds: u64,
    pub arrival_seconds: u64,
    pub refresh_seconds: u64,
}

pub fn room(name: &str) -> RoomSpec {
    RoomSpec {
        name: name.to_owned(),
        paths: vec![format!("/echo/{name}")],
        exclude: Vec::new(),
        capacity: 1,
        admit_per_minute: 6000,
        session_seconds: 300,
        arrival_seconds: 60,
        refresh_seconds: 1,
    }
}

impl RoomSpec {
    pub fn paths(mut self, paths: &[&str]) -> Self {
        self.paths = paths.iter().map(|p| p.to_string()).collect();
        self
    }
    pub fn exclude(mut self, exclude: &[&str]) -> Self {
        self.exclude = exclude.iter().map(|p| p.to_string()).collect();
        self
    }
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }
    pub fn admit_per_minute(mut self, rate: u32) -> Self {
        self.admit_per_minute = rate;
        self
    }
    pub fn session_seconds(mut self, seconds: u64) -> Self {
        self.session_seconds = seconds;
        self
    }
    pub fn arrival_seconds(mut self, seconds: u64) -> Self {
        self.arrival_seconds = seconds;
        self
    }
    /// How often the waiting page re-checks (the tests' default is 1 s, the
    /// config's 5 s).
    pub fn refresh_seconds(mut self, seconds: u64) -> Self {
        self.refresh_seconds = seconds;
        self
    }

    fn toml(&self) -> String {
        format!(
            "[[room]]\nname = {:?}\npaths = {:?}\nexclude = {:?}\ncapacity = {}\nadmit_per_minute = {}\nsession_seconds = {}\narrival_seconds = {}\nrefresh_seconds = {}\n\n",
            self.name,
            self.paths,
            self.exclude,
            self.capacity,
            self.admit_per_minute,
            self.session_seconds,
            self.arrival_seconds,
            self.refresh_seconds
        )
    }
}

// ---------------------------------------------------------------- gateway

/// Which store a test gateway uses.
#[derive(Debug, Clone)]
pub enum Backend {
    Memory,
    Redis(String),
}

impl Backend {
    /// The backend a suite runs against: `ANTEROOM_TEST_BACKEND=memory|redis`
    /// is not used; suites run both explicitly (see `both_backends!`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis(_) => "redis",
        }
    }
}

pub struct GatewayBuilder {
    upstream: String,
    rooms: Vec<RoomSpec>,
    backend: Backend,
    on_error: &'static str,
    cookie_keys: Vec<String>,
    clock: Clock,
    upstream_timeout_seconds: u64,
    limits: String,
    extra: String,
    admin_token: Option<String>,
}

/// Limits loose enough that a test's many visitors, all on 127.0.0.1, are
/// never rate limited unless the test asks for limits.
pub const LOOSE_LIMITS: &str =
    "per_ip_per_second = 1000000\nper_ip_burst = 1000000\ntickets_per_ip_per_minute = 1000000\n";

pub fn gateway(upstream: &Upstream) -> GatewayBuilder {
    gateway_to(&upstream.url())
}

/// A gateway in front of any URL (e.g. one where nothing listens).
pub fn gateway_to(upstream_url: &str) -> GatewayBuilder {
    GatewayBuilder {
        upstream: upstream_url.to_owned(),
        rooms: Vec::new(),
        backend: Backend::Memory,
        on_error: "wait",
        cookie_keys: vec![COOKIE_KEY.to_owned()],
        clock: Clock::system(),
        upstream_timeout_seconds: 30,
        limits: LOOSE_LIMITS.to_owned(),
        extra: String::new(),
        admin_token: None,
    }
}

impl GatewayBuilder {
    pub fn room(mut self, room: RoomSpec) -> Self {
        self.rooms.push(room);
        self
    }
    pub fn redis(mut self, redis: &RedisServer) -> Self {
        self.backend = Backend::Redis(redis.url());
        self
    }
    pub fn backend(mut self, backend: &Backend) -> Self {
        self.backend = backend.clone();
        self
    }
    pub fn on_error(mut self, on_error: &'static str) -> Self {
        self.on_error = on_error;
        self
    }
    pub fn cookie_keys(mut self, keys: &[&str]) -> Self {
        self.cookie_keys = keys.iter().map(|k| k.to_string()).collect();
        self
    }
    pub fn clock(mut self, clock: &Clock) -> Self {
        self.clock = clock.clone();
        self
    }
    /// The `[limits]` table's body (TOML lines), replacing [`LOOSE_LIMITS`].
    pub fn limits(mut self, lines: &str) -> Self {
        self.limits = lines.to_owned();
        self
    }

    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_owned());
        self
    }

    /// More TOML tables, appended to the config (e.g. `[cookies]`).
    pub fn extra_toml(mut self, text: &str) -> Self {
        self.extra.push_str(text);
        self.extra.push('\n');
        self
    }

    pub fn upstream_timeout_seconds(mut self, seconds: u64) -> Self {
        self.upstream_timeout_seconds = seconds;
        self
    }

    pub fn toml(&self) -> String {
        let store = match &self.backend {
            Backend::Memory => "[store]\nbackend = \"memory\"\n".to_owned(),
            Backend::Redis(url) => format!("[store]\nbackend = \"redis\"\nredis_url = {url:?}\n"),
        };
        let mut text = format!(
            "listen = \"127.0.0.1:1\"\nadmin_listen = \"127.0.0.1:2\"\nupstream = {:?}\nupstream_timeout_seconds = {}\nshutdown_grace_seconds = 2\n\n{store}on_error = {:?}\n\n[secrets]\ncookie_keys = {:?}\n{}\n[limits]\n{}\n\n",
            self.upstream,
            self.upstream_timeout_seconds,
            self.on_error,
            self.cookie_keys,
            self.admin_token
                .as_ref()
                .map(|token| format!("admin_token = {token:?}\n"))
                .unwrap_or_default(),
            self.limits
        );
        text.push_str(&self.extra);
        for room in &self.rooms {
            text.push_str(&room.toml());
        }
        text
    }

    pub async fn start(self) -> GatewayHandle {
        let config = Config::from_toml(&self.toml(), |_| None).expect("test config is valid");
        let public = TcpListener::bind("127.0.0.1:0").await.expect("bind public");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let addr = public.local_addr().expect("public address");
        let admin_addr = admin.local_addr().expect("admin address");
        let gateway = Gateway::with_clock(config, self.clock.clone()).expect("gateway starts");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway
                .serve(public, admin, async {
                    let _ = stopped.await;
                })
                .await
                .expect("gateway serves");
        });
        let handle = GatewayHandle {
            addr,
            admin_addr,
            clock: self.clock,
            stop: Some(stop),
            task: Some(task),
        };
        // Let every room take its first step so the cache is warm.
        tokio::time::sleep(STEP_INTERVAL * 3).await;
        handle
    }
}

pub struct GatewayHandle {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl GatewayHandle {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// The status code of `/readyz`.
    pub async fn readiness(&self) -> u16 {
        plain_client()
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .expect("the admin listener answers")
            .status()
            .as_u16()
    }

    /// A new visitor: a browser-like client with its own cookie jar.
    pub fn visitor(&self) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            base: format!("http://{}", self.addr),
        }
    }

    /// Stops the gateway and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits for the gateway's background step to run a few times, so that
    /// its cached figures reflect the store.
    pub async fn settle(&self) {
        tokio::time::sleep(STEP_INTERVAL * 4).await;
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A browser-like visitor. Clones share the cookie jar.
#[derive(Clone)]
pub struct Visitor {
    pub client: reqwest::Client,
    base: String,
}

impl Visitor {
    /// The same visitor (same cookies) talking to another gateway.
    pub fn with_base(&self, base: &str) -> Visitor {
        Visitor {
            client: self.client.clone(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The absolute URL of `path` on this visitor's gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// Leaves `room` (`POST /_anteroom/leave`), freeing the slot.
    pub async fn leave(&self, room: &str) {
        let response = self.post(&format!("/_anteroom/leave?room={room}")).await;
        assert_eq!(response.status(), 200, "leaving {room}");
    }

    pub async fn get_json(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .send()
            .await
            .expect("request")
    }

    /// `GET /_anteroom/status?room=NAME` as JSON.
    pub async fn status(&self, room: &str) -> serde_json::Value {
        let response = self.get(&format!("/_anteroom/status?room={room}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("status JSON")
    }

    /// The visitor's place in `room`'s line (1 = next), if waiting.
    pub async fn position(&self, room: &str) -> Option<u64> {
        self.status(room).await["position"].as_u64()
    }

    /// Polls status until the visitor is admitted (or panics after `limit`).
    pub async fn wait_until_admitted(&self, room: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.status(room).await;
            if status["state"] == "admitted" {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not admitted within {limit:?}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Is this response the origin's (rather than the gateway's waiting page)?
/// The origin's `/echo` answers JSON with a `method` field.
pub async fn reached_origin(response: reqwest::Response) -> bool {
    if response.status() != 200 {
        return false;
    }
    match response.json::<serde_json::Value>().await {
        Ok(body) => body.get("method").is_some(),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// The server the PostgreSQL tests use when `ANTEROOM_TEST_POSTGRES_URL` is
/// not set: trust auth on loopback, as `scripts/test` arranges.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A private, empty database on the test PostgreSQL server, so tests run in
/// parallel; dropped (with any connections left) when this is dropped.
pub struct Postgres {
    pub name: String,
    url: String,
    admin_url: String,
}

impl Postgres {
    /// Creates `anteroom_test_<unique>` on the server named by
    /// `ANTEROOM_TEST_POSTGRES_URL` (default [`DEFAULT_POSTGRES_URL`]).
    pub async fn database() -> Postgres {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CREATED: AtomicU64 = AtomicU64::new(0);

        let admin_url = std::env::var("ANTEROOM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "anteroom_test_{}_{}_{nanos}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let admin = postgres_connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL at ANTEROOM_TEST_POSTGRES_URL (default {DEFAULT_POSTGRES_URL}) is \
                 needed (scripts/test starts one): {error}"
            )
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        Postgres {
            url: url_with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// The database's URL, as a `postgres_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's TCP address, for a proxy in front of it. Panics when
    /// the tests reach PostgreSQL over a Unix socket.
    pub async fn address(&self) -> SocketAddr {
        let config: tokio_postgres::Config = self.url.parse().expect("a postgres URL");
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => panic!("this test needs PostgreSQL over TCP, not {}", self.url),
        };
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .unwrap_or_else(|| panic!("cannot resolve {host}"))
    }

    /// The database's URL with the server at `authority` (`host:port`)
    /// instead, e.g. a [`TcpProxy`] in front of it.
    pub fn url_at(&self, authority: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a postgres:// URL");
        let (user, host_and_path) = match rest.split_once('@') {
            Some((user, after)) => (format!("{user}@"), after),
            None => (String::new(), rest),
        };
        let path_start = host_and_path
            .find(['/', '?'])
            .unwrap_or(host_and_path.len());
        format!(
            "{scheme}://{user}{authority}{}",
            &host_and_path[path_start..]
        )
    }

    /// A fresh connection to the database, for a test's own queries.
    pub async fn client(&self) -> tokio_postgres::Client {
        postgres_connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which must not be blocked on:
        // a thread of its own with its own runtime drops the database.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = postgres_connect(&admin_url).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

async fn postgres_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database (the path) replaced by `database`; the user,
/// host (a socket directory too) and query are kept.
fn url_with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map(|start| &tail[start..]).unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}

// ---------------------------------------------------------------- TCP proxy

/// A TCP proxy on a free local port in front of `target`, so a test can
/// make a server unreachable (`close`: the port refuses and open connections
/// are cut) or unresponsive (`stall`: bytes stop flowing, connections stay
/// open) and bring it back.
pub struct TcpProxy {
    pub port: u16,
    target: SocketAddr,
    stalled: tokio::sync::watch::Sender<bool>,
    tasks: Option<tokio::task::JoinSet<()>>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (stalled, _) = tokio::sync::watch::channel(false);
        let mut proxy = TcpProxy {
            port,
            target,
            stalled,
            tasks: None,
        };
        proxy.serve(listener);
        proxy
    }

    /// Stops listening and cuts every connection: the port is closed.
    pub fn close(&mut self) {
        // Dropping a JoinSet aborts its tasks, which drops their sockets.
        self.tasks = None;
    }

    /// Listens again on the same port.
    pub async fn reopen(&mut self) {
        self.close();
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy's port");
        self.serve(listener);
    }

    /// Holds every byte from now on, on open and new connections alike.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Lets the held bytes and everything after them through.
    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        let stalled = self.stalled.subscribe();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                connections.spawn(forward(client_read, server_write, stalled.clone()));
                connections.spawn(forward(server_read, client_write, stalled.clone()));
            }
        });
        self.tasks = Some(tasks);
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            break;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

// ---------------------------------------------------------------- browser

/// A real headless Chromium driven through `chromedriver` (WebDriver, with
/// the fantoccini client), for the suites that test pages as visitors and
/// operators see them.
///
/// ```ignore
/// let browser = Browser::options().javascript(false).language("it").open().await;
/// browser.client.goto(&gw.url("/echo/vaccini")).await?;
/// browser.close().await;
/// ```
///
/// Needs `chromium` and `chromedriver` (Debian: `chromium`,
/// `chromium-driver`; `scripts/test` installs them when missing). Without
/// them the tests fail, never skip.
pub mod browser;

/// Runs each scenario, an `async fn NAME(store: Arc<dyn Trait>)`, against a
/// `MemoryStore` and against a `RedisStore` on a fresh private Redis: the
/// contract suites of the store seams use it.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $scenario() {
                super::$scenario(std::sync::Arc::new(anteroom_store::MemoryStore::new())).await;
            })*
        }
        mod redis {
            $(#[tokio::test] async fn $scenario() {
                let server = $crate::RedisServer::start().await;
                let store = anteroom_store::RedisStore::new(&server.url()).expect("redis store");
                super::$scenario(std::sync::Arc::new(store)).await;
            })*
        }
    };
}
