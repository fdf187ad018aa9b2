//! A gateway as operators run it: the `anteroom-gateway` binary on a config
//! file, its clock set off by libfaketime when the test asks
//! ([`crate::faketime`]), that the test can stop (SIGTERM), kill (SIGKILL),
//! freeze (SIGSTOP) and thaw, and start again on the same ports. Only the gateway crate's own tests
//! know where its binary is (`env!("CARGO_BIN_EXE_anteroom-gateway")`), so
//! they pass its path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::{ConfigFile, Skew, Visitor, config_path, free_port, plain_client, start_binary};

/// Long enough for a process to start on a slow shared machine; a bound,
/// not a measurement.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// An `anteroom-gateway` process, killed when dropped.
pub struct GatewayProcess {
    binary: String,
    config: String,
    skew: Option<Skew>,
    admin_token: Option<String>,
    child: Option<Child>,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    config_path: PathBuf,
}

impl GatewayProcess {
    /// Starts `binary` on `file`, listening on two free ports of 127.0.0.1,
    /// with its clock set off by `skew` when there is one, and waits until
    /// it is ready (`/readyz`: its rooms' first steps have answered).
    pub async fn start(binary: &str, file: &ConfigFile, skew: Option<Skew>) -> GatewayProcess {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut file = file.clone();
        file.listen = Some(addr);
        file.admin_listen = Some(admin_addr);
        let mut process = GatewayProcess {
            binary: binary.to_owned(),
            config: file.toml(),
            skew,
            admin_token: file.secrets.admin_token.clone(),
            child: None,
            addr,
            admin_addr,
            config_path: config_path("gateway", addr.port()),
        };
        process.spawn().await;
        process
    }

    async fn spawn(&mut self) {
        self.child = Some(start_binary(
            &self.binary,
            &self.config,
            &self.config_path,
            self.skew,
        ));
        let started = Instant::now();
        while !self.is_ready().await {
            assert!(
                started.elapsed() < PATIENCE,
                "the gateway on {} never got ready",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn is_ready(&self) -> bool {
        plain_client()
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    }

    /// Kills the process (SIGKILL: no drain, no last report), then starts
    /// the binary again on the same config, ports and clock, and waits until
    /// it is ready.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// SIGKILL, and waits for the process to end.
    pub fn kill(&mut self) {
        crate::kill_and_wait(&mut self.child);
    }

    /// Freezes the process (SIGSTOP): it neither steps its rooms nor
    /// answers, and keeps everything it knows.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        crate::signal(self.child.as_ref(), signal);
    }

    /// SIGTERM, and waits for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("send SIGTERM");
            assert!(status.success());
            child.wait().expect("reap the gateway");
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    pub fn visitor(&self) -> Visitor {
        Visitor::new(&self.url())
    }

    /// `room`'s figures as this gateway last saw them
    /// (`GET /admin/rooms/NAME`).
    pub async fn figures(&self, room: &str) -> serde_json::Value {
        let mut request = plain_client().get(self.admin_url(&format!("/admin/rooms/{room}")));
        if let Some(token) = &self.admin_token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("the admin listener answers")
            .json()
            .await
            .expect("the room's figures")
    }

    /// One of `room`'s figures, a count.
    pub async fn figure(&self, room: &str, name: &str) -> u64 {
        let figures = self.figures(room).await;
        figures[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no figure {name} in {figures}"))
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.config_path);
    }
}
