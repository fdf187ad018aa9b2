//! `anteroom-bench lazio`: the replay. The same surge twice against a
//! simulated site that melts like the real one: straight at it, then
//! through anteroom (embedded, or on Redis when given), side by side.
//!
//! The gateway is configured from the site's measured limits, as
//! `bench/README.md` tells an operator to do: at most `capacity` requests
//! at the site at once (`max_in_flight_upstream`), and visitors let in at a
//! pace a little under what the site can serve ([`sizing`]). `--size-factor`
//! multiplies that; `--adaptive` lets the room's pace follow the site's
//! health, and the report follows the pace.

mod sizing;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use rand::Rng;
use serde_json::json;

use anteroom_config::schedule;
use anteroom_gateway::token::Keyring;
use anteroom_gateway::{Gateway, Running};

use crate::config_file::{
    Buffer, BufferMethod, ConfigFile, Limits, Room, Secrets, Store, StoreBackend,
};
use crate::origin::{self, DegradeArgs, Melt, OriginOptions, SiteThread};
use crate::surge::args::{self, CrowdArgs, OutputArgs};
use crate::surge::{self, AdminRoom, Report, Settings, SurgeOptions, TicketReader, chart};

pub use sizing::{SiteLimits, Sizing};

/// Requests a visitor's journey makes at the site, on average: the booking
/// page, half the time the home page, the slot list, the booking.
const REQUESTS_PER_JOURNEY: f64 = 3.5;

/// The gateway's first moments before the crowd is sent (its room takes
/// its first steps).
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Args)]
pub struct LazioArgs {
    #[command(flatten)]
    pub crowd: CrowdArgs,
    /// Requests the simulated site serves well at once.
    #[arg(long, default_value_t = 50)]
    pub origin_capacity: u32,
    /// Its service time per request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub service_ms: u64,
    /// Requests at once past which it collapses (default: twice capacity).
    #[arg(long)]
    pub origin_collapse: Option<u32>,
    /// A request that would take longer is answered 503 then.
    #[arg(long, default_value_t = 10_000)]
    pub origin_timeout_ms: u64,
    /// The site loses capacity during each run (times from the site's
    /// start, which each run restarts), and may get it back.
    #[command(flatten)]
    pub degrade: DegradeArgs,
    /// Let visitors in at this fraction of what the site can serve.
    #[arg(long, default_value_t = 0.9)]
    pub headroom: f64,
    /// The room's admission follows the site's health (`[room.adaptive]
    /// enabled = true`; its admit_per_minute is the ceiling). The report
    /// reads its pace from the admin API once a second.
    #[arg(long)]
    pub adaptive: bool,
    /// The room's capacity and admit_per_minute and the gateway's
    /// max_in_flight_upstream set F times what the site can take (each
    /// rounded down, at least 1): 10 is a room ten times too large.
    #[arg(
        long,
        value_name = "F",
        default_value_t = 1.0,
        value_parser = args::size_factor,
        allow_negative_numbers = true
    )]
    pub size_factor: f64,
    /// The waiting page's longest interval between checks, in seconds.
    #[arg(long, default_value_t = 5)]
    pub refresh_seconds: u64,
    /// Bookings go through a buffer (202 and a receipt), drained into the
    /// site at its pace.
    #[arg(long)]
    pub buffer: bool,
    /// Run the gateway on this Redis instead of the embedded memory store.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Run the simulated site's thread at the crowd's and the gateway's
    /// priority. By default it runs ahead of them (nice -10, which needs
    /// root or CAP_SYS_NICE), as a site on machines of its own would: on a
    /// machine with few cores the crowd's polling otherwise slows the site
    /// itself, and the rehearsal measures the CPU it shares, not the room.
    #[arg(long)]
    pub site_shares_cpu: bool,
    /// Only the run through anteroom (skip the direct one).
    #[arg(long)]
    pub only_anteroom: bool,
    /// Stop each run this many seconds after opening (default: three times
    /// the ideal time plus the arrival span plus a minute).
    #[arg(long)]
    pub max_seconds: Option<u64>,
    /// Stop the direct run sooner: it shows the site melting within
    /// seconds, and its visitors retry until they give up.
    #[arg(long)]
    pub direct_max_seconds: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The two reports.
#[derive(Debug, Clone)]
pub struct Replay {
    pub direct: Option<Report>,
    pub anteroom: Report,
}

impl Replay {
    pub fn json(&self) -> serde_json::Value {
        json!({
            "direct": self.direct.as_ref().map(args::report_json),
            "anteroom": args::report_json(&self.anteroom),
        })
    }

    /// The two side by side, as a Markdown table (the direct column is
    /// dashes when it did not run).
    pub fn table(&self) -> String {
        let direct = self.direct.as_ref().map(Report::rows);
        let mut out =
            String::from("| | straight at the site | through anteroom |\n|---|---|---|\n");
        // By name: a run has rows the other lacks (the gateway's, the pace's,
        // a capacity change it lasted until).
        for (name, anteroom) in self.anteroom.rows() {
            let direct = direct
                .iter()
                .flatten()
                .find(|row| row.0 == name)
                .map_or("–", |row| row.1.as_str());
            out.push_str(&format!("| {name} | {direct} | {anteroom} |\n"));
        }
        out
    }
}

/// The command: runs the replay, prints the table, writes the reports.
pub async fn command(args: LazioArgs) -> ExitCode {
    if let Err(problem) = validate(&args) {
        eprintln!("anteroom-bench lazio: {problem}");
        return ExitCode::from(2);
    }
    match replay(&args).await {
        Ok(replay) => match write_outputs(&args.output, &replay) {
            Ok(()) => {
                println!("{}", replay.table());
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("anteroom-bench lazio: {problem}");
                ExitCode::FAILURE
            }
        },
        Err(problem) => {
            eprintln!("anteroom-bench lazio: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn validate(args: &LazioArgs) -> Result<(), String> {
    args.crowd.validate()?;
    if args.origin_capacity == 0 {
        return Err("--origin-capacity must be at least 1".to_owned());
    }
    if args.service_ms == 0 {
        return Err(
            "--service-ms must be at least 1 (the site's throughput is capacity / service time)"
                .to_owned(),
        );
    }
    args.degrade
        .check(Some(args.origin_capacity))
        .map_err(|problem| problem.to_string())?;
    if !(args.headroom > 0.0 && args.headroom <= 1.0) {
        return Err(format!(
            "--headroom must be above 0 and at most 1, not {}",
            args.headroom
        ));
    }
    if !(1..=60).contains(&args.refresh_seconds) {
        return Err(format!(
            "--refresh-seconds must be from 1 to 60, not {}",
            args.refresh_seconds
        ));
    }
    Ok(())
}

fn write_outputs(output: &OutputArgs, replay: &Replay) -> Result<(), String> {
    if let Some(path) = &output.json {
        args::write_json(path, &replay.json())?;
    }
    let chart = output.chart_path();
    if let Some(path) = &chart {
        let mut runs = Vec::new();
        if let Some(direct) = &replay.direct {
            runs.push(("straight at the site", direct));
        }
        runs.push(("through anteroom", &replay.anteroom));
        chart::draw(path, &runs)?;
    }
    if let Some(path) = &output.markdown {
        let mut text = format!("# Opening day, replayed\n\n{}\n", replay.table());
        text.push_str(&args::chart_link(chart.as_deref()));
        if let Some(direct) = &replay.direct {
            text.push('\n');
            text.push_str(&direct.markdown("Straight at the site"));
        }
        text.push('\n');
        text.push_str(&replay.anteroom.markdown("Through anteroom"));
        args::write(path, &text)?;
    }
    Ok(())
}

/// The site's throughput in visitors per second.
pub fn site_visitors_per_second(capacity: u32, service: Duration) -> f64 {
    f64::from(capacity) / service.as_secs_f64() / REQUESTS_PER_JOURNEY
}

/// Runs the replay: direct (unless skipped), then through anteroom.
pub async fn replay(args: &LazioArgs) -> Result<Replay, String> {
    let service = Duration::from_millis(args.service_ms);
    let rate = site_visitors_per_second(args.origin_capacity, service);
    let ideal = args.crowd.visitors as f64 / rate;
    let max_seconds = args
        .max_seconds
        .unwrap_or_else(|| (3.0 * ideal + args.crowd.arrival_span_seconds() + 60.0).ceil() as u64);
    // A launch event has nothing to compare straight at the site: a site
    // without a waiting room has no pre-queue to draw.
    let direct = if args.only_anteroom || args.crowd.opens_in.is_some() {
        if !args.only_anteroom {
            eprintln!("lazio: --opens-in: only the run through anteroom");
        }
        None
    } else {
        let site = start_site(args)?;
        let seconds = args.direct_max_seconds.unwrap_or(max_seconds);
        let options = surge_options(site.addr, args, rate, seconds, site.addr);
        eprintln!(
            "lazio: {} visitors straight at the site",
            args.crowd.visitors
        );
        let report = surge::run(options).await;
        site.stop().await;
        Some(report?)
    };
    let site = start_site(args)?;
    let front = Front::start(args, site.addr, rate).await?;
    let mut options = surge_options(site.addr, args, rate, max_seconds, front.addr);
    options.settings = Some(Settings {
        adaptive: args.adaptive,
        size_factor: args.size_factor,
        capacity: Some(front.sizing.capacity),
        admit_per_minute: Some(front.sizing.admit_per_minute),
        max_in_flight_upstream: Some(front.sizing.max_in_flight_upstream),
        site_ahead: Some(!args.site_shares_cpu),
    });
    // The replay's gateway has no admin token: its reads are open.
    options.pace_from = args.adaptive.then(|| {
        AdminRoom::new(
            &format!("http://{}", front.gateway.admin_addr()),
            &front.room,
            None,
        )
    });
    options.room = Some(front.room.clone());
    options.forwarded_for = true;
    options.ticket_reader = Some(front.ticket_reader());
    options.event = front
        .opens_at
        .and_then(|opens_at| args.crowd.launch_event(opens_at));
    eprintln!("lazio: {} visitors through anteroom", args.crowd.visitors);
    let report = surge::run(options).await;
    front.stop().await;
    site.stop().await;
    Ok(Replay {
        direct,
        anteroom: report?,
    })
}

/// The simulated site, melting as the flags say, in-process on a thread
/// of its own.
fn start_site(args: &LazioArgs) -> Result<origin::Running, String> {
    let degradation = args
        .degrade
        .check(Some(args.origin_capacity))
        .map_err(|problem| problem.to_string())?;
    let options = OriginOptions {
        service_time: Duration::from_millis(args.service_ms),
        // Every visitor can book: the replay is about getting there.
        slot_capacity: u32::try_from(args.crowd.visitors.div_ceil(4) + 1).unwrap_or(u32::MAX),
        melt: Some(Melt {
            capacity: args.origin_capacity,
            collapse: collapse(args),
            timeout: Duration::from_millis(args.origin_timeout_ms),
        }),
        degradation,
    };
    // On a thread of its own: its latency is the site's, not the crowd's
    // and the gateway's queues (the adaptive controller reads it).
    let thread = if args.site_shares_cpu {
        SiteThread::Shared
    } else {
        SiteThread::Ahead
    };
    origin::start_on_own_thread(options, thread)
        .map_err(|error| format!("cannot start the site: {error}"))
}

/// Requests at once past which the site collapses (at its full capacity).
fn collapse(args: &LazioArgs) -> u32 {
    args.origin_collapse
        .unwrap_or(args.origin_capacity.saturating_mul(2))
}

/// The crowd's options for `target`, watching `site`.
fn surge_options(
    site: SocketAddr,
    args: &LazioArgs,
    rate: f64,
    max_seconds: u64,
    target: SocketAddr,
) -> SurgeOptions {
    let target = format!("http://{target}")
        .parse()
        .expect("an address is a URI");
    let mut options = args.crowd.options(target);
    options.origin_stats = Some(
        format!("http://{}/_stats", site)
            .parse()
            .expect("an address is a URI"),
    );
    options.origin_capacity = Some(args.origin_capacity);
    options.origin_collapse = Some(collapse(args));
    options.site_visitors_per_second = Some(rate);
    options.max_duration = Duration::from_secs(max_seconds);
    options
}

/// The gateway, in-process.
struct Front {
    addr: SocketAddr,
    room: String,
    /// With --opens-in: when its room opens.
    opens_at: Option<SystemTime>,
    keys: Keyring,
    /// What it was configured with.
    sizing: Sizing,
    gateway: Running,
}

impl Front {
    async fn start(args: &LazioArgs, site: SocketAddr, rate: f64) -> Result<Front, String> {
        let mut rng = rand::rng();
        // A room of its own, so a shared Redis's other rooms are untouched
        // and a second replay starts from an empty line.
        let room = format!("lazio_{:08x}", rng.random::<u32>());
        let secret: String = (0..48)
            .map(|_| char::from(b'a' + rng.random_range(0..26)))
            .collect();
        let sizing = Sizing::hand_tuned(SiteLimits {
            capacity: args.origin_capacity,
            visitors_per_second: rate,
            headroom: args.headroom,
            refresh_seconds: args.refresh_seconds,
            buffer: args.buffer,
        })
        .scaled(args.size_factor);
        let backend = match &args.redis_url {
            Some(url) => StoreBackend::redis(url.clone()),
            None => StoreBackend::Memory,
        };
        let buffers = if args.buffer {
            vec![Buffer {
                method: Some(BufferMethod::Post),
                max_in_flight: Some(sizing.buffer_in_flight),
                ..Buffer::new(
                    "bookings",
                    &room,
                    "/api/bookings",
                    fits_u32("drain_per_second", sizing.drain_per_second)?,
                )
            }]
        } else {
            Vec::new()
        };
        let schedule = args
            .crowd
            .opens_in
            .map(|seconds| LaunchSchedule::from_now(Duration::from_secs(seconds) + SETTLE));
        let mut room_table = Room::new(
            &room,
            &["/"],
            fits_u32("capacity", sizing.capacity)?,
            fits_u32("admit_per_minute", sizing.admit_per_minute)?,
        )
        .session_seconds(120)
        .arrival_seconds(60)
        .refresh_seconds(args.refresh_seconds);
        if let Some(schedule) = &schedule {
            room_table.pre_queue_from = Some(schedule.pre_queue_from.clone());
            room_table.opens_at = Some(schedule.opens_at_text.clone());
        }
        if args.adaptive {
            // The gateway's floor (min(60, admit_per_minute)).
            room_table = room_table.adaptive(None);
        }
        let file = ConfigFile {
            upstream_timeout_seconds: Some(60),
            shutdown_grace_seconds: Some(2),
            store: Store {
                backend,
                on_error: None,
                ..Store::default()
            },
            secrets: Secrets {
                cookie_keys: vec![secret.clone()],
                admin_token: None,
            },
            limits: Limits::default()
                .trusted_proxies(&["127.0.0.1/32"])
                .max_in_flight_upstream(sizing.max_in_flight_upstream)
                .max_connections(args.crowd.connections as u64 + 1000),
            rooms: vec![room_table],
            buffers,
            // The replay binds the gateway's listeners itself.
            ..ConfigFile::new(format!("http://{site}"))
        };
        let config = file.validate().map_err(|error| {
            let hint = if args.adaptive && error.to_string().contains("adaptive") {
                " (--adaptive needs a gateway built with adaptive admission)"
            } else {
                ""
            };
            format!("the generated gateway config is invalid: {error}{hint}")
        })?;
        let gateway = Gateway::new(config)
            .map_err(|error| format!("the gateway does not start: {error}"))?
            .spawn_on_loopback()
            .await
            .map_err(|error| format!("cannot listen for the gateway: {error}"))?;
        // Let the room take its first steps so the door has figures.
        tokio::time::sleep(SETTLE).await;
        Ok(Front {
            addr: gateway.addr(),
            room,
            opens_at: schedule.map(|schedule| schedule.opens_at),
            keys: Keyring::new(&[secret]),
            sizing,
            gateway,
        })
    }

    /// Reads ticket numbers from visitors' cookies with the gateway's key.
    fn ticket_reader(&self) -> TicketReader {
        surge::ticket_reader(self.keys.clone(), &self.room)
    }

    async fn stop(self) {
        if let Err(error) = self.gateway.stop().await {
            eprintln!("lazio: the gateway stopped with an error: {error}");
        }
    }
}

/// A launch event's times for the generated room: the pre-queue from the
/// current second, the opening on the whole second at least `opens_in`
/// from now (the gateway shows times to the second).
struct LaunchSchedule {
    pre_queue_from: String,
    opens_at: SystemTime,
    opens_at_text: String,
}

impl LaunchSchedule {
    fn from_now(opens_in: Duration) -> LaunchSchedule {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970");
        let from = now.as_secs();
        let opens = (now + opens_in).as_secs_f64().ceil() as u64;
        let utc = schedule::time_zone("UTC").expect("UTC is in the tz database");
        LaunchSchedule {
            pre_queue_from: schedule::format_instant(from * 1000, &utc),
            opens_at: UNIX_EPOCH + Duration::from_secs(opens),
            opens_at_text: schedule::format_instant(opens * 1000, &utc),
        }
    }
}

/// A figure of the generated config that the file holds as a 32-bit number.
fn fits_u32(key: &str, value: u64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| {
        format!("the generated gateway config is invalid: {key} = {value} is too large")
    })
}
