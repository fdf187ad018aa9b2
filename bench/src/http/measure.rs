//! The measured runs: nginx then anteroom per scenario and round, each
//! warmed up, measured with the CPU each process used, and checked.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::check::Observation;
use super::gateway::{Gateway, RoomPlan};
use super::report::{Case, CpuCores, Run, Server};
use super::visitors::{SETTLE, pass_cookie, status_of, status_path, ticket_cookie};
use super::{Bench, Scenario, tools, wrk};

/// CPU seconds used so far, by process group.
struct CpuReading {
    at: Instant,
    server: f64,
    origin: f64,
    redis: Option<f64>,
    wrk: f64,
}

/// What one run is: its case, where wrk goes, with which headers.
pub(super) struct Plan<'a> {
    pub case: Case,
    pub server: Server,
    pub round: u32,
    pub url: String,
    pub warmup_url: String,
    pub headers: Vec<String>,
    /// Arrivals: the room whose tickets are counted.
    pub room: Option<&'a RoomPlan>,
}

impl Bench {
    /// One scenario's runs of one round: nginx, then anteroom.
    pub(super) async fn round(&mut self, scenario: Scenario, round: u32) -> Result<(), String> {
        let nginx_main = |path: &str| format!("http://127.0.0.1:{}{path}", self.nginx_ports.main);
        let plans = match scenario {
            Scenario::Proxy => {
                let path = &self.rooms.inside.path;
                vec![
                    (
                        Case::Proxy,
                        Server::Nginx,
                        nginx_main(path),
                        nginx_main(path),
                        None,
                    ),
                    (
                        Case::Proxy,
                        Server::Anteroom,
                        self.gateway.url(path),
                        self.gateway.url(path),
                        None,
                    ),
                ]
            }
            Scenario::Status => {
                let path = status_path(&self.rooms.waiting);
                vec![
                    (
                        Case::Status,
                        Server::Nginx,
                        nginx_main(&path),
                        nginx_main(&path),
                        None,
                    ),
                    (
                        Case::Status,
                        Server::Anteroom,
                        self.gateway.url(&path),
                        self.gateway.url(&path),
                        None,
                    ),
                ]
            }
            Scenario::Arrivals => {
                let warmup = self.gateway.url(&self.rooms.warmup.path);
                let fresh = &self.rooms.fresh[round as usize - 1];
                let mut plans = vec![(
                    Case::ArrivalsEmpty,
                    Server::Anteroom,
                    self.gateway.url(&fresh.path),
                    warmup.clone(),
                    Some(fresh),
                )];
                if self.args.queued > 0 {
                    let queued = &self.rooms.queued;
                    plans.push((
                        Case::ArrivalsQueued,
                        Server::Anteroom,
                        self.gateway.url(&queued.path),
                        warmup,
                        Some(queued),
                    ));
                }
                plans
            }
            Scenario::Limit => {
                let nginx = format!("http://127.0.0.1:{}/", self.nginx_ports.limited);
                let anteroom = self.limit_gateway.url("/");
                vec![
                    (Case::Limit, Server::Nginx, nginx.clone(), nginx, None),
                    (
                        Case::Limit,
                        Server::Anteroom,
                        anteroom.clone(),
                        anteroom,
                        None,
                    ),
                ]
            }
        };
        let mut runs = Vec::new();
        for (case, server, url, warmup_url, room) in plans {
            let headers = match case {
                // A pass signed just now: a pass is re-signed once it is 30 s
                // old, which a browser would take up but wrk cannot.
                Case::Proxy => vec![format!(
                    "Cookie: {}={}",
                    pass_cookie(&self.rooms.inside),
                    self.fresh_pass().await?
                )],
                Case::Status => vec![format!(
                    "Cookie: {}={}",
                    ticket_cookie(&self.rooms.waiting),
                    self.ticket
                )],
                _ => Vec::new(),
            };
            let plan = Plan {
                case,
                server,
                round,
                url,
                warmup_url,
                headers,
                room,
            };
            runs.push(self.measure(&plan).await?);
        }
        self.runs.extend(runs);
        Ok(())
    }
    async fn measure(&self, plan: &Plan<'_>) -> Result<Run, String> {
        let args = &self.args;
        wrk::run(
            &self.wrk,
            self.load,
            args.warmup,
            &plan.warmup_url,
            &plan.headers,
        )
        .await?;
        tokio::time::sleep(SETTLE).await;
        let before = self.observe(plan).await?;
        let perf = self.start_perf(plan).await?;
        let cpu_before = self.cpu(plan);
        let figures = wrk::run(
            &self.wrk,
            self.load,
            args.duration,
            &plan.url,
            &plan.headers,
        )
        .await?;
        let cpu_after = self.cpu(plan);
        if let Some(perf) = perf {
            stop_perf(perf).await;
        }
        tokio::time::sleep(SETTLE).await;
        let after = self.observe(plan).await?;
        let cpu_cores = cores(&cpu_before, &cpu_after);
        let run = Run {
            case: plan.case,
            server: plan.server,
            round: plan.round,
            url: plan.url.clone(),
            queued_at_start: plan.room.map(|_| before.waiting),
            server_cpu_us_per_request: cpu_cores.server * 1e6
                / figures.requests_per_second.max(1.0),
            cpu_cores,
            figures,
        };
        eprintln!(
            "round {} {} {:?}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} responses, {} non-2xx",
            run.round,
            run.case.title(),
            run.server,
            run.figures.requests_per_second,
            run.figures.p50_ms,
            run.figures.p99_ms,
            run.figures.requests,
            run.figures.non_2xx
        );
        self.check(plan, &run.figures, &before, &after)
            .map_err(|problem| {
                format!(
                    "round {} {} {:?}: {problem}",
                    plan.round,
                    plan.case.title(),
                    plan.server
                )
            })?;
        Ok(run)
    }

    async fn observe(&self, plan: &Plan<'_>) -> Result<Observation, String> {
        let stats = self
            .client
            .get(&format!("http://{}/_stats", self.origin), &[])
            .await?
            .json()?;
        let mut observation = Observation {
            origin_requests: stats["requests"]
                .as_u64()
                .ok_or("the origin's /_stats has no requests")?,
            ..Observation::default()
        };
        if plan.server == Server::Anteroom {
            observation.counters = self.gateway_of(plan.case).counters(&self.client).await?;
        }
        if let Some(room) = plan.room {
            let figures = self.gateway.room(&self.client, &room.name).await?;
            observation.issued = figures["tickets_issued"].as_u64().unwrap_or(0);
            observation.waiting = figures["waiting"].as_u64().unwrap_or(0);
        }
        if plan.case == Case::Status {
            // The ticket is still waiting: nobody was let in, and every poll
            // was answered from the cached figures.
            status_of(
                &self.client,
                &self.gateway,
                &self.rooms.waiting,
                &self.ticket,
            )
            .await?;
        }
        Ok(observation)
    }

    pub(super) fn gateway_of(&self, case: Case) -> &Gateway {
        if case == Case::Limit {
            &self.limit_gateway
        } else {
            &self.gateway
        }
    }
    fn cpu(&self, plan: &Plan<'_>) -> CpuReading {
        let seconds = |pid: u32| tools::cpu_seconds(&pid.to_string()).map_or(0.0, |(own, _)| own);
        let server_pids = match plan.server {
            Server::Nginx => self.nginx.pids(),
            Server::Anteroom => vec![self.gateway_of(plan.case).service.pid()],
        };
        let (origin, children) = tools::cpu_seconds("self").unwrap_or_default();
        CpuReading {
            at: Instant::now(),
            server: server_pids.into_iter().map(seconds).sum(),
            origin,
            redis: self.redis.server.as_ref().map(|redis| seconds(redis.pid())),
            // The children this process has waited for: wrk, once it ends.
            wrk: children,
        }
    }

    async fn start_perf(&self, plan: &Plan<'_>) -> Result<Option<Child>, String> {
        let Some(dir) = &self.args.perf else {
            return Ok(None);
        };
        if plan.server != Server::Anteroom {
            return Ok(None);
        }
        let case = serde_json::to_value(plan.case)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned));
        let output = dir.join(format!(
            "{}-round{}.data",
            case.unwrap_or_default(),
            plan.round
        ));
        let pid = self.gateway_of(plan.case).service.pid();
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-p", &pid.to_string(), "-o"])
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start perf: {error}"))?;
        // perf attaches in a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(Some(child))
    }
}

/// Ends a `perf record` as Ctrl-C would, so that it writes its file.
async fn stop_perf(mut perf: Child) {
    if let Some(pid) = perf.id() {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), perf.wait()).await;
}

fn cores(before: &CpuReading, after: &CpuReading) -> CpuCores {
    let wall = after.at.duration_since(before.at).as_secs_f64().max(0.001);
    CpuCores {
        server: (after.server - before.server) / wall,
        origin: (after.origin - before.origin) / wall,
        redis: after
            .redis
            .zip(before.redis)
            .map(|(after, before)| (after - before) / wall),
        wrk: (after.wrk - before.wrk) / wall,
    }
}
