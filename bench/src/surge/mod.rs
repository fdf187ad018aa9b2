//! `anteroom-bench surge`: an opening-day crowd.
//!
//! N visitors arrive on a curve (all at opening time with jitter, a ramp,
//! or Poisson at a rate). Each is an HTTP client with its own cookies that
//! makes the real journey ([`journey`]); the run keeps what each saw
//! ([`VisitorRecord`]) and turns it into a [`report::Report`].

pub mod args;
pub mod chart;
mod client;
pub mod command;
pub mod event;
pub mod goals;
mod journey;
pub mod order;
pub mod pace;
pub mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Uri;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use client::Jar;
pub use event::{EventFigures, LaunchEvent};
pub use journey::{TicketReader, ticket_reader};
pub use pace::AdminRoom;
pub use report::{OriginFigures, Report, Settings};

/// When visitors arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// Everyone at opening time, spread uniformly over `jitter`.
    Opening { jitter: Duration },
    /// A rising crowd: the arrival rate grows linearly from zero over `over`.
    Ramp { over: Duration },
    /// Poisson arrivals at `per_second`.
    Poisson { per_second: f64 },
}

impl Arrivals {
    /// Arrival times, in milliseconds after opening, in order.
    fn schedule(&self, visitors: u64, rng: &mut SmallRng) -> Vec<u64> {
        let mut times: Vec<u64> = match *self {
            Arrivals::Opening { jitter } => {
                let span = jitter.as_millis() as u64;
                (0..visitors)
                    .map(|_| {
                        if span == 0 {
                            0
                        } else {
                            rng.random_range(0..span)
                        }
                    })
                    .collect()
            }
            Arrivals::Ramp { over } => {
                // A rate rising linearly: the i-th arrival is at over × √(i/N).
                let span = over.as_secs_f64() * 1000.0;
                (0..visitors)
                    .map(|i| (span * (i as f64 / visitors as f64).sqrt()) as u64)
                    .collect()
            }
            Arrivals::Poisson { per_second } => {
                let mut at = 0.0_f64;
                (0..visitors)
                    .map(|_| {
                        at += -(1.0 - rng.random::<f64>()).ln() / per_second.max(1e-9) * 1000.0;
                        at as u64
                    })
                    .collect()
            }
        };
        times.sort_unstable();
        times
    }
}

/// What a surge does.
#[derive(Clone)]
pub struct SurgeOptions {
    /// The site's base URL (through anteroom, or the site itself).
    pub target: Uri,
    pub visitors: u64,
    pub arrivals: Arrivals,
    /// The booking page everyone opens first.
    pub entry_path: String,
    /// The waiting room's name, for status polls (`None`: the gateway's
    /// only room).
    pub room: Option<String>,
    /// Fraction of visitors who abandon while waiting.
    pub abandon: f64,
    /// Their average patience.
    pub abandon_after: Duration,
    /// Fraction of visitors who reload every few seconds instead of
    /// waiting for the page to move, and retry errors at once.
    pub impatient: f64,
    /// Average pause between steps inside the site.
    pub think: Duration,
    /// Requests in flight at once, all visitors together.
    pub connections: usize,
    /// How long a visitor waits for an answer.
    pub request_timeout: Duration,
    /// Errors after which a visitor gives up.
    pub give_up_after_errors: u32,
    /// The run ends this long after opening, finished or not.
    pub max_duration: Duration,
    /// Send a distinct `X-Forwarded-For` per visitor (the gateway must trust
    /// the bench's address), so per-client limits see people, not the bench.
    pub forwarded_for: bool,
    /// Reads a visitor's ticket number from their cookies, when the bench
    /// knows the gateway's keys: measures admission order exactly.
    pub ticket_reader: Option<TicketReader>,
    /// The site's `/_stats` (the simulated origin), sampled during the run.
    pub origin_stats: Option<Uri>,
    /// The site's capacity (concurrent requests) and its throughput in
    /// visitors per second, for the report's "ideal" figures.
    pub origin_capacity: Option<u32>,
    pub site_visitors_per_second: Option<f64>,
    /// Requests at once past which the site collapses, for the report.
    pub origin_collapse: Option<u32>,
    /// An adaptive room's admin figures, read once a second for its pace.
    pub pace_from: Option<AdminRoom>,
    /// How the gateway was set up, for the report.
    pub settings: Option<Settings>,
    /// The room opens during the run, with a pre-queue from its start.
    pub event: Option<LaunchEvent>,
    pub seed: u64,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl SurgeOptions {
    /// Defaults for `visitors` at `target`.
    pub fn new(target: Uri, visitors: u64) -> SurgeOptions {
        SurgeOptions {
            target,
            visitors,
            arrivals: Arrivals::Opening {
                jitter: Duration::from_secs(10),
            },
            entry_path: "/prenota".to_owned(),
            room: None,
            abandon: 0.0,
            abandon_after: Duration::from_secs(120),
            impatient: 0.0,
            think: Duration::from_millis(500),
            connections: 1000,
            request_timeout: Duration::from_secs(30),
            give_up_after_errors: 20,
            max_duration: Duration::from_secs(3600),
            forwarded_for: false,
            ticket_reader: None,
            origin_stats: None,
            origin_capacity: None,
            site_visitors_per_second: None,
            origin_collapse: None,
            pace_from: None,
            settings: None,
            event: None,
            seed: 1,
            progress: false,
        }
    }
}

/// How a visitor's journey ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JourneyEnd {
    /// The site answered their booking (booked, or every slot full).
    Served,
    /// Left the line before their turn.
    Abandoned,
    /// Too many errors.
    GaveUp,
    /// Still going when the run ended.
    Unfinished,
}

/// What one visitor saw. Times are milliseconds after opening.
#[derive(Debug, Clone)]
pub struct VisitorRecord {
    /// Arrival order (0 first).
    pub index: u64,
    pub scheduled_ms: u64,
    /// When the site's own booking page first reached them.
    pub admitted_ms: Option<u64>,
    /// When they last sent a request that was answered "wait".
    pub last_waiting_ms: Option<u64>,
    /// When the site answered their booking.
    pub served_ms: Option<u64>,
    pub ticket: Option<u64>,
    /// The last `ticket` and `draw_place` their status JSON showed (a
    /// pre-queue ticket's number, and its place once drawn).
    pub shown_ticket: Option<u64>,
    pub shown_draw_place: Option<u64>,
    pub waited: bool,
    pub booked: bool,
    /// The booking went through a buffer (`202` and a receipt).
    pub buffered: bool,
    pub errors: u32,
    pub rate_limited: u32,
    pub requests: u32,
    /// How the journey ended.
    pub end: JourneyEnd,
}

impl VisitorRecord {
    fn new(index: u64, scheduled_ms: u64) -> VisitorRecord {
        VisitorRecord {
            index,
            scheduled_ms,
            admitted_ms: None,
            last_waiting_ms: None,
            served_ms: None,
            ticket: None,
            shown_ticket: None,
            shown_draw_place: None,
            waited: false,
            booked: false,
            buffered: false,
            errors: 0,
            rate_limited: 0,
            requests: 0,
            end: JourneyEnd::Unfinished,
        }
    }
}

/// Live counts, for the progress bar and the report.
#[derive(Debug, Default)]
pub struct Counters {
    pub arrived: AtomicU64,
    pub waiting: AtomicU64,
    pub inside: AtomicU64,
    pub served: AtomicU64,
    pub abandoned: AtomicU64,
    pub gave_up: AtomicU64,
    pub errors: AtomicU64,
    pub errors_5xx: AtomicU64,
    pub errors_other: AtomicU64,
    pub errors_no_answer: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Visitors whose session ended inside and who were sent back in line.
    pub sent_back: AtomicU64,
}

/// What every visitor of one run shares.
pub(crate) struct Crowd {
    options: SurgeOptions,
    client: client::Client,
    counters: Counters,
    start: Instant,
    deadline: Instant,
    /// Makes idempotency keys unique to the run.
    run_id: String,
}

impl Crowd {
    fn ms_since_start(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// Runs one surge and reports on it.
pub async fn run(options: SurgeOptions) -> Result<Report, String> {
    let client = client::Client::new(
        &options.target,
        options.connections,
        options.request_timeout,
    )?;
    let mut rng = SmallRng::seed_from_u64(options.seed);
    // A launch event: the room's draw is read before anyone comes (its
    // commitment), and must still be pending and open when the event says.
    let before = match &options.event {
        Some(launch) => {
            let draw = event::public_draw(&options.target, options.room.as_deref()).await?;
            event::check_before(launch, &draw)?;
            Some(draw)
        }
        None => None,
    };
    let opens_in_ms = options.event.as_ref().map(event::opens_in_ms);
    let schedule = match (&options.event, opens_in_ms) {
        (Some(launch), Some(opens_in_ms)) => event::schedule(
            &options.arrivals,
            options.visitors,
            launch.pre_queue_share,
            opens_in_ms,
            &mut rng,
        ),
        _ => options.arrivals.schedule(options.visitors, &mut rng),
    };
    let start = Instant::now();
    let crowd = Arc::new(Crowd {
        client,
        counters: Counters::default(),
        start,
        deadline: start + options.max_duration,
        run_id: format!("surge-{}-{:x}", std::process::id(), rng.random::<u64>()),
        options,
    });
    let sampler = crowd.options.origin_stats.clone().map(|url| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        (
            stop,
            tokio::spawn(report::sample_origin(url, crowd.start, stopped)),
        )
    });
    let pace_sampler = crowd.options.pace_from.clone().map(|room| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        (
            stop,
            tokio::spawn(pace::sample_pace(
                room,
                pace::SAMPLE_EVERY,
                crowd.start,
                stopped,
            )),
        )
    });
    let progress = crowd
        .options
        .progress
        .then(|| tokio::spawn(progress_bar(crowd.clone())));

    let mut visitors = JoinSet::new();
    for (index, at_ms) in schedule.iter().copied().enumerate() {
        let at = start + Duration::from_millis(at_ms);
        if at >= crowd.deadline {
            break;
        }
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
        let crowd = crowd.clone();
        let visitor_rng = SmallRng::seed_from_u64(
            crowd.options.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        crowd.counters.arrived.fetch_add(1, Ordering::Relaxed);
        visitors.spawn(async move {
            journey::Journey::new(&crowd, index as u64, at_ms, visitor_rng)
                .make()
                .await
        });
    }
    let mut records = Vec::with_capacity(schedule.len());
    while let Some(joined) = visitors.join_next().await {
        match joined {
            Ok(record) => records.push(record),
            Err(error) => return Err(format!("a visitor's task failed: {error}")),
        }
    }
    // Visitors the run ended before they arrived.
    for (index, at_ms) in schedule.iter().copied().enumerate().skip(records.len()) {
        records.push(VisitorRecord::new(index as u64, at_ms));
    }
    let duration = start.elapsed();
    let pace = match pace_sampler {
        Some((stop, sampler)) => {
            let _ = stop.send(());
            sampler.await.unwrap_or_default()
        }
        None => Vec::new(),
    };
    if let Some(progress) = progress {
        progress.abort();
    }
    let origin = match sampler {
        Some((stop, sampler)) => {
            let _ = stop.send(());
            let samples = sampler.await.ok();
            let url = crowd
                .options
                .origin_stats
                .clone()
                .expect("a sampler has a URL");
            Some(report::origin_figures(&url, crowd.start, samples.unwrap_or_default()).await)
        }
        None => None,
    };
    records.sort_by_key(|record| record.index);
    let event = match (before, opens_in_ms) {
        (Some(before), Some(opens_in_ms)) => {
            let after =
                event::public_draw(&crowd.options.target, crowd.options.room.as_deref()).await;
            Some(EventFigures::new(opens_in_ms, &before, after, &records))
        }
        _ => None,
    };
    Ok(Report::new(
        &crowd.options,
        &crowd.counters,
        &records,
        origin,
        event,
        &pace,
        duration,
    ))
}

async fn progress_bar(crowd: Arc<Crowd>) {
    let bar = indicatif::ProgressBar::new(crowd.options.visitors);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} served  {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let counters = &crowd.counters;
        bar.set_position(counters.served.load(Ordering::Relaxed));
        bar.set_message(format!(
            "arrived {} · waiting {} · inside {} · errors {} · gave up {} · abandoned {}",
            counters.arrived.load(Ordering::Relaxed),
            counters.waiting.load(Ordering::Relaxed),
            counters.inside.load(Ordering::Relaxed),
            counters.errors.load(Ordering::Relaxed),
            counters.gave_up.load(Ordering::Relaxed),
            counters.abandoned.load(Ordering::Relaxed),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_sorted_and_shaped() {
        let mut rng = SmallRng::seed_from_u64(7);
        let opening = Arrivals::Opening {
            jitter: Duration::from_secs(10),
        }
        .schedule(10_000, &mut rng);
        assert_eq!(opening.len(), 10_000);
        assert!(opening.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(*opening.last().unwrap() < 10_000);

        let ramp = Arrivals::Ramp {
            over: Duration::from_secs(100),
        }
        .schedule(10_000, &mut rng);
        // A linearly rising rate: a quarter of the crowd in the first half.
        let first_half = ramp.iter().filter(|&&at| at < 50_000).count();
        assert_eq!(first_half, 2_500);

        let poisson = Arrivals::Poisson { per_second: 100.0 }.schedule(10_000, &mut rng);
        let span = *poisson.last().unwrap() as f64 / 1000.0;
        assert!((90.0..110.0).contains(&span), "{span}");
    }
}
