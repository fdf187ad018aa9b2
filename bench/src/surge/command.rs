//! `anteroom-bench surge`: one crowd at one site (a staging site, through
//! its anteroom or not), with a report.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anteroom_gateway::token::Keyring;
use clap::Args;

use super::args::{self, CrowdArgs, OutputArgs};
use super::{AdminRoom, Settings, chart};

#[derive(Debug, Clone, Args)]
pub struct SurgeArgs {
    /// The site's base URL, e.g. http://127.0.0.1:8080 (anteroom in front
    /// of staging). Load tests belong on machines you run.
    #[arg(long)]
    pub target: http::Uri,
    #[command(flatten)]
    pub crowd: CrowdArgs,
    /// The booking page everyone opens first.
    #[arg(long, default_value = "/prenota")]
    pub entry: String,
    /// The anteroom room's name, for status polls (default: the only room).
    #[arg(long)]
    pub room: Option<String>,
    /// Send a distinct X-Forwarded-For per visitor (set the gateway's
    /// limits.trusted_proxies to the bench's address).
    #[arg(long)]
    pub forwarded_for: bool,
    /// The site's statistics (`anteroom-bench origin`'s /_stats), sampled.
    #[arg(long, value_name = "URL")]
    pub origin_stats: Option<http::Uri>,
    /// The site's capacity in concurrent requests, for the report.
    #[arg(long)]
    pub origin_capacity: Option<u32>,
    /// Requests at once past which the site collapses, for the report.
    #[arg(long)]
    pub origin_collapse: Option<u32>,
    /// The site's throughput in visitors per second, for the ideal time.
    #[arg(long)]
    pub site_visitors_per_second: Option<f64>,
    /// Read each visitor's ticket with the keys in ANTEROOM_COOKIE_KEYS (the
    /// gateway's, comma-separated, as the gateway reads them) to count
    /// visitors let in ahead of an earlier ticket ("overtaken"). Needs --room.
    #[arg(long, requires = "room")]
    pub read_tickets: bool,
    /// The room at --target admits adaptively (its config has
    /// `[room.adaptive] enabled = true`): read its pace from the admin API
    /// (--admin) once a second for the report. Needs --room.
    #[arg(long, requires_all = ["admin", "room"])]
    pub adaptive: bool,
    /// The gateway's admin listener, e.g. http://127.0.0.1:9090, with the
    /// token in ANTEROOM_ADMIN_TOKEN when it has one.
    #[arg(long, value_name = "URL")]
    pub admin: Option<http::Uri>,
    /// How many times what the site can take the room at --target was
    /// sized (its capacity, admit_per_minute and the gateway's
    /// max_in_flight_upstream): recorded in the report. surge configures
    /// no gateway; lazio's --size-factor does.
    #[arg(
        long,
        value_name = "F",
        default_value_t = 1.0,
        value_parser = args::size_factor,
        allow_negative_numbers = true
    )]
    pub size_factor: f64,
    /// Stop this many seconds after opening.
    #[arg(long, default_value_t = 3600)]
    pub max_seconds: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn command(surge_args: SurgeArgs) -> ExitCode {
    if let Err(problem) = surge_args.crowd.validate() {
        eprintln!("anteroom-bench surge: {problem}");
        return ExitCode::from(2);
    }
    let target = &surge_args.target;
    if target.scheme_str() != Some("http") || target.authority().is_none() {
        eprintln!(
            "anteroom-bench surge: --target {target}: only http://host:port targets are supported"
        );
        return ExitCode::from(2);
    }
    if !surge_args.entry.starts_with('/') {
        eprintln!("anteroom-bench surge: --entry must be a path starting with /");
        return ExitCode::from(2);
    }
    if let Some(admin) = &surge_args.admin
        && (admin.scheme_str() != Some("http") || admin.authority().is_none())
    {
        eprintln!(
            "anteroom-bench surge: --admin {admin}: only http://host:port admin listeners are supported"
        );
        return ExitCode::from(2);
    }
    let mut options = surge_args.crowd.options(surge_args.target.clone());
    options.entry_path = surge_args.entry.clone();
    options.room = surge_args.room.clone();
    options.forwarded_for = surge_args.forwarded_for;
    if surge_args.read_tickets {
        let keys: Vec<String> = std::env::var("ANTEROOM_COOKIE_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(str::to_owned)
            .collect();
        if keys.is_empty() {
            eprintln!(
                "anteroom-bench surge: --read-tickets needs the gateway's keys in ANTEROOM_COOKIE_KEYS"
            );
            return ExitCode::from(2);
        }
        let room = surge_args.room.as_deref().expect("clap requires --room");
        options.ticket_reader = Some(super::ticket_reader(Keyring::new(&keys), room));
    }
    options.origin_stats = surge_args.origin_stats.clone();
    options.origin_capacity = surge_args.origin_capacity;
    options.origin_collapse = surge_args.origin_collapse;
    options.site_visitors_per_second = surge_args.site_visitors_per_second;
    options.settings = Some(Settings {
        adaptive: surge_args.adaptive,
        size_factor: surge_args.size_factor,
        capacity: None,
        admit_per_minute: None,
        max_in_flight_upstream: None,
        site_ahead: None,
    });
    if surge_args.adaptive {
        let admin = surge_args.admin.as_ref().expect("clap requires --admin");
        let room = surge_args.room.as_deref().expect("clap requires --room");
        let token = std::env::var("ANTEROOM_ADMIN_TOKEN")
            .ok()
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty());
        options.pace_from = Some(AdminRoom::new(
            &format!("http://{}", admin.authority().expect("checked above")),
            room,
            token,
        ));
    }
    options.max_duration = Duration::from_secs(surge_args.max_seconds);
    // The room at the target must open then: the run checks its published
    // opening before anyone is sent.
    options.event = surge_args.crowd.opens_in.and_then(|seconds| {
        surge_args
            .crowd
            .launch_event(SystemTime::now() + Duration::from_secs(seconds))
    });
    let report = match super::run(options).await {
        Ok(report) => report,
        Err(problem) => {
            eprintln!("anteroom-bench surge: {problem}");
            return ExitCode::FAILURE;
        }
    };
    let output = &surge_args.output;
    let written = (|| {
        if let Some(path) = &output.json {
            args::write_json(path, &args::report_json(&report))?;
        }
        let chart = output.chart_path();
        if let Some(path) = &chart {
            chart::draw(path, &[("surge", &report)])?;
        }
        if let Some(path) = &output.markdown {
            let mut text = report.markdown("Surge");
            text.push_str(&args::chart_link(chart.as_deref()));
            args::write(path, &text)?;
        }
        Ok::<(), String>(())
    })();
    println!("{}", report.markdown("Surge"));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("anteroom-bench surge: {problem}");
            ExitCode::FAILURE
        }
    }
}
