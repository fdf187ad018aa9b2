//! `anteroom-bench http`: the gateway's hot paths against nginx, in one run.
//!
//! One process sets up everything on 127.0.0.1 free ports: the bench origin
//! (in this process), a private `redis-server` (or `--redis-url`), two
//! gateways (child processes of the release `anteroom-gateway` binary: one
//! with rooms on Redis, one with a strict rate limit) and nginx on a
//! generated config. wrk then measures, interleaved nginx, anteroom, nginx,
//! anteroom, each run after a warm-up:
//!
//! - `proxy`: an admitted visitor (valid pass cookie) proxied to the origin,
//!   against nginx `proxy_pass` with upstream keep-alive; same path;
//! - `status`: a waiting visitor polling `/_anteroom/status`, against nginx
//!   answering the same body with `return 200`;
//! - `arrivals`: new visitors, each taking a ticket in a full room (Redis),
//!   behind an empty queue and behind `--queued` visitors;
//! - `limit`: a client over its rate limit, `429`, against nginx
//!   `limit_req`.
//!
//! Every run is checked as it is measured (wrk's non-2xx count, the origin's
//! request count, the gateway's own counters); a run that measured anything
//! but what the scenario means fails the whole command.

mod check;
mod gateway;
mod measure;
mod nginx;
mod redis;
mod report;
mod tools;
mod visitors;
mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::fetch::Client;
use crate::origin::{self, OriginOptions};
use gateway::{Gateway, RoomPlan, Secrets};
use nginx::{Nginx, NginxPorts};
use redis::Redis;
use report::Report;
use tools::WorkDir;

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Length of each measured run, in seconds (`10` or `10s`).
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECONDS")]
    pub duration: u64,
    /// Warm-up before each measured run, in seconds (not counted).
    #[arg(long, default_value = "2", value_parser = parse_seconds, value_name = "SECONDS")]
    pub warmup: u64,
    /// Connections wrk keeps open.
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Rounds of runs (each round runs every scenario, nginx then anteroom).
    #[arg(long, default_value_t = 2)]
    pub rounds: u32,
    /// Scenarios to run (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "proxy,status,arrivals,limit"
    )]
    pub scenarios: Vec<Scenario>,
    /// Visitors queued before the long-queue arrivals runs (0: skip them).
    #[arg(long, default_value_t = 1_000_000)]
    pub queued: u64,
    /// Use this Redis instead of starting a private `redis-server`.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The gateway binary (default: `anteroom-gateway` beside this binary).
    #[arg(long, value_name = "FILE")]
    pub gateway_bin: Option<PathBuf>,
    /// Record `perf record -g` of the gateway during every measured
    /// anteroom run, into DIR/SCENARIO-roundN.data.
    #[arg(long, value_name = "DIR")]
    pub perf: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Proxy,
    Status,
    Arrivals,
    Limit,
}

fn parse_seconds(text: &str) -> Result<u64, String> {
    let seconds: u64 = text
        .strip_suffix('s')
        .unwrap_or(text)
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if seconds == 0 {
        return Err("must be at least 1 second".to_owned());
    }
    Ok(seconds)
}

pub async fn run(mut args: HttpArgs) -> ExitCode {
    // Each scenario once, in the order given.
    let mut seen = Vec::new();
    args.scenarios.retain(|scenario| {
        let first = !seen.contains(scenario);
        seen.push(*scenario);
        first
    });
    if args.threads == 0 || args.connections < args.threads || args.rounds == 0 {
        eprintln!(
            "anteroom-bench http: need --rounds >= 1, --threads >= 1 and --connections >= --threads"
        );
        return ExitCode::from(2);
    }
    let json = args.json.clone();
    let report = match measure_all(args).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("anteroom-bench http: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report::markdown(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(error) = std::fs::write(&path, text + "\n") {
            eprintln!(
                "anteroom-bench http: cannot write {}: {error}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn measure_all(args: HttpArgs) -> Result<Report, String> {
    let mut bench = Bench::start(args).await?;
    let queue_memory = bench.prepare().await?;
    for round in 1..=bench.args.rounds {
        for scenario in bench.args.scenarios.clone() {
            bench.round(scenario, round).await?;
        }
    }
    // `wrk -v` prints its version and exits 1.
    let wrk_version = tokio::process::Command::new(&bench.wrk)
        .arg("-v")
        .output()
        .await
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let runs = std::mem::take(&mut bench.runs);
    Ok(Report {
        date: report::utc_now(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cpus: std::thread::available_parallelism().map_or(1, |cpus| cpus.get()),
        wrk: wrk_version
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_owned(),
        nginx: bench.nginx.version.clone(),
        redis: bench.redis.version().await.unwrap_or_default(),
        rounds: bench.args.rounds,
        summary: report::summarise(&runs),
        runs,
        queue_memory,
    })
}

/// The rooms of the rooms gateway. Names carry a tag of this run, so that
/// runs against one `--redis-url` never share a room.
struct Rooms {
    /// Roomy: a visitor goes straight in (proxy scenario).
    inside: RoomPlan,
    /// Full: one visitor inside, one waiting with a ticket (status).
    waiting: RoomPlan,
    /// Full, for the arrivals warm-ups.
    warmup: RoomPlan,
    /// Full and with nobody queued: one per round (arrivals, empty queue).
    fresh: Vec<RoomPlan>,
    /// Full, with `--queued` visitors in line (arrivals, long queue).
    queued: RoomPlan,
}

impl Rooms {
    fn new(tag: &str, rounds: u32) -> Rooms {
        let full = |name: &str, path: String| RoomPlan {
            name: format!("{tag}-{name}"),
            path,
            capacity: 1,
            admit_per_minute: 1,
        };
        Rooms {
            inside: RoomPlan {
                name: format!("{tag}-inside"),
                path: "/prenota".to_owned(),
                capacity: 100_000,
                admit_per_minute: 600_000,
            },
            waiting: full("waiting", "/attesa/".to_owned()),
            warmup: full("warmup", "/arrivi/warmup/".to_owned()),
            fresh: (1..=rounds)
                .map(|round| full(&format!("fresh{round}"), format!("/arrivi/fresh-{round}/")))
                .collect(),
            queued: full("queued", "/arrivi/queued/".to_owned()),
        }
    }

    fn all(&self) -> Vec<RoomPlan> {
        let mut all = vec![
            self.inside.clone(),
            self.waiting.clone(),
            self.warmup.clone(),
        ];
        all.extend(self.fresh.iter().cloned());
        all.push(self.queued.clone());
        all
    }
}

/// Everything the run started. Fields drop in order: the processes stop
/// before their directory is removed.
struct Bench {
    args: HttpArgs,
    load: wrk::Load,
    wrk: PathBuf,
    client: Client,
    origin: SocketAddr,
    rooms: Rooms,
    gateway: Gateway,
    limit_gateway: Gateway,
    nginx: Nginx,
    nginx_ports: NginxPorts,
    redis: Redis,
    /// The waiting visitor's ticket (status scenario).
    ticket: String,
    runs: Vec<report::Run>,
    /// Stops when dropped.
    _site: origin::Running,
    // Removed last, once everything that used it has stopped.
    _work: WorkDir,
}

impl Bench {
    async fn start(args: HttpArgs) -> Result<Bench, String> {
        let wrk = tools::program("wrk", "wrk").await?;
        let nginx_binary = tools::program("nginx", "nginx-light").await?;
        let gateway_binary = match &args.gateway_bin {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|error| format!("cannot find this binary: {error}"))?
                .with_file_name("anteroom-gateway"),
        };
        if !gateway_binary.is_file() {
            return Err(format!(
                "no gateway binary at {} (build it: cargo build --release -p anteroom-gateway -p anteroom-bench, or say --gateway-bin)",
                gateway_binary.display()
            ));
        }
        if let Some(dir) = &args.perf {
            tools::program("perf", "linux-perf").await?;
            std::fs::create_dir_all(dir)
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        let work = WorkDir::create()?;
        let redis = match &args.redis_url {
            Some(url) => {
                let redis = Redis::at(url)?;
                redis.ping().await?;
                redis
            }
            None => Redis::start_private(&work).await?,
        };

        let site = origin::start(OriginOptions::default())
            .await
            .map_err(|error| format!("cannot start the origin: {error}"))?;
        let origin = site.addr;

        let ports = tools::free_ports(6)?;
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let secrets = Secrets::generate()?;
        let rooms = Rooms::new(&tools::random_hex(3)?, args.rounds);
        let config = gateway::rooms_config(
            at(ports[0]),
            at(ports[1]),
            origin,
            &redis.url,
            &secrets,
            &rooms.all(),
        );
        let gateway_at = (at(ports[0]), at(ports[1]));
        let gateway = Gateway::start(
            &gateway_binary,
            &work,
            "gateway",
            &config,
            gateway_at.0,
            gateway_at.1,
            &secrets,
        )
        .await?;
        let config = gateway::limit_config(at(ports[2]), at(ports[3]), origin, &secrets);
        let limit_gateway = Gateway::start(
            &gateway_binary,
            &work,
            "limit-gateway",
            &config,
            at(ports[2]),
            at(ports[3]),
            &secrets,
        )
        .await?;

        let client = Client::new();
        let (ticket, status_body) =
            visitors::waiting_visitor(&client, &gateway, &rooms.waiting).await?;
        let nginx_ports = NginxPorts {
            main: ports[4],
            limited: ports[5],
            origin: origin.port(),
        };
        let keepalive = args.connections.max(64);
        let nginx =
            Nginx::start(&nginx_binary, &work, &nginx_ports, keepalive, &status_body).await?;
        eprintln!(
            "origin {origin}, gateway {} (pid {}), limit gateway {} (pid {}), nginx {} and {} (pids {:?}), Redis {}",
            gateway.public,
            gateway.service.pid(),
            limit_gateway.public,
            limit_gateway.service.pid(),
            nginx_ports.main,
            nginx_ports.limited,
            nginx.pids(),
            redis.url
        );
        Ok(Bench {
            load: wrk::Load {
                threads: args.threads,
                connections: args.connections,
            },
            args,
            wrk,
            client,
            origin,
            rooms,
            gateway,
            limit_gateway,
            nginx,
            nginx_ports,
            redis,
            ticket,
            runs: Vec::new(),
            _site: site,
            _work: work,
        })
    }
}
