//! A room's upstream figures over its last few seconds as this gateway saw
//! them: what it reports to the store once a second, for the adaptive
//! controller to merge with every other gateway's (docs/adaptive.md, "What
//! each gateway measures"; the format is `anteroom_store::adaptive::Report`).
//!
//! The proxy records on the request path into a ring of one-second buckets
//! with relaxed atomics: no lock, no allocation. A bucket is keyed by the
//! whole second it holds, counted on a monotonic clock from the recorder's
//! origin; the first sample of a new second takes over the bucket of the
//! second [`RING`] before and clears it. Seconds without a sample leave
//! their bucket to an older second, which a report then leaves out.
//!
//! Races tolerated, all at a second's boundary and each worth a few
//! samples: a sample racing the clearing of its bucket may be wiped by it;
//! a request that read the time just before a boundary and records just
//! after it may land in the newer second; a report read while a bucket is
//! cleared sees part of the old second. The figures feed a controller that
//! looks at three seconds of many requests; they are not an account.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anteroom_store::adaptive::{BUCKETS, Histogram, Report, WINDOW_MS};
use http::StatusCode;
use tokio::time::Instant;

use super::places::Taken;

/// Seconds a report covers: the whole seconds before the current one.
const SECONDS: usize = (WINDOW_MS / 1000) as usize;
const _: () = assert!(SECONDS >= 1, "a report covers at least one second");
/// The ring holds those and the current one, being filled.
const RING: usize = SECONDS + 1;

/// One room's figures, written by its requests, read once a second.
#[derive(Debug)]
pub struct Recorder {
    /// Second 1 starts here (0 marks a bucket never used).
    origin: Instant,
    /// This gateway's `max_in_flight_upstream`.
    max_places: u64,
    ring: [Second; RING],
    /// Requests waiting for a place right now.
    line: AtomicU64,
    /// The room's requests at the site right now.
    at_site: AtomicU64,
}

/// A request in line for a place: counted in the line until dropped.
#[derive(Debug)]
#[must_use = "the request leaves the line when this is dropped"]
pub struct InLine<'a> {
    recorder: &'a Recorder,
}

/// A request at the site: counted among the room's requests there until
/// dropped (with its response body, as its places are).
#[derive(Debug)]
#[must_use = "the request leaves the site when this is dropped"]
pub struct AtSite {
    recorder: Arc<Recorder>,
}

/// What a response's head says of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Anything but a `5xx`.
    Done,
    /// A `5xx`.
    Failed,
}

impl Outcome {
    pub fn of(status: StatusCode) -> Outcome {
        if status.is_server_error() {
            Outcome::Failed
        } else {
            Outcome::Done
        }
    }
}

/// One second's figures.
#[derive(Debug)]
struct Second {
    /// The second held (from 1), 0 for none yet.
    second: AtomicU64,
    started: AtomicU64,
    queued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    busy: AtomicU64,
    peak_at_site: AtomicU64,
    site: Counts,
    seen: Counts,
    probe: Counts,
    lag: Counts,
}

/// A [`Histogram`] that requests add to at once.
#[derive(Debug)]
struct Counts([AtomicU64; BUCKETS]);

impl Recorder {
    /// A recorder whose seconds count from `origin`, for a gateway whose
    /// `max_in_flight_upstream` is `max_places`.
    pub fn new(max_places: u64, origin: Instant) -> Recorder {
        Recorder {
            origin,
            max_places,
            ring: std::array::from_fn(|_| Second::new()),
            line: AtomicU64::new(0),
            at_site: AtomicU64::new(0),
        }
    }

    /// A request asked for a place at the site.
    pub fn started(&self, now: Instant) {
        add(&self.second(now).started, 1);
    }

    /// The request that asked at `now` found no free place: it is in line
    /// until the returned guard is dropped.
    pub fn queued(&self, now: Instant) -> InLine<'_> {
        add(&self.second(now).queued, 1);
        add(&self.line, 1);
        InLine { recorder: self }
    }

    /// The wait for a place ran out at `now`, `seen` after the request
    /// asked: the visitor gets `503`.
    pub fn busy(&self, now: Instant, seen: Duration) {
        let second = self.second(now);
        add(&second.busy, 1);
        second.seen.record(seen);
    }

    /// A request goes to the site at `now`.
    pub fn at_site(self: &Arc<Self>, now: Instant) -> AtSite {
        let at_site = self.at_site.fetch_add(1, Ordering::Relaxed) + 1;
        self.second(now)
            .peak_at_site
            .fetch_max(at_site, Ordering::Relaxed);
        AtSite {
            recorder: Arc::clone(self),
        }
    }

    /// The site's response head with `status` arrived at `now`: `site`
    /// after the request was sent, `seen` after it asked for a place. A
    /// `5xx` counts as failed, anything else as done; the latencies count
    /// either way, and in the probe's histogram too when the place was
    /// taken under a probe.
    pub fn answered(
        &self,
        now: Instant,
        status: StatusCode,
        site: Duration,
        seen: Duration,
        taken: Taken,
    ) {
        let second = self.second(now);
        match Outcome::of(status) {
            Outcome::Done => add(&second.done, 1),
            Outcome::Failed => add(&second.failed, 1),
        }
        second.site.record(site);
        second.seen.record(seen);
        if taken == Taken::WhileProbing {
            second.probe.record(site);
        }
    }

    /// The site gave no answer (timed out, unreachable) by `now`, `seen`
    /// after the request asked for a place.
    pub fn no_answer(&self, now: Instant, seen: Duration) {
        let second = self.second(now);
        add(&second.failed, 1);
        second.seen.record(seen);
    }

    /// The gateway's runtime woke a timer `lag` late at `now` (see
    /// [`sample_lag`]).
    pub fn lagged(&self, now: Instant, lag: Duration) {
        self.second(now).lag.record(lag);
    }

    /// Requests waiting for a place right now.
    pub fn line(&self) -> u64 {
        self.line.load(Ordering::Relaxed)
    }

    /// The room's requests at the site right now.
    pub fn in_flight(&self) -> u64 {
        self.at_site.load(Ordering::Relaxed)
    }

    /// The last [`SECONDS`] whole seconds before `now`'s (the current one,
    /// still filling, is left for the next report: the controller reads the
    /// latest second's `recent_queued` and `recent_site`, and a second just
    /// begun would say nothing), summed oldest first as
    /// [`Report::add_second`] does: counts and histograms add up, the peak is
    /// the highest, and the latest second gives `recent_queued` and
    /// `recent_site`. `line` is the line right now, and the latest second's
    /// peak at least the requests at the site now (a second without a new
    /// request has no bucket of its own, though the requests before it may
    /// still be there).
    pub fn report(&self, now: Instant) -> Report {
        let current = self.second_of(now);
        let newest = current.saturating_sub(1);
        let mut window = Report::default();
        if newest >= 1 {
            let oldest = newest.saturating_sub(SECONDS as u64 - 1).max(1);
            for second in oldest..=newest {
                let slot = self.slot(second);
                let mut figures = if slot.second.load(Ordering::Acquire) == second {
                    slot.figures()
                } else {
                    Report::default()
                };
                if second == newest {
                    figures.peak_in_flight = figures.peak_in_flight.max(self.in_flight());
                }
                window.add_second(&figures);
            }
        }
        window.line = self.line();
        window.max_places = self.max_places;
        window
    }

    /// `now`'s whole second on the recorder's clock, from 1: a report sent
    /// when it changes holds the second that just ended (the room's loop
    /// reports then, so that the latest second is a fresh one).
    pub fn current_second(&self, now: Instant) -> u64 {
        self.second_of(now)
    }

    /// `now`'s whole second, from 1.
    fn second_of(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() + 1
    }

    fn slot(&self, second: u64) -> &Second {
        &self.ring[(second % RING as u64) as usize]
    }

    /// `now`'s bucket, taken over from an older second if need be.
    fn second(&self, now: Instant) -> &Second {
        let second = self.second_of(now);
        let slot = self.slot(second);
        let held = slot.second.load(Ordering::Acquire);
        // Exactly one request wins the bucket for the new second and clears
        // it; the others record into it at once (see the module's comment
        // for the samples this may cost). A bucket already holding a newer
        // second (this request read the time long ago) takes the sample.
        if held < second
            && slot
                .second
                .compare_exchange(held, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            slot.clear(self.in_flight());
        }
        slot
    }
}

impl Second {
    fn new() -> Second {
        Second {
            second: AtomicU64::new(0),
            started: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            peak_at_site: AtomicU64::new(0),
            site: Counts::new(),
            seen: Counts::new(),
            probe: Counts::new(),
            lag: Counts::new(),
        }
    }

    /// Starts the second afresh, with the requests already at the site.
    fn clear(&self, at_site: u64) {
        for count in [
            &self.started,
            &self.queued,
            &self.done,
            &self.failed,
            &self.busy,
        ] {
            count.store(0, Ordering::Relaxed);
        }
        self.peak_at_site.store(at_site, Ordering::Relaxed);
        self.site.clear();
        self.seen.clear();
        self.probe.clear();
        self.lag.clear();
    }

    fn figures(&self) -> Report {
        Report {
            started: self.started.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            peak_in_flight: self.peak_at_site.load(Ordering::Relaxed),
            site: self.site.read(),
            seen: self.seen.read(),
            probe: self.probe.read(),
            lag: self.lag.read(),
            ..Report::default()
        }
    }
}

impl Counts {
    fn new() -> Counts {
        Counts(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    fn record(&self, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        add(&self.0[Histogram::bucket_of(ms)], 1);
    }

    fn clear(&self) {
        for count in &self.0 {
            count.store(0, Ordering::Relaxed);
        }
    }

    fn read(&self) -> Histogram {
        Histogram(std::array::from_fn(|index| {
            self.0[index].load(Ordering::Relaxed)
        }))
    }
}

/// How often [`sample_lag`] measures the runtime's lag: 50 samples a
/// second, enough for a second's p90, at a cost of 50 timer wake-ups.
pub const LAG_PERIOD: Duration = Duration::from_millis(20);

/// Measures this gateway's own delay until `stop` completes: sleeps
/// [`LAG_PERIOD`] again and again and records into every recorder how much
/// later than asked it woke. A runtime short of CPU wakes a timer late as
/// it reads a response late, so the site's latencies measured in the same
/// second carry about this much of the gateway's own making (the
/// controller takes it out: `anteroom_store::adaptive::net_quantile`).
pub async fn sample_lag(
    recorders: Vec<Arc<Recorder>>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let asked = Instant::now();
        tokio::select! {
            () = tokio::time::sleep(LAG_PERIOD) => {}
            () = &mut stop => return,
        }
        let woke = Instant::now();
        let lag = woke
            .saturating_duration_since(asked)
            .saturating_sub(LAG_PERIOD);
        for recorder in &recorders {
            recorder.lagged(woke, lag);
        }
    }
}

fn add(count: &AtomicU64, by: u64) {
    count.fetch_add(by, Ordering::Relaxed);
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.recorder.line.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for AtSite {
    fn drop(&mut self) {
        self.recorder.at_site.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
