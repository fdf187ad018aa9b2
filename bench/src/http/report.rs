//! The figures of a run, as a Markdown report and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::wrk::Figures;

/// What is measured, and against what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// An admitted visitor's requests proxied upstream; nginx `proxy_pass`.
    Proxy,
    /// A waiting visitor polling `/_anteroom/status`; nginx `return 200`.
    Status,
    /// New arrivals, each taking a ticket, in a room nobody waits in.
    ArrivalsEmpty,
    /// New arrivals behind a queue of `--queued` visitors.
    ArrivalsQueued,
    /// A client over its rate limit: `429`; nginx `limit_req`.
    Limit,
}

impl Case {
    pub fn title(self) -> &'static str {
        match self {
            Case::Proxy => "proxy: admitted visitor → upstream",
            Case::Status => "status: waiting visitor's poll",
            Case::ArrivalsEmpty => "arrivals, empty queue",
            Case::ArrivalsQueued => "arrivals, long queue",
            Case::Limit => "limit: 429 over the rate limit",
        }
    }

    pub fn goal(self) -> Goal {
        match self {
            Case::Proxy => Goal::Ratio(1.0),
            Case::Status => Goal::Ratio(0.6),
            Case::ArrivalsEmpty | Case::ArrivalsQueued => Goal::PerSecond(40_000.0),
            Case::Limit => Goal::Ratio(0.8),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// anteroom's requests/s at least this share of nginx's, same run.
    Ratio(f64),
    /// anteroom's requests/s at least this.
    PerSecond(f64),
}

impl Goal {
    fn text(self) -> String {
        match self {
            Goal::Ratio(ratio) => format!("≥ {ratio:.1}× nginx"),
            Goal::PerSecond(rate) => format!("≥ {}/s", thousands(rate)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    Nginx,
    Anteroom,
}

/// CPU used during a measured run, in cores (CPU seconds / wall seconds).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuCores {
    /// The server measured: nginx's master and workers, or the gateway.
    pub server: f64,
    /// The bench process, i.e. the in-process origin.
    pub origin: f64,
    pub redis: Option<f64>,
    pub wrk: f64,
}

/// One measured wrk run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub case: Case,
    pub server: Server,
    pub round: u32,
    pub url: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// Arrivals: visitors waiting in the room when the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_at_start: Option<u64>,
    pub cpu_cores: CpuCores,
    /// The server's CPU time per response, in microseconds: what a request
    /// costs, whatever share of the machine the server got.
    pub server_cpu_us_per_request: f64,
}

/// Redis memory per waiting visitor, from filling the long queue.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct QueueMemory {
    pub used_memory_before: u64,
    pub used_memory_after: u64,
    pub visitors_added: u64,
    pub bytes_per_visitor: f64,
    pub fill_seconds: f64,
}

/// Everything the report says.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub command: String,
    pub cpus: usize,
    pub wrk: String,
    pub nginx: String,
    pub redis: String,
    pub rounds: u32,
    pub runs: Vec<Run>,
    pub queue_memory: Option<QueueMemory>,
    pub summary: Vec<Summary>,
}

/// One case over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub case: Case,
    pub goal: Goal,
    pub nginx_requests_per_second: Option<f64>,
    pub anteroom_requests_per_second: f64,
    /// Mean over the rounds of anteroom / nginx within the round.
    pub ratio: Option<f64>,
    pub min_ratio: Option<f64>,
    /// Mean server CPU time per response, in microseconds.
    pub nginx_cpu_us_per_request: Option<f64>,
    pub anteroom_cpu_us_per_request: f64,
    pub met: bool,
}

/// Means and ratios per case, in the order the cases were run.
pub fn summarise(runs: &[Run]) -> Vec<Summary> {
    let mut cases: Vec<Case> = Vec::new();
    for run in runs {
        if !cases.contains(&run.case) {
            cases.push(run.case);
        }
    }
    cases
        .into_iter()
        .map(|case| {
            let of = |server: Server| -> Vec<&Run> {
                runs.iter()
                    .filter(|run| run.case == case && run.server == server)
                    .collect()
            };
            let (nginx, anteroom) = (of(Server::Nginx), of(Server::Anteroom));
            let ratios: Vec<f64> = anteroom
                .iter()
                .filter_map(|run| {
                    let twin = nginx.iter().find(|other| other.round == run.round)?;
                    Some(run.figures.requests_per_second / twin.figures.requests_per_second)
                })
                .collect();
            let anteroom_rps = mean(anteroom.iter().map(|run| run.figures.requests_per_second));
            let ratio = (!ratios.is_empty()).then(|| mean(ratios.iter().copied()));
            let met = match case.goal() {
                Goal::Ratio(goal) => ratio.is_some_and(|ratio| ratio >= goal),
                Goal::PerSecond(goal) => anteroom_rps >= goal,
            };
            Summary {
                case,
                goal: case.goal(),
                nginx_requests_per_second: (!nginx.is_empty())
                    .then(|| mean(nginx.iter().map(|run| run.figures.requests_per_second))),
                anteroom_requests_per_second: anteroom_rps,
                ratio,
                min_ratio: ratios.iter().copied().reduce(f64::min),
                nginx_cpu_us_per_request: (!nginx.is_empty())
                    .then(|| mean(nginx.iter().map(|run| run.server_cpu_us_per_request))),
                anteroom_cpu_us_per_request: mean(
                    anteroom.iter().map(|run| run.server_cpu_us_per_request),
                ),
                met,
            }
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), value| {
        (sum + value, count + 1)
    });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// The report as Markdown.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### anteroom-bench http, {}\n", report.date);
    let _ = writeln!(out, "`{}`\n", report.command);
    let _ = writeln!(
        out,
        "{} CPUs shared by wrk, the server, the origin and Redis. wrk {}, nginx {}, Redis {}. \
         Rounds: {}, interleaved nginx then anteroom, each run after a warm-up.\n",
        report.cpus, report.wrk, report.nginx, report.redis, report.rounds
    );
    let _ = writeln!(
        out,
        "| scenario | goal | nginx req/s | anteroom req/s | anteroom / nginx | met | server CPU µs/request, nginx / anteroom |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|---:|");
    for summary in &report.summary {
        let ratio = match (summary.ratio, summary.min_ratio) {
            (Some(ratio), Some(min)) => format!("{ratio:.2}× (min {min:.2}×)"),
            _ => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {:.1} |",
            case_title(summary.case, &report.runs),
            summary.goal.text(),
            summary
                .nginx_requests_per_second
                .map_or("—".to_owned(), thousands),
            thousands(summary.anteroom_requests_per_second),
            ratio,
            if summary.met { "yes" } else { "**no**" },
            summary
                .nginx_cpu_us_per_request
                .map_or("—".to_owned(), |us| format!("{us:.1}")),
            summary.anteroom_cpu_us_per_request,
        );
    }
    let _ = writeln!(
        out,
        "\nEvery run (latency from `wrk --latency`; CPU in cores: server / origin / Redis / wrk):\n"
    );
    let _ = writeln!(
        out,
        "| scenario | round | server | req/s | p50 ms | p99 ms | responses | CPU |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---|");
    for run in &report.runs {
        let queued = run.queued_at_start.map_or(String::new(), |queued| {
            format!(" ({} queued)", thousands(queued as f64))
        });
        let cpu = &run.cpu_cores;
        let _ = writeln!(
            out,
            "| {}{queued} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} / {:.2} / {} / {:.2} |",
            run.case.title(),
            run.round,
            match run.server {
                Server::Nginx => "nginx",
                Server::Anteroom => "anteroom",
            },
            thousands(run.figures.requests_per_second),
            run.figures.p50_ms,
            run.figures.p99_ms,
            thousands(run.figures.requests as f64),
            cpu.server,
            cpu.origin,
            cpu.redis
                .map_or("—".to_owned(), |redis| format!("{redis:.2}")),
            cpu.wrk,
        );
    }
    if let Some(memory) = &report.queue_memory {
        let _ = writeln!(
            out,
            "\nRedis memory per waiting visitor: `used_memory` {} → {} bytes while {} visitors joined the queue \
             (in {:.0} s): {:.3} bytes each.",
            thousands(memory.used_memory_before as f64),
            thousands(memory.used_memory_after as f64),
            thousands(memory.visitors_added as f64),
            memory.fill_seconds,
            memory.bytes_per_visitor
        );
    }
    out
}

/// The arrivals cases name the queue they ran behind.
fn case_title(case: Case, runs: &[Run]) -> String {
    let queued: Vec<u64> = runs
        .iter()
        .filter(|run| run.case == case)
        .filter_map(|run| run.queued_at_start)
        .collect();
    match (queued.iter().min(), queued.iter().max()) {
        (Some(low), Some(high)) if case == Case::ArrivalsQueued && low == high => {
            format!("arrivals, {} queued", thousands(*low as f64))
        }
        (Some(low), Some(high)) if case == Case::ArrivalsQueued => format!(
            "arrivals, {}–{} queued",
            thousands(*low as f64),
            thousands(*high as f64)
        ),
        (Some(_), Some(_)) if case == Case::ArrivalsEmpty => "arrivals, 0 queued".to_owned(),
        _ => case.title().to_owned(),
    }
}

/// `12345.6` → `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < -0.5 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    utc_date(seconds)
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (Howard Hinnant's civil-from-days).
fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let minutes_of_day = (unix_seconds % 86_400) / 60;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes_of_day / 60,
        minutes_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_and_numbers() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400 + 3_660), "2000-02-29 01:01 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(12.0), "12");
    }

    fn run(case: Case, server: Server, round: u32, rate: f64) -> Run {
        Run {
            case,
            server,
            round,
            url: String::new(),
            figures: Figures {
                requests_per_second: rate,
                ..Figures::default()
            },
            queued_at_start: None,
            cpu_cores: CpuCores::default(),
            server_cpu_us_per_request: 0.0,
        }
    }

    #[test]
    fn ratios_are_taken_within_a_round() {
        let runs = [
            run(Case::Limit, Server::Nginx, 1, 100.0),
            run(Case::Limit, Server::Anteroom, 1, 90.0),
            run(Case::Limit, Server::Nginx, 2, 50.0),
            run(Case::Limit, Server::Anteroom, 2, 50.0),
            run(Case::ArrivalsEmpty, Server::Anteroom, 1, 41_000.0),
        ];
        let summary = summarise(&runs);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].ratio, Some(0.95));
        assert_eq!(summary[0].min_ratio, Some(0.9));
        assert!(summary[0].met);
        assert_eq!(summary[1].ratio, None);
        assert!(summary[1].met);
    }
}
