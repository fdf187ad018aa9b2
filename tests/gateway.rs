//! The gateway under test: a builder for its config (test defaults: the
//! memory store, one shared cookie key, limits no test hits unless it asks)
//! and a handle to the gateway serving in-process on port 0.

use std::net::SocketAddr;
use std::time::Duration;

use anteroom_config::Config;
use anteroom_gateway::{Clock, Gateway};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use anteroom_gateway::room::STEP_INTERVAL;

use crate::{Backend, RedisServer, Upstream, Visitor, plain_client};

/// A cookie key shared by every gateway of a test.
pub const COOKIE_KEY: &str = "test-cookie-key-0123456789abcdefghijklmnop";

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
        Visitor::new(&format!("http://{}", self.addr))
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
