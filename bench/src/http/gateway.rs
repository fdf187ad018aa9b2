//! The gateways under test: child processes of the release
//! `anteroom-gateway` binary, each on a generated config, and what their
//! admin listener tells (room figures, request counters).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::tools::{self, Service, WorkDir};
use crate::config_file::{self, ConfigFile, Limits, OnError, Store, StoreBackend};
use crate::fetch::Client;

/// A `[[room]]` of the bench's gateway.
#[derive(Debug, Clone)]
pub struct RoomPlan {
    pub name: String,
    /// The one path prefix it protects.
    pub path: String,
    pub capacity: u32,
    pub admit_per_minute: u32,
}

impl RoomPlan {
    fn room(&self) -> config_file::Room {
        // A long session and arrival window: nobody inside times out during
        // the run, so a full room stays full and its line does not move.
        config_file::Room::new(
            &self.name,
            &[&self.path],
            self.capacity,
            self.admit_per_minute,
        )
        .session_seconds(86400)
        .arrival_seconds(3600)
    }
}

/// The gateway of the proxy, status and arrivals scenarios: Redis backend,
/// and per-client limits raised out of the way, since wrk is one client
/// (127.0.0.1) sending tens of thousands of requests a second. The limit
/// scenario has its own gateway.
pub fn rooms_config(
    public: SocketAddr,
    admin: SocketAddr,
    origin: SocketAddr,
    redis_url: &str,
    secrets: &Secrets,
    rooms: &[RoomPlan],
) -> String {
    ConfigFile {
        listen: Some(public),
        admin_listen: Some(admin),
        shutdown_grace_seconds: Some(1),
        store: Store {
            backend: StoreBackend::redis(redis_url),
            on_error: Some(OnError::Wait),
            ..Store::default()
        },
        secrets: config_file::Secrets {
            cookie_keys: vec![secrets.cookie_key.clone()],
            admin_token: Some(secrets.admin_token.clone()),
        },
        limits: Limits::default()
            .per_ip_per_second(1_000_000_000)
            .per_ip_burst(1_000_000_000)
            .tickets_per_ip_per_minute(1_000_000_000)
            // wrk's connections all come from 127.0.0.1.
            .max_connections_per_client(1_000_000)
            .max_in_flight_upstream_per_client(1_000_000),
        rooms: rooms.iter().map(RoomPlan::room).collect(),
        ..ConfigFile::new(format!("http://{origin}"))
    }
    .toml()
}

/// The gateway of the limit scenario: one request a second per client,
/// memory backend, no rooms.
pub fn limit_config(
    public: SocketAddr,
    admin: SocketAddr,
    origin: SocketAddr,
    secrets: &Secrets,
) -> String {
    ConfigFile {
        listen: Some(public),
        admin_listen: Some(admin),
        shutdown_grace_seconds: Some(1),
        secrets: config_file::Secrets {
            cookie_keys: Vec::new(),
            admin_token: Some(secrets.admin_token.clone()),
        },
        limits: Limits::default()
            .per_ip_per_second(1)
            .per_ip_burst(1)
            .max_connections_per_client(1_000_000),
        ..ConfigFile::new(format!("http://{origin}"))
    }
    .toml()
}

/// Keys of this run only.
pub struct Secrets {
    pub cookie_key: String,
    pub admin_token: String,
}

impl Secrets {
    pub fn generate() -> Result<Secrets, String> {
        Ok(Secrets {
            cookie_key: tools::random_hex(32)?,
            admin_token: tools::random_hex(24)?,
        })
    }
}

/// A running gateway.
pub struct Gateway {
    pub service: Service,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    admin_token: String,
}

/// `anteroom_requests_total`, by (route, outcome).
pub type Counters = HashMap<(String, String), u64>;

impl Gateway {
    /// Checks the config with `--check`, starts the binary on it and waits
    /// until `/readyz` answers 200 (the store is reachable).
    pub async fn start(
        binary: &Path,
        work: &WorkDir,
        name: &'static str,
        config: &str,
        public: SocketAddr,
        admin: SocketAddr,
        secrets: &Secrets,
    ) -> Result<Gateway, String> {
        let path = work.write(&format!("{name}.toml"), config)?;
        tools::command_output(
            Command::new(binary)
                .arg("--config")
                .arg(&path)
                .arg("--check"),
        )
        .await
        .map_err(|error| format!("the gateway rejects the generated {name}.toml: {error}"))?;
        let mut command = Command::new(binary);
        command.arg("--config").arg(&path).env("RUST_LOG", "warn");
        let service = Service::spawn(name, &mut command, work.file(&format!("{name}.log")))?;
        let mut gateway = Gateway {
            service,
            public,
            admin,
            admin_token: secrets.admin_token.clone(),
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let client = Client::new();
        let url = format!("http://{}/readyz", self.admin);
        for _ in 0..200 {
            if let Ok(reply) = client.get(&url, &[]).await
                && reply.status.is_success()
            {
                // One step of every room (100 ms), so that their figures
                // are cached before the first request.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(());
            }
            self.service.check_running()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("{} is not ready after 10 s", self.service.name))
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.public)
    }

    /// A room's figures (`GET /admin/rooms/NAME`): `tickets_issued`,
    /// `waiting`, `inside`, ...
    pub async fn room(&self, client: &Client, name: &str) -> Result<serde_json::Value, String> {
        let bearer = format!("Bearer {}", self.admin_token);
        let reply = client
            .get(
                &format!("http://{}/admin/rooms/{name}", self.admin),
                &[("authorization", &bearer)],
            )
            .await?;
        if !reply.status.is_success() {
            return Err(format!(
                "room {name}: admin API answers {}: {}",
                reply.status,
                reply.text()
            ));
        }
        reply.json()
    }

    /// A whole-number figure of a room.
    pub async fn room_figure(
        &self,
        client: &Client,
        name: &str,
        figure: &str,
    ) -> Result<u64, String> {
        let room = self.room(client, name).await?;
        room[figure]
            .as_u64()
            .ok_or_else(|| format!("room {name}: no figure {figure} in {room}"))
    }

    /// The request counters (`/metrics`).
    pub async fn counters(&self, client: &Client) -> Result<Counters, String> {
        let reply = client
            .get(&format!("http://{}/metrics", self.admin), &[])
            .await?;
        if !reply.status.is_success() {
            return Err(format!("/metrics answers {}", reply.status));
        }
        Ok(parse_counters(&reply.text()))
    }
}

/// Reads `anteroom_requests_total{route="..",outcome=".."} N` lines.
pub fn parse_counters(metrics: &str) -> Counters {
    let mut counters = Counters::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("anteroom_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |key: &str| {
            labels.split(',').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name.trim() == key).then(|| value.trim_matches('"').to_owned())
            })
        };
        if let (Some(route), Some(outcome), Ok(value)) = (
            label("route"),
            label("outcome"),
            value.trim().parse::<f64>(),
        ) {
            counters.insert((route, outcome), value as u64);
        }
    }
    counters
}

/// How each counter moved between two readings.
pub fn counter_changes(before: &Counters, after: &Counters) -> Counters {
    after
        .iter()
        .map(|(key, value)| {
            let old = before.get(key).copied().unwrap_or(0);
            (key.clone(), value.saturating_sub(old))
        })
        .filter(|(_, change)| *change > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_request_counters() {
        let text = "# TYPE anteroom_requests_total counter\n\
                    anteroom_requests_total{route=\"inside\",outcome=\"proxied\"} 1200\n\
                    anteroom_requests_total{outcome=\"rate_limited\",route=\"none\"} 7\n\
                    anteroom_requests_total_other{route=\"x\",outcome=\"y\"} 3\n";
        let counters = parse_counters(text);
        assert_eq!(counters.len(), 2);
        assert_eq!(counters[&("inside".into(), "proxied".into())], 1200);
        assert_eq!(counters[&("none".into(), "rate_limited".into())], 7);
        let mut later = counters.clone();
        later.insert(("none".into(), "rate_limited".into()), 10);
        let changes = counter_changes(&counters, &later);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[&("none".into(), "rate_limited".into())], 3);
    }
}
