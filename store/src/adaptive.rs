//! Admission that follows the site's health: the controller, shared by both
//! backends (docs/adaptive.md is the design and its reasons).
//!
//! Two loops, one inside the other, both computed once a second for the
//! whole fleet from every gateway's last few seconds of upstream figures:
//!
//! - **places** (inner, fast): how many of the room's requests may be at the
//!   site at once, fleet-wide. Envoy's adaptive concurrency gradient: the
//!   site's no-load latency is measured by a short fleet-wide *probe* (the
//!   places pinned low), and the places follow
//!   `places × g + √(places × g)` with `g = base × 1.25 / site p50`.
//!   Requests beyond the places wait at the gateway, not at the site.
//! - **pace** (outer, slow): the effective `admit_per_minute`, between the
//!   room's floor and its ceiling. AIMD with CUBIC's regrowth on what the
//!   visitor sees (the p90 from asking for a place to the response's head)
//!   and the error rate, so that the line in front of the places stays short.
//!
//! Everything here is pure: time and figures are arguments. The Redis
//! backend keeps [`Controller`] in the room's hash ([`Controller::fields`]);
//! the memory backend keeps it in its room.

use std::collections::HashMap;

use crate::Millis;

/// Buckets of a latency [`Histogram`]: bucket 0 holds up to 1 ms, bucket
/// `i` up to `1.08^i` ms, the last everything slower (past about 40 s):
/// fine enough that a site 10% slower than its base shows.
pub const BUCKETS: usize = 140;
const GROWTH: f64 = 1.08;

/// One tick a second for the whole fleet.
pub const TICK_MS: u64 = 1_000;
/// A tick is due this long after the last: gateways report once a second
/// on their own clocks, and a report a few milliseconds early must not
/// skip a tick.
pub const TICK_DUE_MS: u64 = 900;
/// A gateway's report covers its last three seconds.
pub const WINDOW_MS: u64 = 3_000;
/// A report older than this (on the store's clock) no longer counts: a
/// gateway that stopped reporting neither freezes nor skews the pace.
pub const REPORT_STALE_MS: u64 = 3_500;
/// Reports older than this are deleted.
pub const REPORT_FORGET_MS: u64 = 10_000;
/// A silence longer than this (no tick) restarts the controller in its ramp
/// with a fresh probe: what the site took before says little about after.
pub const OUTAGE_GAP_MS: u64 = 5_000;
/// Fewer outcomes than this in the window: no judgment on latency or errors.
pub const MIN_SAMPLES: u64 = 5;
/// Places per reporting gateway at the least.
pub const MIN_PLACES: f64 = 3.0;
/// The no-load latency is measured again this often.
pub const PROBE_INTERVAL_MS: u64 = 120_000;
/// A probe ends after this many of its requests, or [`PROBE_MAX_MS`].
pub const PROBE_SAMPLES: u64 = 50;
pub const PROBE_MAX_MS: u64 = 5_000;
/// Envoy's buffer: the site may be this much slower than at no load before
/// the places shrink.
pub const PLACES_BUFFER: f64 = 0.25;
/// The site's latency within this share of its base means the places are
/// far from its knee: they grow by half a tick while they bind.
pub const SLOW_START_BELOW: f64 = 0.1;
/// The places stay within this multiple of the most in flight in the
/// window.
pub const USAGE_HEADROOM: f64 = 1.25;
/// A line that grows or shrinks by less than this share of what the site
/// finishes a second is flat.
pub const LINE_FLAT: f64 = 0.05;
/// The cut when the line is flat but too long: enough to drain it.
pub const TRIM: f64 = 0.95;
/// The multiplicative decrease.
pub const BETA: f64 = 0.8;
/// No second cut within this of the last one: a cut shows at the site only
/// once the visitors it kept out would have arrived.
pub const HOLD_MS: u64 = 3_000;
/// The ramp starts at this share of the ceiling. A sixteenth cost a
/// correctly sized 50,000-visitor rehearsal a tenth of its time; the
/// places hold the site whatever the pace, so a high start costs only
/// waits at the gateway when the ceiling is far too high.
pub const RAMP_START: f64 = 0.125;
/// A full site's pace above what the room lets in by more than this share
/// is trimmed towards it.
pub const UNUSED_SHARE: f64 = 0.9;
/// The ramp doubles the pace this often.
pub const RAMP_MS: u64 = 1_000;
/// CUBIC's curve relative to the plateau: back at the plateau `K` healthy
/// seconds after a cut, 1.2 × at `2K`.
pub const CUBIC_K: f64 = 6.0;
const CUBIC_C: f64 = (1.0 - BETA) / (CUBIC_K * CUBIC_K * CUBIC_K);
/// Share of requests that had to wait for a place beyond which the site is
/// taken as full: the ramp ends and the pace stops growing.
pub const QUEUED_SHARE: f64 = 0.8;
/// The visitors' p90 is healthy up to this share of the target: the pace
/// may grow below it, and a long line that holds its length above it is
/// trimmed.
pub const HEALTHY_SHARE: f64 = 0.8;
/// The line in front of the places is too long when clearing it at the
/// site's pace would take this share of the latency target.
pub const PILING_SHARE_OF_TARGET: f64 = 0.5;

/// The site's `q` quantile net of the gateways' own delay at the same
/// quantile (`None` with too few samples). A response is timed from the
/// gateway's side: a runtime that woke late (its CPU taken by the crowd's
/// polling, or by anything else on the machine) adds its lateness to every
/// latency it measures, and the site is no slower for it. Without enough
/// lag samples (gateways before it was measured) the latency counts as it
/// was measured.
pub fn net_quantile(site: &Histogram, lag: &Histogram, q: f64) -> Option<f64> {
    if site.count() < MIN_SAMPLES {
        return None;
    }
    let site = site.quantile(q)?;
    let lag = if lag.count() >= MIN_SAMPLES {
        lag.quantile(q).unwrap_or(0.0)
    } else {
        0.0
    };
    Some((site - lag).max(1.0))
}

fn over_errors_now(sum: &Report, settings: &Settings) -> bool {
    let outcomes = sum.done + sum.failed + sum.busy;
    let errors = sum.failed + sum.busy;
    outcomes > 0 && errors >= 2 && errors as f64 / outcomes as f64 > settings.max_error_rate
}

/// Counts of latencies in geometric buckets. Counts add up across gateways,
/// percentiles would not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram(pub [u64; BUCKETS]);

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram([0; BUCKETS])
    }
}

impl Histogram {
    /// The bucket a latency in milliseconds falls in.
    pub fn bucket_of(ms: f64) -> usize {
        if ms.is_nan() || ms <= 1.0 {
            return 0;
        }
        let index = (ms.ln() / GROWTH.ln()).ceil();
        if index >= (BUCKETS - 1) as f64 {
            BUCKETS - 1
        } else {
            index as usize
        }
    }

    /// The upper bound of bucket `index`, in milliseconds.
    pub fn upper(index: usize) -> f64 {
        GROWTH.powi(index as i32)
    }

    pub fn record(&mut self, ms: f64) {
        self.0[Histogram::bucket_of(ms)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }

    /// The `q` quantile (0 < q ≤ 1) in milliseconds, interpolated
    /// geometrically within its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0u64;
        for (index, &count) in self.0.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if (below + count) as f64 >= rank {
                let fraction = (rank - below as f64) / count as f64;
                let upper = Histogram::upper(index);
                let lower = if index == 0 { upper } else { upper / GROWTH };
                return Some(lower * (upper / lower).powf(fraction));
            }
            below += count;
        }
        Some(Histogram::upper(BUCKETS - 1))
    }

    fn encode(&self, out: &mut String) {
        let mut first = true;
        for (index, &count) in self.0.iter().enumerate() {
            if count > 0 {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&format!("{index}:{count}"));
            }
        }
        if first {
            out.push('-');
        }
    }

    fn decode(text: &str) -> Option<Histogram> {
        let mut histogram = Histogram::default();
        if text == "-" {
            return Some(histogram);
        }
        for pair in text.split(',') {
            let (index, count) = pair.split_once(':')?;
            let index: usize = index.parse().ok()?;
            *histogram.0.get_mut(index)? = count.parse().ok()?;
        }
        Some(histogram)
    }
}

/// One gateway's figures for one room over its last [`WINDOW_MS`]: what it
/// sends once a second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Requests that asked for a place at the site.
    pub started: u64,
    /// Of those, how many had to wait for one.
    pub queued: u64,
    /// Answered by the site with anything but a `5xx`.
    pub done: u64,
    /// The site's `5xx`, timeouts, unreachable.
    pub failed: u64,
    /// The wait for a place ran out (`503` to the visitor).
    pub busy: u64,
    /// The most of the room's requests at the site at once.
    pub peak_in_flight: u64,
    /// The gateway's `max_in_flight_upstream`.
    pub max_places: u64,
    /// Requests waiting for a place at the window's end.
    pub line: u64,
    /// Of `queued`, those in the window's last second.
    pub recent_queued: u64,
    /// The site's latency: request sent to response head.
    pub site: Histogram,
    /// What the visitor saw: asked for a place to response head (or to the
    /// failure).
    pub seen: Histogram,
    /// The site's latency of requests that took their place under a probe.
    pub probe: Histogram,
    /// The site's latency in the window's last second: what the places
    /// follow, so that they react to the load they have just made.
    pub recent_site: Histogram,
    /// The gateway's own delay: how late its runtime woke a timer, sampled
    /// many times a second. A gateway short of CPU answers late whatever
    /// the site does, and every latency it measures carries that delay;
    /// the controller takes it out before judging the site.
    pub lag: Histogram,
    /// The gateway's own delay in the window's last second.
    pub recent_lag: Histogram,
}

impl Report {
    /// The report as one short line of text (the hash field's value).
    pub fn encode(&self) -> String {
        let mut out = format!(
            "2 {} {} {} {} {} {} {} {} {} ",
            self.started,
            self.queued,
            self.done,
            self.failed,
            self.busy,
            self.peak_in_flight,
            self.max_places,
            self.line,
            self.recent_queued
        );
        self.site.encode(&mut out);
        out.push(' ');
        self.seen.encode(&mut out);
        out.push(' ');
        self.probe.encode(&mut out);
        out.push(' ');
        self.recent_site.encode(&mut out);
        out.push(' ');
        self.lag.encode(&mut out);
        out.push(' ');
        self.recent_lag.encode(&mut out);
        out
    }

    /// `None` for anything not written by [`Report::encode`]. Version 1
    /// (gateways before the lag was measured) reads with no lag: a fleet
    /// being upgraded keeps its pace.
    pub fn decode(text: &str) -> Option<Report> {
        let mut parts = text.split(' ');
        let version = match parts.next()? {
            "1" => 1,
            "2" => 2,
            _ => return None,
        };
        let mut number = || parts.next()?.parse::<u64>().ok();
        let (started, queued, done, failed, busy, peak_in_flight, max_places, line, recent_queued) = (
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
            number()?,
        );
        let site = Histogram::decode(parts.next()?)?;
        let seen = Histogram::decode(parts.next()?)?;
        let probe = Histogram::decode(parts.next()?)?;
        let recent_site = Histogram::decode(parts.next()?)?;
        let (lag, recent_lag) = if version >= 2 {
            (
                Histogram::decode(parts.next()?)?,
                Histogram::decode(parts.next()?)?,
            )
        } else {
            (Histogram::default(), Histogram::default())
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Report {
            started,
            queued,
            done,
            failed,
            busy,
            peak_in_flight,
            max_places,
            line,
            recent_queued,
            site,
            seen,
            probe,
            recent_site,
            lag,
            recent_lag,
        })
    }

    /// Adds one second's figures to a gateway's window: counts add up, the
    /// peak is the highest.
    /// Seconds are added oldest first: the line is the latest second's.
    pub fn add_second(&mut self, second: &Report) {
        let peak = self.peak_in_flight.max(second.peak_in_flight);
        self.add(second);
        self.peak_in_flight = peak;
        self.line = second.line;
        self.recent_queued = second.queued;
        self.recent_site = second.site.clone();
        self.recent_lag = second.lag.clone();
    }

    /// Adds another gateway's window: everything adds up.
    fn add(&mut self, other: &Report) {
        self.started += other.started;
        self.queued += other.queued;
        self.done += other.done;
        self.failed += other.failed;
        self.busy += other.busy;
        self.peak_in_flight += other.peak_in_flight;
        self.max_places += other.max_places;
        self.line += other.line;
        self.recent_queued += other.recent_queued;
        self.recent_site.add(&other.recent_site);
        self.site.add(&other.site);
        self.seen.add(&other.seen);
        self.probe.add(&other.probe);
        self.lag.add(&other.lag);
        self.recent_lag.add(&other.recent_lag);
    }
}

/// The fleet's figures: the sum of the fresh reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub sum: Report,
    /// Gateways whose report counted.
    pub gateways: u32,
}

impl Window {
    /// Sums the reports stamped (store's clock) no older than
    /// [`REPORT_STALE_MS`]; the order does not matter.
    pub fn merge<'a>(
        reports: impl IntoIterator<Item = (Millis, &'a Report)>,
        now: Millis,
    ) -> Window {
        let mut window = Window::default();
        for (stamped, report) in reports {
            if now.saturating_sub(stamped) <= REPORT_STALE_MS {
                window.sum.add(report);
                window.gateways += 1;
            }
        }
        window
    }
}

/// The room's settings in force: the config's `[room.adaptive]` with the
/// admin API's live changes over it, and the ceiling (`admit_per_minute`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub enabled: bool,
    pub floor: f64,
    pub ceiling: f64,
    pub latency_p90_ms: f64,
    pub max_error_rate: f64,
}

/// What the room's state says at the tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The store's time.
    pub now: Millis,
    /// Tickets not yet let in.
    pub waiting: u64,
    /// The room's `admitted` counter.
    pub admitted: u64,
    /// Whether the room lets people in now: open, opened, not settling.
    pub serving: bool,
}

/// The pace's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Doubling until the first sign of a full site.
    Ramp,
    /// Cut and regrown along the cubic.
    Steady,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ramp => "ramp",
            Phase::Steady => "steady",
        }
    }
}

/// Why the pace is what it is (the last tick's decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Off,
    Ramp,
    Grow,
    Hold,
    Idle,
    Latency,
    Errors,
    SiteDown,
    Probe,
    Floor,
    Ceiling,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Off,
        Reason::Ramp,
        Reason::Grow,
        Reason::Hold,
        Reason::Idle,
        Reason::Latency,
        Reason::Errors,
        Reason::SiteDown,
        Reason::Probe,
        Reason::Floor,
        Reason::Ceiling,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Off => "off",
            Reason::Ramp => "ramp",
            Reason::Grow => "grow",
            Reason::Hold => "hold",
            Reason::Idle => "idle",
            Reason::Latency => "latency",
            Reason::Errors => "errors",
            Reason::SiteDown => "site_down",
            Reason::Probe => "probe",
            Reason::Floor => "floor",
            Reason::Ceiling => "ceiling",
        }
    }

    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

/// The controller's whole state for one room.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    /// Admissions a minute, a real number within `[floor, ceiling]`.
    pub pace: f64,
    pub phase: Phase,
    /// The plateau the cubic regrows to.
    pub w_max: f64,
    /// Healthy, in-use seconds since the last cut.
    pub healthy_s: f64,
    pub cut_at: Option<Millis>,
    /// The visitors' p90 at the last cut.
    pub cut_p90: f64,
    /// The fleet's line for places at the last tick.
    pub line: u64,
    pub ramp_at: Millis,
    pub reason: Reason,
    /// When the pace last moved.
    pub changed_at: Millis,
    /// The site is down: the waiting page says so.
    pub trouble: bool,
    /// Good ticks since the site came back.
    pub trouble_ok: u32,
    /// Fleet-wide places at the site.
    pub places: f64,
    /// TCP's ssthresh for the places: where the site last slowed past its
    /// buffer. Slow start stops here; past it only the gradient grows them.
    pub places_ssthresh: Option<f64>,
    pub places_before_probe: f64,
    /// The site's no-load p50, from the last probe.
    pub base_ms: Option<f64>,
    /// When the next probe is due.
    pub probe_at: Millis,
    /// While probing: when it ends at the latest.
    pub probe_until: Option<Millis>,
    /// Until when the line a probe built is not judged.
    pub probe_settle_until: Millis,
    /// Ticks in a row at the fewest places.
    pub at_min: u32,
    pub ticked_at: Millis,
    /// `admitted` at the last tick.
    pub admitted_mark: u64,
    /// What the last tick saw.
    pub p90_ms: Option<f64>,
    /// The site's median net of the gateways' own delay.
    pub site_p50_ms: Option<f64>,
    /// The gateways' own delay (their runtimes' lag), p90.
    pub lag_p90_ms: Option<f64>,
    pub error_rate: Option<f64>,
    /// The fleet's requests that asked for a place in the last window: each
    /// gateway's share of the places is its part of these.
    pub fleet_started: u64,
    pub gateways: u32,
    /// Each counted gateway's share of the places, computed at the tick
    /// from the same reports (so that the shares add up to the places
    /// within rounding): what a gateway is told until the next tick.
    pub shares: Vec<(String, u64)>,
}

impl Controller {
    /// A controller starting on a room: the pace at an eighth of the
    /// ceiling ([`RAMP_START`]: three doublings from it), the places at
    /// their fewest (the first figures are the base).
    pub fn start(settings: &Settings, facts: &Facts) -> Controller {
        let pace = (settings.ceiling * RAMP_START)
            .max(settings.floor)
            .min(settings.ceiling);
        Controller {
            pace,
            phase: Phase::Ramp,
            w_max: pace,
            healthy_s: 0.0,
            cut_at: None,
            cut_p90: 0.0,
            line: 0,
            ramp_at: facts.now,
            reason: Reason::Ramp,
            changed_at: facts.now,
            trouble: false,
            trouble_ok: 0,
            places: MIN_PLACES,
            places_ssthresh: None,
            places_before_probe: MIN_PLACES,
            base_ms: None,
            probe_at: facts.now,
            probe_until: None,
            probe_settle_until: 0,
            at_min: 0,
            ticked_at: facts.now,
            admitted_mark: facts.admitted,
            p90_ms: None,
            site_p50_ms: None,
            lag_p90_ms: None,
            error_rate: None,
            fleet_started: 0,
            gateways: 0,
            shares: Vec::new(),
        }
    }

    /// Whether a tick is due at `now`.
    pub fn due(&self, now: Millis) -> bool {
        now >= self.ticked_at.saturating_add(TICK_DUE_MS)
    }

    /// Whether the places are pinned for a probe.
    pub fn probing(&self) -> bool {
        self.probe_until.is_some()
    }

    /// The pace the bucket accrues at: whole admissions a minute, at least
    /// one.
    pub fn whole_pace(&self) -> u32 {
        (self.pace.floor() as u32).max(1)
    }

    /// The share of the places the last tick gave `gateway`; one for a
    /// gateway it did not count (new, or silent for a while: it grows
    /// with its demand from the next tick). Before any tick gave shares,
    /// the places split evenly, at most `max_places`.
    pub fn share_of(&self, gateway: &str, max_places: u64) -> u64 {
        match self.shares.iter().find(|(id, _)| id == gateway) {
            Some((_, share)) => *share,
            None if self.shares.is_empty() => self.share(0, max_places),
            None => 1,
        }
    }

    /// One gateway's share of the places: its part of the fleet's demand,
    /// at least one, at most its own bound.
    pub fn share(&self, started: u64, max_places: u64) -> u64 {
        let share = if self.fleet_started == 0 {
            self.places / f64::from(self.gateways.max(1))
        } else {
            self.places * started as f64 / self.fleet_started as f64
        };
        (share.round() as u64).clamp(1, max_places.max(1))
    }

    /// One tick: both loops, from the fleet's window.
    pub fn tick(&mut self, window: &Window, settings: &Settings, facts: &Facts) {
        let now = facts.now;
        let floor = settings.floor.min(settings.ceiling);
        if now.saturating_sub(self.ticked_at) > OUTAGE_GAP_MS {
            // Not served for a while: ramp again from here, probe again.
            self.phase = Phase::Ramp;
            self.ramp_at = now;
            self.probe_at = now;
            self.probe_until = None;
            self.places_ssthresh = None;
            self.admitted_mark = facts.admitted;
        }
        let dt = (now.saturating_sub(self.ticked_at).min(2 * TICK_MS)) as f64 / 1000.0;
        self.ticked_at = now;
        let admitted = facts.admitted.saturating_sub(self.admitted_mark);
        self.admitted_mark = facts.admitted;
        let sum = &window.sum;
        self.gateways = window.gateways;
        self.fleet_started = sum.started;
        let outcomes = sum.done + sum.failed + sum.busy;
        let errors = sum.failed + sum.busy;
        self.error_rate = (outcomes > 0).then(|| errors as f64 / outcomes as f64);
        self.p90_ms = (sum.seen.count() >= MIN_SAMPLES)
            .then(|| sum.seen.quantile(0.9))
            .flatten();
        self.site_p50_ms = net_quantile(&sum.site, &sum.lag, 0.5);
        self.lag_p90_ms = (sum.lag.count() >= MIN_SAMPLES)
            .then(|| sum.lag.quantile(0.9))
            .flatten();
        self.tick_places(window, now);
        let before = self.pace;
        let line_growth = (sum.line as f64 - self.line as f64) / dt.max(0.001);
        self.line = sum.line;
        self.tick_pace(window, settings, facts, admitted, dt, line_growth);
        self.pace = self.pace.clamp(floor, settings.ceiling);
        if self.pace != before {
            self.changed_at = now;
        }
        // Every tick's inputs and outcome, for whoever needs to see why the
        // pace moved (`RUST_LOG=anteroom::adaptive=debug`).
        tracing::debug!(
            target: "anteroom::adaptive",
            pace = self.pace.round(),
            reason = self.reason.as_str(),
            places = format!("{:.1}", self.places),
            ssthresh = ?self.places_ssthresh.map(|v| v.round()),
            base_ms = ?self.base_ms,
            site_p50_ms = ?self.site_p50_ms,
            recent_p50_ms = ?sum.recent_site.quantile(0.5),
            recent_p90_ms = ?sum.recent_site.quantile(0.9),
            lag_p50_ms = ?sum.lag.quantile(0.5),
            lag_p90_ms = ?self.lag_p90_ms,
            recent_lag_p90_ms = ?sum.recent_lag.quantile(0.9),
            seen_p90_ms = ?self.p90_ms,
            started = sum.started,
            queued = sum.queued,
            recent_queued = sum.recent_queued,
            line = sum.line,
            peak = sum.peak_in_flight,
            probing = self.probing(),
            "adaptive tick"
        );
    }

    fn tick_places(&mut self, window: &Window, now: Millis) {
        let sum = &window.sum;
        let fewest = MIN_PLACES * f64::from(window.gateways.max(1));
        let most = (sum.max_places as f64).max(fewest);
        if let Some(until) = self.probe_until {
            if sum.probe.count() >= PROBE_SAMPLES || now >= until {
                if let Some(base) = net_quantile(&sum.probe, &sum.lag, 0.5) {
                    self.base_ms = Some(base);
                }
                self.probe_until = None;
                self.places = self.places_before_probe.clamp(fewest, most);
                self.probe_at = now + PROBE_INTERVAL_MS;
                self.probe_settle_until = now + PROBE_MAX_MS;
            }
            return;
        }
        if self.base_ms.is_none() {
            // The first figures: the places start at their fewest, so the
            // site is as quiet as a probe would make it.
            let first = net_quantile(&sum.recent_site, &sum.recent_lag, 0.5).or(self.site_p50_ms);
            if let Some(first) = first {
                self.base_ms = Some(first);
                self.probe_at = now + PROBE_INTERVAL_MS;
            }
            self.places = self.places.clamp(fewest, most);
            return;
        }
        if now >= self.probe_at && sum.started > 0 {
            self.places_before_probe = self.places;
            self.places = (self.places / 4.0).max(fewest);
            self.probe_until = Some(now + PROBE_MAX_MS);
            return;
        }
        let recent_net = net_quantile(&sum.recent_site, &sum.recent_lag, 0.5);
        if let (Some(base), Some(recent)) = (self.base_ms, recent_net) {
            // The base is the fastest median seen since the last probe
            // (Vegas's base RTT): a second's median below it says the site
            // with nothing to do is at least that fast, and a base taken
            // while the machine was busy (the first figures, in a crowd's
            // first seconds) would otherwise hide the knee until the next
            // probe. Only a probe raises it.
            if recent < base {
                self.base_ms = Some(recent);
            }
        }
        let recent = recent_net.or(self.site_p50_ms);
        let (Some(base), Some(site)) = (self.base_ms, recent) else {
            self.places = self.places.clamp(fewest, most);
            return;
        };
        let binding = sum.recent_queued > 0;
        // Slow start only while even the slowest tenth of the last second
        // was as fast as the base: the median lags a second whose load
        // rose, and half again on a stale median has run past the knee.
        let recent_p90 = net_quantile(&sum.recent_site, &sum.recent_lag, 0.9).unwrap_or(site);
        let threshold = self.places_ssthresh.unwrap_or(f64::INFINITY);
        let places = if recent_p90 <= base * (1.0 + SLOW_START_BELOW) && self.places < threshold {
            // The site is as fast as with nothing to do: the places are
            // far from its knee, and may grow by half while they bind, up
            // to where the site last slowed.
            if binding {
                // Doubled while far below any site's knee (a few places a
                // gateway), by half after: the first seconds of a crowd are
                // spent here, and a knee is found at one tick's delay.
                let factor = if self.places < 4.0 * fewest { 2.0 } else { 1.5 };
                (self.places * factor).min(threshold)
            } else {
                self.places
            }
        } else {
            let gradient = (base * (1.0 + PLACES_BUFFER) / site).clamp(0.5, 2.0);
            let proposed = self.places * gradient + (self.places * gradient).sqrt();
            // Places grow only while they bind (a request waited for one in
            // the last second): a limit not in use would build an allowance
            // that a burst then finds, past what the site was seen to take.
            if proposed > self.places && !binding {
                self.places
            } else {
                // Smoothed (Gradient2's way): the latency read now is of
                // the places set a tick ago, and a full step on old news
                // swings the places between the floor and the collapse.
                let weight = if proposed > self.places { 0.2 } else { 0.5 };
                if proposed < self.places && site > base * (1.0 + PLACES_BUFFER) {
                    self.places_ssthresh = Some(self.places);
                }
                self.places * (1.0 - weight) + proposed * weight
            }
        };
        // Never far above what was in use: a limit the demand left behind
        // would let the next burst straight past the knee. (Not while they
        // bind, when the peak is the places themselves, nor while the
        // window still holds the probe's pinned seconds.)
        let places = if now >= self.probe_settle_until && !binding {
            places.min(USAGE_HEADROOM * sum.peak_in_flight as f64)
        } else {
            places
        };
        self.places = places.clamp(fewest, most);
        if self.places <= fewest {
            self.at_min += 1;
            if self.at_min >= 5 {
                self.at_min = 0;
                self.probe_at = now;
            }
        } else {
            self.at_min = 0;
        }
    }

    fn tick_pace(
        &mut self,
        window: &Window,
        settings: &Settings,
        facts: &Facts,
        admitted: u64,
        dt: f64,
        line_growth: f64,
    ) {
        let now = facts.now;
        let sum = &window.sum;
        let floor = settings.floor.min(settings.ceiling);
        let outcomes = sum.done + sum.failed + sum.busy;
        let errors = sum.failed + sum.busy;
        let error_rate = self.error_rate.unwrap_or(0.0);
        // The site is down: the floor at once, and the visitors are told.
        let down = outcomes >= MIN_SAMPLES && (sum.done == 0 || error_rate > 0.5);
        if down {
            self.pace = floor;
            self.trouble = true;
            self.trouble_ok = 0;
            self.phase = Phase::Ramp;
            self.ramp_at = now;
            self.reason = Reason::SiteDown;
            return;
        }
        if self.trouble && outcomes > 0 {
            if error_rate <= settings.max_error_rate {
                self.trouble_ok += 1;
                if self.trouble_ok >= 3 {
                    self.trouble = false;
                }
            } else {
                self.trouble_ok = 0;
            }
        }
        if outcomes < MIN_SAMPLES {
            self.reason = Reason::Idle;
            return;
        }
        if self.probing() || (now < self.probe_settle_until && !over_errors_now(sum, settings)) {
            // The places are pinned low on purpose: the line it builds says
            // nothing of the pace (nor, for a few seconds, what is left of
            // it).
            self.reason = Reason::Probe;
            return;
        }
        let p90 = self.p90_ms.unwrap_or(0.0);
        let target = settings.latency_p90_ms;
        // Requests piling up in front of the places: the line would take
        // more than a quarter of the target to clear at the site's pace.
        let per_second = outcomes as f64 / (WINDOW_MS as f64 / 1000.0);
        let piling = per_second > 0.0
            && sum.line as f64 / per_second * 1000.0 > target * PILING_SHARE_OF_TARGET;
        // The places are at the site's knee (it is slower than its buffer
        // allows) or at every place the gateways have: a line in front of
        // them is the pace's doing. While they can still grow, the line is
        // theirs to clear, and the pace holds.
        let at_knee = match (self.base_ms, self.site_p50_ms) {
            (Some(base), Some(site)) => site > base * (1.0 + PLACES_BUFFER),
            _ => false,
        };
        let places_stuck = at_knee || self.places >= sum.max_places as f64;
        let over_latency = p90 > target && places_stuck;
        let line_too_long = piling;
        let piling = piling && places_stuck;
        let over_errors = error_rate > settings.max_error_rate && errors >= 2;
        // (A short line while the places grow does not stop the ramp: the
        // ramp's own exit, a p90 past half the target, does.)
        if !places_stuck && (p90 > target || line_too_long) && !over_errors {
            self.reason = Reason::Hold;
            return;
        }
        if over_latency || over_errors || piling {
            let reason = if over_errors {
                Reason::Errors
            } else {
                Reason::Latency
            };
            let held = self
                .cut_at
                .is_some_and(|at| now.saturating_sub(at) < HOLD_MS);
            // The line in front of the places shrinks: the last cut is
            // working, and cutting again would be cutting on old news.
            // The line's trend, against what the site finishes: growing,
            // flat, or shrinking (the last cut is working, and cutting
            // again would be cutting on old news).
            let trend = if per_second > 0.0 {
                line_growth / per_second
            } else {
                0.0
            };
            let draining = !over_errors && trend < -LINE_FLAT / 5.0;
            if held || draining {
                self.reason = reason;
                return;
            }
            if !over_latency && !over_errors && trend <= LINE_FLAT {
                // A line that holds its length while the visitors see less
                // than the target: the site is full and keeps up with what
                // is let in (a correctly sized room at its ceiling has one).
                // Not a reason to cut the pace below what is used, nor to
                // grow it. A pace well above what is used (the room's
                // capacity lets in fewer, the visitors inside taking longer
                // at a slower site) is trimmed towards the use, so that it
                // says what the site takes.
                //
                // A line that holds its length while the visitors see close
                // to the target (past the healthy share) is held by
                // something other than the site: the visitors' own
                // connections, which send only so many requests at once,
                // so that the rest of the demand waits where no gateway
                // sees it. A site that lost capacity under a pace the room
                // still lets in shows exactly this; the pace is trimmed
                // until the visitors see a healthy latency again.
                let used = admitted as f64 / dt.max(0.001) * 60.0;
                if used < UNUSED_SHARE * self.pace {
                    self.pace = (self.pace * TRIM).max(used).max(floor);
                    self.reason = reason;
                } else if p90 > HEALTHY_SHARE * target {
                    self.pace = (self.pace * TRIM).max(floor);
                    self.reason = reason;
                } else {
                    self.reason = Reason::Hold;
                }
                return;
            }
            // The share of the demand the site keeps up with: what it
            // finishes against that plus what the line grows by.
            let keeping_up = if per_second > 0.0 {
                per_second / (per_second + line_growth.max(0.0))
            } else {
                0.0
            };
            let factor = if over_errors || trend > LINE_FLAT {
                keeping_up.clamp(0.5, BETA)
            } else {
                // The pace matches the site, with a line left over from
                // before: a trim, so that the line drains.
                TRIM
            };
            let cut = (self.pace * factor).max(floor);
            let plateau = if self.pace < self.w_max && self.phase == Phase::Steady {
                self.pace * (1.0 + BETA) / 2.0
            } else {
                self.pace
            };
            self.w_max = plateau.min(cut / BETA);
            self.pace = cut;
            self.phase = Phase::Steady;
            self.healthy_s = 0.0;
            self.cut_at = Some(now);
            self.cut_p90 = p90;
            self.reason = if cut <= floor { Reason::Floor } else { reason };
            return;
        }
        let healthy = p90 <= HEALTHY_SHARE * target && error_rate <= settings.max_error_rate / 2.0;
        let waiting = facts.serving && facts.waiting > 0;
        let allowed = self.pace / 60.0 * dt;
        let in_use = admitted as f64 + 1.0 >= 0.5 * allowed;
        // The site is full when requests wait for places that cannot grow.
        // Not while a probe pins the places.
        // Places held at the gateways' own bound (`max_in_flight_upstream`)
        // by a site that keeps its speed are the operator's sizing, not the
        // site's knee: while the visitors see less than half the target,
        // the pace grows towards its ceiling as it would with adaptive off.
        let site_bound = at_knee || p90 > target * PILING_SHARE_OF_TARGET;
        let full = !self.probing()
            && places_stuck
            && site_bound
            && sum.started > 0
            && sum.queued as f64 > QUEUED_SHARE * sum.started as f64;
        if !waiting || !in_use {
            self.reason = Reason::Idle;
            return;
        }
        if !healthy || full {
            if self.phase == Phase::Ramp && (full || p90 > target / 2.0) {
                // The first sign of a full site ends the ramp here.
                self.phase = Phase::Steady;
                self.w_max = self.pace;
                self.healthy_s = CUBIC_K;
            }
            self.reason = Reason::Hold;
            return;
        }
        if self.pace >= settings.ceiling {
            self.reason = Reason::Ceiling;
            return;
        }
        match self.phase {
            Phase::Ramp => {
                if p90 > target / 2.0 {
                    self.phase = Phase::Steady;
                    self.w_max = self.pace;
                    self.healthy_s = CUBIC_K;
                    self.reason = Reason::Hold;
                } else if now.saturating_sub(self.ramp_at) >= RAMP_MS {
                    self.pace *= 2.0;
                    self.ramp_at = now;
                    self.reason = Reason::Ramp;
                } else {
                    self.reason = Reason::Ramp;
                }
            }
            Phase::Steady => {
                self.healthy_s += dt;
                let offset = self.healthy_s - CUBIC_K;
                let curve = self.w_max * (1.0 + CUBIC_C * offset * offset * offset);
                self.pace = self.pace.max(curve);
                self.reason = Reason::Grow;
            }
        }
    }

    /// The state as hash fields (name, value), every one written each tick.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let optional =
            |value: Option<f64>| value.map_or_else(|| "none".to_owned(), |v| v.to_string());
        vec![
            ("pace", self.pace.to_string()),
            ("pace_phase", self.phase.as_str().to_owned()),
            ("pace_wmax", self.w_max.to_string()),
            ("pace_healthy_s", self.healthy_s.to_string()),
            (
                "pace_cut_at",
                self.cut_at
                    .map_or_else(|| "none".to_owned(), |at| at.to_string()),
            ),
            ("pace_cut_p90", self.cut_p90.to_string()),
            ("places_line", self.line.to_string()),
            ("pace_ramp_at", self.ramp_at.to_string()),
            ("pace_reason", self.reason.as_str().to_owned()),
            ("pace_changed_at", self.changed_at.to_string()),
            ("pace_trouble", u8::from(self.trouble).to_string()),
            ("pace_trouble_ok", self.trouble_ok.to_string()),
            ("places", self.places.to_string()),
            ("places_ssthresh", optional(self.places_ssthresh)),
            ("places_before_probe", self.places_before_probe.to_string()),
            ("places_base_ms", optional(self.base_ms)),
            ("places_probe_at", self.probe_at.to_string()),
            (
                "places_probe_until",
                self.probe_until
                    .map_or_else(|| "none".to_owned(), |at| at.to_string()),
            ),
            ("places_probe_settle", self.probe_settle_until.to_string()),
            ("places_at_min", self.at_min.to_string()),
            ("adaptive_at", self.ticked_at.to_string()),
            ("adaptive_admitted", self.admitted_mark.to_string()),
            ("adaptive_p90_ms", optional(self.p90_ms)),
            ("adaptive_site_p50_ms", optional(self.site_p50_ms)),
            ("adaptive_lag_p90_ms", optional(self.lag_p90_ms)),
            ("adaptive_error_rate", optional(self.error_rate)),
            ("adaptive_started", self.fleet_started.to_string()),
            ("adaptive_gateways", self.gateways.to_string()),
            (
                "places_shares",
                self.shares
                    .iter()
                    .map(|(id, share)| format!("{id}={share}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }

    /// The names [`Controller::fields`] writes: what a backend deletes when
    /// the controller is turned off.
    pub fn field_names() -> Vec<&'static str> {
        let blank = Controller::start(
            &Settings {
                enabled: true,
                floor: 1.0,
                ceiling: 1.0,
                latency_p90_ms: 1.0,
                max_error_rate: 0.1,
            },
            &Facts {
                now: 0,
                waiting: 0,
                admitted: 0,
                serving: false,
            },
        );
        blank.fields().into_iter().map(|(name, _)| name).collect()
    }

    /// The state read back from the hash; `None` when any field is missing
    /// or unreadable (the controller then starts over).
    pub fn from_fields(fields: &HashMap<String, String>) -> Option<Controller> {
        let text = |name: &str| fields.get(name).map(String::as_str);
        let real = |name: &str| text(name)?.parse::<f64>().ok().filter(|v| v.is_finite());
        let optional_real = |name: &str| match text(name)? {
            "none" => Some(None),
            value => value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some),
        };
        let whole = |name: &str| text(name)?.parse::<u64>().ok();
        let optional_whole = |name: &str| match text(name)? {
            "none" => Some(None),
            value => value.parse::<u64>().ok().map(Some),
        };
        Some(Controller {
            pace: real("pace")?,
            phase: match text("pace_phase")? {
                "ramp" => Phase::Ramp,
                "steady" => Phase::Steady,
                _ => return None,
            },
            w_max: real("pace_wmax")?,
            healthy_s: real("pace_healthy_s")?,
            cut_at: optional_whole("pace_cut_at")?,
            cut_p90: real("pace_cut_p90")?,
            line: whole("places_line")?,
            ramp_at: whole("pace_ramp_at")?,
            reason: Reason::parse(text("pace_reason")?)?,
            changed_at: whole("pace_changed_at")?,
            trouble: text("pace_trouble")? == "1",
            trouble_ok: u32::try_from(whole("pace_trouble_ok")?).ok()?,
            places: real("places")?,
            places_ssthresh: optional_real("places_ssthresh")?,
            places_before_probe: real("places_before_probe")?,
            base_ms: optional_real("places_base_ms")?,
            probe_at: whole("places_probe_at")?,
            probe_until: optional_whole("places_probe_until")?,
            probe_settle_until: whole("places_probe_settle")?,
            at_min: u32::try_from(whole("places_at_min")?).ok()?,
            ticked_at: whole("adaptive_at")?,
            admitted_mark: whole("adaptive_admitted")?,
            p90_ms: optional_real("adaptive_p90_ms")?,
            site_p50_ms: optional_real("adaptive_site_p50_ms")?,
            // Missing in a hash written before the lag was measured.
            lag_p90_ms: optional_real("adaptive_lag_p90_ms").flatten(),
            error_rate: optional_real("adaptive_error_rate")?,
            fleet_started: whole("adaptive_started")?,
            gateways: u32::try_from(whole("adaptive_gateways")?).ok()?,
            // Missing or unreadable: no shares yet (each gateway is told
            // an even split until the next tick).
            shares: text("places_shares")
                .map(|text| {
                    text.split(',')
                        .filter_map(|pair| {
                            let (id, share) = pair.split_once('=')?;
                            Some((id.to_owned(), share.parse().ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests;

/// Live changes to a room's `[room.adaptive]` (admin API), stored with the
/// room so that every gateway follows them. `None` leaves a setting as the
/// config has it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overrides {
    pub enabled: Option<bool>,
    pub min_admit_per_minute: Option<u32>,
    pub latency_p90_ms: Option<u32>,
    pub max_error_rate: Option<f64>,
}

impl Overrides {
    /// `self` with `change` over it.
    pub fn with(&self, change: &Overrides) -> Overrides {
        Overrides {
            enabled: change.enabled.or(self.enabled),
            min_admit_per_minute: change.min_admit_per_minute.or(self.min_admit_per_minute),
            latency_p90_ms: change.latency_p90_ms.or(self.latency_p90_ms),
            max_error_rate: change.max_error_rate.or(self.max_error_rate),
        }
    }

    /// The settings in force: the config's, these over them, under
    /// `ceiling` (the room's `admit_per_minute` in force). A floor above
    /// the ceiling (the ceiling lowered live) is the ceiling.
    pub fn settings(&self, config: &anteroom_config::Adaptive, ceiling: u32) -> Settings {
        let ceiling = f64::from(ceiling.max(1));
        let floor = self
            .min_admit_per_minute
            .unwrap_or(config.min_admit_per_minute.get());
        Settings {
            enabled: self.enabled.unwrap_or(config.enabled),
            floor: f64::from(floor.max(1)).min(ceiling),
            ceiling,
            latency_p90_ms: f64::from(self.latency_p90_ms.unwrap_or(config.latency_p90_ms)),
            max_error_rate: self.max_error_rate.unwrap_or(config.max_error_rate),
        }
    }
}

/// What a gateway learns from its report: the settings in force, the
/// controller's state (`None` while off), and its own share of the places
/// (`None`: no limit of the room's, adaptive admission being off).
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub settings: Settings,
    pub controller: Option<Controller>,
    pub share: Option<u64>,
    /// The store's time.
    pub taken_at: Millis,
}

impl View {
    /// The view for `report` of one gateway, from the room's controller.
    pub fn of(
        settings: Settings,
        controller: Option<Controller>,
        gateway: &str,
        report: &Report,
        now: Millis,
    ) -> View {
        let share = controller
            .as_ref()
            .filter(|_| settings.enabled)
            .map(|controller| controller.share_of(gateway, report.max_places));
        View {
            settings,
            controller: controller.filter(|_| settings.enabled),
            share,
            taken_at: now,
        }
    }

    /// The pace the bucket accrues at: the controller's, under the ceiling.
    pub fn pace(&self) -> f64 {
        match &self.controller {
            Some(controller) => controller.pace.min(self.settings.ceiling),
            None => self.settings.ceiling,
        }
    }
}

/// One report into a room's controller, shared by both backends: merges
/// the fresh reports, starts or ticks the controller when a tick is due.
/// Returns whether it ticked (the Redis backend then writes it back).
pub fn step(
    controller: &mut Option<Controller>,
    settings: &Settings,
    facts: &Facts,
    reports: &[(String, Millis, Report)],
) -> bool {
    if !settings.enabled {
        *controller = None;
        return false;
    }
    let current = controller.get_or_insert_with(|| Controller::start(settings, facts));
    if !current.due(facts.now) {
        return false;
    }
    let window = Window::merge(
        reports.iter().map(|(_, at, report)| (*at, report)),
        facts.now,
    );
    current.tick(&window, settings, facts);
    // Every counted gateway's share, from the reports the tick summed.
    current.shares = reports
        .iter()
        .filter(|(_, at, _)| facts.now.saturating_sub(*at) <= REPORT_STALE_MS)
        .map(|(id, _, report)| (id.clone(), current.share(report.started, report.max_places)))
        .collect();
    true
}
