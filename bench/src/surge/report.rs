//! What a surge found, as figures: JSON for machines, Markdown for people,
//! an SVG chart for both.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Uri;
use serde::Serialize;
use tokio::time::Instant;

use super::order::{self, InLine};
use super::pace::{PaceFigures, PaceSample};
use super::{Counters, EventFigures, JourneyEnd, SurgeOptions, VisitorRecord, goals};
use crate::fetch::Client;

/// How often the origin's `/_stats` is sampled during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// One surge, summed up. The first fields are the contract of
/// `anteroom-bench lazio --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub visitors: u64,
    /// Visitors whose booking the site answered (booked, or every slot full).
    pub served: u64,
    /// Requests that failed, as visitors saw them: `5xx`, unexpected `4xx`,
    /// no answer within their patience, broken connections.
    pub visitor_errors: u64,
    /// `5xx` answers the site itself gave (timeouts in its melt).
    pub origin_errors: Option<u64>,
    pub origin_capacity: Option<u32>,
    pub origin_max_concurrency: Option<u64>,
    /// Kendall's tau-b between arrival order and the order in which
    /// visitors reached the site's booking page (1: perfectly in order).
    pub kendall_tau: Option<f64>,
    /// Seconds from opening until the last visitor was served.
    pub last_served_seconds: Option<f64>,
    /// Visitors / the site's throughput: the best any queue could do.
    pub ideal_seconds: Option<f64>,

    pub booked: u64,
    pub abandoned: u64,
    pub gave_up: u64,
    /// Still going when the run's time limit struck.
    pub unfinished: u64,
    /// Visitors who saw at least one error.
    pub visitors_with_errors: u64,
    pub errors_5xx: u64,
    pub errors_other: u64,
    pub errors_no_answer: u64,
    /// Answers of `429` (too many places from one address).
    pub rate_limited: u64,
    /// Times a visitor inside was sent back to the line (their session
    /// ended before they finished).
    pub sent_back: u64,
    /// Visitors who waited in a line.
    pub waited: u64,
    /// Bookings that went through a buffer (`202` and a receipt).
    pub buffered: u64,
    /// Visitors let in while someone with an earlier ticket was, later,
    /// still told to wait (needs the tickets: `lazio` reads them).
    pub overtaken: Option<u64>,
    /// Seconds from arrival to the site's booking page.
    pub wait_seconds: Percentiles,
    /// Seconds from arrival to the booking's answer.
    pub journey_seconds: Percentiles,
    pub site_visitors_per_second: Option<f64>,
    pub origin_requests: Option<u64>,
    /// Bookings the site holds at the end (it applies each idempotency key
    /// once, so this equals `booked` unless something went wrong).
    pub origin_bookings: Option<u64>,
    pub requests: u64,
    pub duration_seconds: f64,
    /// Visitors reaching the booking page, per second after opening.
    pub admissions_per_second: Vec<u64>,
    /// Visitors served, per second after opening.
    pub served_per_second: Vec<u64>,
    /// The site's requests in flight, sampled: (seconds, requests).
    pub origin_concurrency: Vec<(f64, u64)>,
    /// What the site served well at once, from its `/_stats`: (seconds,
    /// capacity) at the start and at each change (`origin --degrade-at`,
    /// `--recover-at`). Empty when the site does not say.
    pub origin_capacity_timeline: Vec<(f64, u32)>,
    /// A launch event's figures (`--opens-in`), else `null`.
    pub event: Option<EventFigures>,
    /// How the gateway was set up (`--adaptive`, `--size-factor`); `null`
    /// for `lazio`'s run straight at the site.
    pub settings: Option<Settings>,
    /// Requests at once past which the site collapses (its full
    /// capacity's), and whether the most it had went past that.
    pub origin_collapse: Option<u32>,
    pub origin_passed_collapse: Option<bool>,
    /// The site's capacity over time in visitors a minute, comparable with
    /// the pace: `(seconds, visitors a minute)` at the start and at each
    /// change. Empty when the site's capacity or throughput is not known.
    pub site_visitors_per_minute_timeline: Vec<(f64, f64)>,
    /// An adaptive room's pace, read from the admin API once a second:
    /// `(seconds, admissions a minute)`. Empty when not sampled or the
    /// gateway gave none.
    pub pace_timeline: Vec<(f64, f64)>,
    /// Seconds (samples) per reason the controller gave.
    pub adaptive_reasons: BTreeMap<String, u64>,
    /// Seconds (samples) the controller said the site had trouble; `null`
    /// without samples.
    pub trouble_seconds: Option<u64>,
    /// From the site's loss of capacity until the pace stayed within ±20%
    /// of the new capacity for 5 s; `null` without a loss and a pace, or
    /// when it never did.
    pub pace_within_20pct_after_degrade_seconds: Option<f64>,
    /// From the site's recovery until the pace reached 80% of its
    /// capacity; `null` without a recovery and a pace, or when it never did.
    pub pace_back_after_recover_seconds: Option<f64>,
}

/// How the gateway in front of the site was set up, as far as the bench
/// knows: the flags, and with `lazio` the figures it configured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// The room's admission follows the site's health.
    pub adaptive: bool,
    /// The room's bounds are this many times the hand-tuned ones.
    pub size_factor: f64,
    /// The room's `capacity` and `admit_per_minute` and the gateway's
    /// `max_in_flight_upstream`; `null` when the bench did not set them
    /// (`surge` targets a gateway configured by its operator).
    pub capacity: Option<u64>,
    pub admit_per_minute: Option<u64>,
    pub max_in_flight_upstream: Option<u64>,
    /// The bench's own site was set to run its thread ahead of the crowd's
    /// and the gateway's (`true`; a warning says when it could not) or at
    /// their priority (`false`); `null` when the site is not the bench's to
    /// run (`surge`).
    pub site_ahead: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    fn of(mut values: Vec<u64>) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_unstable();
        let at = |q: f64| {
            let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
            Some(values[index] as f64 / 1000.0)
        };
        Percentiles {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// What the origin's `/_stats` said.
#[derive(Debug, Clone, Default)]
pub struct OriginFigures {
    pub max_concurrency: Option<u64>,
    pub errors: Option<u64>,
    pub requests: Option<u64>,
    pub bookings: Option<u64>,
    pub concurrency: Vec<(f64, u64)>,
    /// On the run's clock: (seconds, capacity).
    pub capacity_timeline: Vec<(f64, u32)>,
}

impl Report {
    pub(super) fn new(
        options: &SurgeOptions,
        counters: &Counters,
        records: &[VisitorRecord],
        origin: Option<OriginFigures>,
        event: Option<EventFigures>,
        pace: &[PaceSample],
        duration: Duration,
    ) -> Report {
        let count = |end| records.iter().filter(|r| r.end == end).count() as u64;
        let load = |counter: &std::sync::atomic::AtomicU64| {
            counter.load(std::sync::atomic::Ordering::Relaxed)
        };
        let origin = origin.unwrap_or_default();
        let last_served = records.iter().filter_map(|r| r.served_ms).max();
        let waits = records
            .iter()
            .filter_map(|r| Some(r.admitted_ms?.saturating_sub(r.scheduled_ms)))
            .collect();
        let journeys = records
            .iter()
            .filter_map(|r| Some(r.served_ms?.saturating_sub(r.scheduled_ms)))
            .collect();
        let site_visitors_per_minute_timeline = goals::site_visitors_per_minute(
            &origin.capacity_timeline,
            options.origin_capacity,
            options.site_visitors_per_second,
        );
        let pace = PaceFigures::of(pace);
        Report {
            visitors: records.len() as u64,
            served: count(JourneyEnd::Served),
            visitor_errors: load(&counters.errors),
            origin_errors: origin.errors,
            origin_capacity: options.origin_capacity,
            origin_max_concurrency: origin.max_concurrency,
            kendall_tau: kendall_tau(records),
            last_served_seconds: last_served.map(|ms| ms as f64 / 1000.0),
            // Nobody goes in before an event's opening.
            ideal_seconds: options.site_visitors_per_second.map(|rate| {
                event.as_ref().map_or(0.0, |event| event.opens_in_seconds)
                    + records.len() as f64 / rate
            }),
            booked: records.iter().filter(|r| r.booked).count() as u64,
            abandoned: count(JourneyEnd::Abandoned),
            gave_up: count(JourneyEnd::GaveUp),
            unfinished: count(JourneyEnd::Unfinished),
            visitors_with_errors: records.iter().filter(|r| r.errors > 0).count() as u64,
            errors_5xx: load(&counters.errors_5xx),
            errors_other: load(&counters.errors_other),
            errors_no_answer: load(&counters.errors_no_answer),
            rate_limited: load(&counters.rate_limited),
            sent_back: load(&counters.sent_back),
            waited: records.iter().filter(|r| r.waited).count() as u64,
            buffered: records.iter().filter(|r| r.buffered).count() as u64,
            // The pre-queue goes by the draw: first come, first served is
            // checked among those who came after the opening.
            overtaken: match &event {
                Some(event) => event.overtaken_after_opening(records),
                None => overtaken(records),
            },
            wait_seconds: Percentiles::of(waits),
            journey_seconds: Percentiles::of(journeys),
            site_visitors_per_second: options.site_visitors_per_second,
            origin_requests: origin.requests,
            origin_bookings: origin.bookings,
            requests: records.iter().map(|r| u64::from(r.requests)).sum(),
            duration_seconds: duration.as_secs_f64(),
            admissions_per_second: per_second(records.iter().filter_map(|r| r.admitted_ms)),
            served_per_second: per_second(records.iter().filter_map(|r| r.served_ms)),
            origin_concurrency: origin.concurrency,
            origin_capacity_timeline: origin.capacity_timeline,
            event,
            settings: options.settings.clone(),
            origin_collapse: options.origin_collapse,
            origin_passed_collapse: options
                .origin_collapse
                .zip(origin.max_concurrency)
                .map(|(collapse, most)| most > u64::from(collapse)),
            pace_within_20pct_after_degrade_seconds: goals::pace_within_after_degrade(
                &pace.timeline,
                &site_visitors_per_minute_timeline,
            ),
            pace_back_after_recover_seconds: goals::pace_back_after_recover(
                &pace.timeline,
                &site_visitors_per_minute_timeline,
            ),
            site_visitors_per_minute_timeline,
            pace_timeline: pace.timeline,
            adaptive_reasons: pace.reasons,
            trouble_seconds: pace.trouble_seconds,
        }
    }

    /// The figures a person reads, as (name, value) rows: the Markdown
    /// report's, and `lazio`'s side-by-side table's.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
            ("visitors", self.visitors.to_string()),
            (
                "served",
                format!("{} ({} booked)", self.served, self.booked),
            ),
            (
                "visitor errors",
                format!(
                    "{} ({} visitors; 5xx {}, no answer {}, other {})",
                    self.visitor_errors,
                    self.visitors_with_errors,
                    self.errors_5xx,
                    self.errors_no_answer,
                    self.errors_other
                ),
            ),
            ("origin errors", optional(self.origin_errors)),
            (
                "origin max concurrency / capacity",
                format!(
                    "{} / {}",
                    optional(self.origin_max_concurrency),
                    optional(self.origin_capacity)
                ),
            ),
        ]
        .into_iter()
        .chain(self.origin_collapse.map(|collapse| {
            let passed = match self.origin_passed_collapse {
                Some(true) => " (passed)",
                Some(false) => " (not passed)",
                None => "",
            };
            ("origin collapse point", format!("{collapse}{passed}"))
        }))
        .chain([
            ("order (Kendall tau)", optional_f(self.kendall_tau, 4)),
            ("overtaken", optional(self.overtaken)),
            (
                "last served / ideal",
                format!(
                    "{} s / {} s",
                    optional_f(self.last_served_seconds, 1),
                    optional_f(self.ideal_seconds, 1)
                ),
            ),
            (
                "wait p50 / p90 / p99 / max",
                format!(
                    "{} / {} / {} / {} s",
                    optional_f(self.wait_seconds.p50, 1),
                    optional_f(self.wait_seconds.p90, 1),
                    optional_f(self.wait_seconds.p99, 1),
                    optional_f(self.wait_seconds.max, 1)
                ),
            ),
            (
                "gave up / abandoned / unfinished",
                format!(
                    "{} / {} / {}",
                    self.gave_up, self.abandoned, self.unfinished
                ),
            ),
            ("rate limited (429)", self.rate_limited.to_string()),
            ("sent back to the line", self.sent_back.to_string()),
        ])
        .chain(
            self.settings
                .as_ref()
                .map(|settings| ("gateway", settings.text())),
        )
        .chain(self.pace_rows())
        .chain(self.event.iter().flat_map(EventFigures::rows))
        // Last, so `lazio`'s table keeps its rows aligned when only one of
        // its runs lasted until a change.
        .chain((self.origin_capacity_timeline.len() > 1).then(|| {
            (
                "site capacity over time",
                timeline_text(&self.origin_capacity_timeline),
            )
        }))
        .collect()
    }

    /// The adaptive pace's rows, when it was read; with the goals' rows
    /// when the site lost capacity (and got it back).
    fn pace_rows(&self) -> Vec<(&'static str, String)> {
        let paces = || self.pace_timeline.iter().map(|(_, pace)| *pace);
        let (Some((_, first)), Some((_, last))) =
            (self.pace_timeline.first(), self.pace_timeline.last())
        else {
            return Vec::new();
        };
        let lowest = paces().fold(f64::INFINITY, f64::min);
        let highest = paces().fold(0.0, f64::max);
        let reasons = self
            .adaptive_reasons
            .iter()
            .map(|(reason, seconds)| format!("{reason} {seconds}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut rows = vec![
            (
                "pace a minute: first / lowest / highest / last",
                format!("{first:.0} / {lowest:.0} / {highest:.0} / {last:.0}"),
            ),
            ("pace: seconds per reason", reasons),
            (
                "seconds the site had trouble",
                optional(self.trouble_seconds),
            ),
        ];
        let site = &self.site_visitors_per_minute_timeline;
        let after = |seconds: Option<f64>, event: &str| {
            seconds.map_or_else(|| "never".to_owned(), |s| format!("{s:.1} s after {event}"))
        };
        if goals::degrade(site).is_some() {
            rows.push((
                "pace within 20% of the reduced site for 5 s",
                after(self.pace_within_20pct_after_degrade_seconds, "the loss"),
            ));
        }
        if goals::recovery(site).is_some() {
            rows.push((
                "pace back at 80% of the recovered site",
                after(self.pace_back_after_recover_seconds, "the recovery"),
            ));
        }
        rows
    }

    /// The report as a Markdown section (the chart is a separate file).
    pub fn markdown(&self, title: &str) -> String {
        let mut out = format!("## {title}\n\n| figure | value |\n|---|---|\n");
        for (name, value) in self.rows() {
            out.push_str(&format!("| {name} | {value} |\n"));
        }
        out
    }
}

impl Settings {
    /// `size factor 10 (capacity 142860, 385710 a minute, 400 at the site), adaptive`.
    fn text(&self) -> String {
        let sizes = match (
            self.capacity,
            self.admit_per_minute,
            self.max_in_flight_upstream,
        ) {
            (Some(capacity), Some(rate), Some(in_flight)) => {
                format!(" (capacity {capacity}, {rate} a minute, {in_flight} at the site)")
            }
            _ => String::new(),
        };
        let adaptive = if self.adaptive {
            "adaptive"
        } else {
            "not adaptive"
        };
        let site = match self.site_ahead {
            Some(true) => ", the site's thread ahead",
            Some(false) => ", the site's thread sharing the CPU",
            None => "",
        };
        format!("size factor {}{sizes}, {adaptive}{site}", self.size_factor)
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| value.to_string())
}

fn optional_f(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.decimals$}"))
}

/// `50, 25 from 30.2 s, 50 from 60.1 s`.
fn timeline_text(timeline: &[(f64, u32)]) -> String {
    timeline
        .iter()
        .enumerate()
        .map(|(index, (at, capacity))| match index {
            0 => capacity.to_string(),
            _ => format!("{capacity} from {at:.1} s"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts per whole second after opening.
fn per_second(times_ms: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut buckets = Vec::new();
    for ms in times_ms {
        let second = (ms / 1000) as usize;
        if buckets.len() <= second {
            buckets.resize(second + 1, 0);
        }
        buckets[second] += 1;
    }
    buckets
}

/// Kendall's tau-b between arrival order and the time each visitor reached
/// the booking page, over those who did (ties in time count as ties).
fn kendall_tau(records: &[VisitorRecord]) -> Option<f64> {
    let (arrival, admission): (Vec<u64>, Vec<u64>) = records
        .iter()
        .filter_map(|r| Some((r.index, r.admitted_ms?)))
        .unzip();
    order::tau_b(&arrival, &admission)
}

/// Visitors let in although someone with an earlier ticket was still told
/// to wait by a request sent after the later one's admission had arrived
/// ([`order::let_in_ahead`] by ticket). Needs every ticket; `None`
/// otherwise.
fn overtaken(records: &[VisitorRecord]) -> Option<u64> {
    let mut by_ticket: Vec<InLine<u64>> = records
        .iter()
        .filter(|r| r.waited || r.ticket.is_some())
        .map(|r| {
            Some(InLine {
                key: r.ticket?,
                admitted_ms: r.admitted_ms,
                last_waiting_ms: r.last_waiting_ms,
            })
        })
        .collect::<Option<_>>()?;
    if by_ticket.is_empty() {
        return None;
    }
    Some(order::let_in_ahead(&mut by_ticket))
}

/// Polls the origin's `/_stats` until `stop` fires (or is dropped).
pub(super) async fn sample_origin(
    url: Uri,
    start: Instant,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<(f64, u64)> {
    let client = Client::new();
    let url = url.to_string();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return samples,
        }
        if let Some(stats) = fetch_stats(&client, &url).await
            && let Some(current) = stats["current_concurrency"].as_u64()
        {
            samples.push((start.elapsed().as_secs_f64(), current));
        }
    }
}

/// The origin's final figures, with the samples taken during the run
/// (which started at `start`).
pub(super) async fn origin_figures(
    url: &Uri,
    start: Instant,
    concurrency: Vec<(f64, u64)>,
) -> OriginFigures {
    let asked = start.elapsed().as_secs_f64();
    let stats = fetch_stats(&Client::new(), &url.to_string())
        .await
        .unwrap_or_default();
    // The site said its uptime somewhere between the question and the answer.
    let answered_at = (asked + start.elapsed().as_secs_f64()) / 2.0;
    OriginFigures {
        capacity_timeline: capacity_timeline(&stats, answered_at),
        max_concurrency: stats["max_concurrency"].as_u64(),
        errors: stats["timeouts"].as_u64(),
        requests: stats["requests"].as_u64(),
        bookings: stats["bookings"].as_u64(),
        concurrency,
    }
}

/// The site's `capacity_timeline` (seconds from the site's start) on the
/// run's clock, given that the site was up `uptime_seconds` when the run's
/// clock read `run_seconds`. A change before the run started counts from 0:
/// the run began with it.
fn capacity_timeline(stats: &serde_json::Value, run_seconds: f64) -> Vec<(f64, u32)> {
    let Some(uptime) = stats["uptime_seconds"].as_f64() else {
        return Vec::new();
    };
    let site_started_at = run_seconds - uptime;
    let mut timeline: Vec<(f64, u32)> = Vec::new();
    for point in stats["capacity_timeline"].as_array().into_iter().flatten() {
        let (Some(at), Some(capacity)) = (
            point["at_seconds"].as_f64(),
            point["capacity"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok()),
        ) else {
            continue;
        };
        let at = ((site_started_at + at).max(0.0) * 1000.0).round() / 1000.0;
        match timeline.last_mut() {
            Some(last) if last.0 == at => *last = (at, capacity),
            _ => timeline.push((at, capacity)),
        }
    }
    timeline
}

/// `/_stats` as JSON; `None` when it does not answer with JSON (a sample
/// missed is not worth failing a run for).
async fn fetch_stats(client: &Client, url: &str) -> Option<serde_json::Value> {
    client.get(url, &[]).await.ok()?.json().ok()
}

/// A report of an adaptive room at a site that halves its capacity (50
/// requests at once, 600 visitors a minute) from 10 s to 30 s: the pace
/// follows it 2 s after the loss and is back 4 s after the recovery.
#[cfg(test)]
pub(super) fn adaptive_example() -> Report {
    use super::pace::Reading;
    let mut options = SurgeOptions::new("http://127.0.0.1:1".parse().unwrap(), 0);
    options.origin_capacity = Some(50);
    options.origin_collapse = Some(100);
    options.site_visitors_per_second = Some(10.0);
    options.settings = Some(Settings {
        adaptive: true,
        size_factor: 10.0,
        capacity: Some(200),
        admit_per_minute: Some(5400),
        max_in_flight_upstream: Some(500),
        site_ahead: Some(true),
    });
    let origin = OriginFigures {
        max_concurrency: Some(60),
        capacity_timeline: vec![(0.0, 50), (10.0, 25), (30.0, 50)],
        ..OriginFigures::default()
    };
    let pace: Vec<PaceSample> = (1..=40)
        .map(|second| PaceSample {
            at: f64::from(second),
            reading: Reading {
                pace: match second {
                    ..12 => 540.0,
                    12..30 => 280.0,
                    30..34 => 300.0,
                    _ => 520.0,
                },
                reason: Some(if second < 3 { "ramp" } else { "hold" }.to_owned()),
                trouble: second == 11,
            },
        })
        .collect();
    Report::new(
        &options,
        &Counters::default(),
        &[],
        Some(origin),
        None,
        &pace,
        Duration::from_secs(40),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adaptive_run_reports_its_pace_and_the_goals_judgments() {
        let report = adaptive_example();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["settings"],
            serde_json::json!({"adaptive": true, "size_factor": 10.0, "capacity": 200,
                "admit_per_minute": 5400, "max_in_flight_upstream": 500,
                "site_ahead": true})
        );
        assert_eq!(
            json["site_visitors_per_minute_timeline"],
            serde_json::json!([[0.0, 600.0], [10.0, 300.0], [30.0, 600.0]])
        );
        assert_eq!(json["pace_timeline"][0], serde_json::json!([1.0, 540.0]));
        assert_eq!(json["pace_timeline"].as_array().unwrap().len(), 40);
        assert_eq!(
            json["adaptive_reasons"],
            serde_json::json!({"hold": 38, "ramp": 2})
        );
        assert_eq!(json["trouble_seconds"], 1);
        assert_eq!(json["pace_within_20pct_after_degrade_seconds"], 2.0);
        assert_eq!(json["pace_back_after_recover_seconds"], 4.0);
        assert_eq!(json["origin_collapse"], 100);
        assert_eq!(json["origin_passed_collapse"], false);

        let rows = report.rows();
        let row = |name: &str| {
            rows.iter()
                .find(|row| row.0 == name)
                .map(|row| row.1.clone())
                .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
        };
        assert_eq!(
            row("gateway"),
            "size factor 10 (capacity 200, 5400 a minute, 500 at the site), adaptive, \
             the site's thread ahead"
        );
        assert_eq!(row("origin collapse point"), "100 (not passed)");
        assert_eq!(
            row("pace a minute: first / lowest / highest / last"),
            "540 / 280 / 540 / 520"
        );
        assert_eq!(row("pace: seconds per reason"), "hold 38, ramp 2");
        assert_eq!(row("seconds the site had trouble"), "1");
        assert_eq!(
            row("pace within 20% of the reduced site for 5 s"),
            "2.0 s after the loss"
        );
        assert_eq!(
            row("pace back at 80% of the recovered site"),
            "4.0 s after the recovery"
        );
    }

    #[test]
    fn without_a_pace_the_report_says_nothing_of_one() {
        let mut options = SurgeOptions::new("http://127.0.0.1:1".parse().unwrap(), 0);
        options.origin_capacity = Some(50);
        options.site_visitors_per_second = Some(10.0);
        let report = Report::new(
            &options,
            &Counters::default(),
            &[],
            None,
            None,
            &[],
            Duration::from_secs(1),
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["pace_timeline"], serde_json::json!([]));
        assert_eq!(json["adaptive_reasons"], serde_json::json!({}));
        assert!(json["trouble_seconds"].is_null());
        assert!(json["pace_within_20pct_after_degrade_seconds"].is_null());
        assert!(json["pace_back_after_recover_seconds"].is_null());
        assert!(json["settings"].is_null(), "lazio's direct run");
        assert!(json["origin_passed_collapse"].is_null());
        assert_eq!(
            json["site_visitors_per_minute_timeline"],
            serde_json::json!([[0.0, 600.0]]),
            "a site without a timeline: its full capacity"
        );
        assert!(
            report
                .rows()
                .iter()
                .all(|(name, _)| !name.contains("pace") && *name != "gateway"),
            "{:?}",
            report.rows()
        );
    }

    fn record(index: u64, ticket: u64, admitted: u64, last_wait: u64) -> VisitorRecord {
        let mut record = VisitorRecord::new(index, 0);
        record.ticket = Some(ticket);
        record.waited = true;
        record.admitted_ms = Some(admitted);
        record.last_waiting_ms = Some(last_wait);
        record
    }

    #[test]
    fn overtaking_is_a_later_ticket_in_while_an_earlier_one_still_waits() {
        // In order: each ticket's last "wait" comes before the next is let in.
        let fair = [
            record(0, 1, 100, 90),
            record(1, 2, 200, 150),
            record(2, 3, 300, 250),
        ];
        assert_eq!(overtaken(&fair), Some(0));
        // Ticket 3 let in at 150, while ticket 1 was told to wait at 180.
        let unfair = [
            record(0, 1, 200, 180),
            record(1, 2, 250, 240),
            record(2, 3, 150, 100),
        ];
        assert_eq!(overtaken(&unfair), Some(1));
        // Without tickets there is no telling.
        let mut unknown = record(0, 1, 1, 0);
        unknown.ticket = None;
        assert_eq!(overtaken(&[unknown]), None);
    }

    #[test]
    fn tau_is_one_in_order_and_lower_shuffled() {
        let in_order: Vec<_> = (0..100).map(|i| record(i, i, i * 10, 0)).collect();
        assert_eq!(kendall_tau(&in_order), Some(1.0));
        let reversed: Vec<_> = (0..100).map(|i| record(i, i, 1000 - i * 10, 0)).collect();
        assert_eq!(kendall_tau(&reversed), Some(-1.0));
    }

    #[test]
    fn the_capacity_timeline_is_put_on_the_runs_clock() {
        // The site started 0.5 s before the run; asked 10 s into the run.
        let stats = serde_json::json!({
            "uptime_seconds": 10.5,
            "capacity_timeline": [
                {"at_seconds": 0.0, "capacity": 50},
                {"at_seconds": 0.25, "capacity": 40},
                {"at_seconds": 3.5, "capacity": 20},
                {"at_seconds": 8.5, "capacity": 50},
            ],
        });
        assert_eq!(
            capacity_timeline(&stats, 10.0),
            vec![(0.0, 40), (3.0, 20), (8.0, 50)],
            "before the run: the capacity it began with, at 0"
        );
        assert!(capacity_timeline(&serde_json::json!({}), 10.0).is_empty());
        assert_eq!(
            timeline_text(&[(0.0, 50), (3.0, 20), (8.04, 50)]),
            "50, 20 from 3.0 s, 50 from 8.0 s"
        );
    }

    #[test]
    fn percentiles_and_buckets() {
        let p = Percentiles::of((1..=100).map(|s| s * 1000).collect());
        assert_eq!(p.p50, Some(50.0));
        assert_eq!(p.p99, Some(99.0));
        assert_eq!(p.max, Some(100.0));
        assert_eq!(
            per_second([0, 999, 1000, 3500].into_iter()),
            vec![2, 1, 0, 1]
        );
    }
}
