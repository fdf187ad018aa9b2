//! Prometheus metrics, served on the admin listener at `/metrics`.
//!
//! Labels come only from bounded sets: room names (from the config),
//! outcomes and error kinds (fixed lists), never a raw path or an address.
//! Counters on the request path are registered once, per room and outcome,
//! so counting a request allocates nothing. Figures that describe a room
//! (waiting, inside, ...) are read from the gateway's cached snapshot when
//! `/metrics` is scraped, so they cost the request path nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use anteroom_store::RoomState;

use crate::Shared;

/// Buckets for durations in seconds: upstream latency (milliseconds to
/// tens of seconds) and time waited in a queue (seconds to hours).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const WAIT_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. One process
/// has one recorder: several gateways in one process (tests) share it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("anteroom_upstream_response_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full("anteroom_room_wait_seconds".into()),
                    WAIT_BUCKETS,
                )
            })
            .and_then(|builder| {
                // The embedded drain's apply latency.
                builder.set_buckets_for_metric(
                    Matcher::Full("anteroom_buffer_apply_seconds".into()),
                    LATENCY_BUCKETS,
                )
            });
        match builder {
            Ok(builder) => builder.install_recorder().unwrap_or_else(|error| {
                // Another recorder is installed (embedding): metrics go
                // there, and our /metrics shows what this recorder saw.
                tracing::warn!(%error, "metrics recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            }),
            Err(error) => {
                tracing::warn!(%error, "metrics buckets rejected");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// How a request ended, for `anteroom_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Sent upstream and answered by it.
    Proxied,
    /// Answered with the waiting page or status of a waiting visitor.
    Waiting,
    /// `429`.
    RateLimited,
    /// A 4xx from the gateway itself (bad input, too large, closed room).
    Rejected,
    /// A 5xx from the gateway (upstream down or busy, store down).
    Error,
    /// The gateway's own endpoints (`/_anteroom/...`) answered normally.
    Gateway,
    /// A write stored in a buffer and answered `202`.
    Buffered,
}

/// `anteroom_requests_total` for one route label, one counter per outcome.
#[derive(Debug, Clone)]
pub struct RequestCounters {
    proxied: Counter,
    waiting: Counter,
    rate_limited: Counter,
    rejected: Counter,
    error: Counter,
    gateway: Counter,
    buffered: Counter,
}

impl RequestCounters {
    /// `route`: a room's name, `passthrough` or `anteroom`.
    pub fn new(route: &str) -> RequestCounters {
        let make = |outcome: &'static str| counter!("anteroom_requests_total", "route" => route.to_owned(), "outcome" => outcome);
        RequestCounters {
            proxied: make("proxied"),
            waiting: make("waiting"),
            rate_limited: make("rate_limited"),
            rejected: make("rejected"),
            error: make("error"),
            gateway: make("gateway"),
            buffered: make("buffered"),
        }
    }

    pub fn count(&self, outcome: RequestOutcome) {
        match outcome {
            RequestOutcome::Proxied => &self.proxied,
            RequestOutcome::Waiting => &self.waiting,
            RequestOutcome::RateLimited => &self.rate_limited,
            RequestOutcome::Rejected => &self.rejected,
            RequestOutcome::Error => &self.error,
            RequestOutcome::Gateway => &self.gateway,
            RequestOutcome::Buffered => &self.buffered,
        }
        .increment(1);
    }
}

/// Per-room metrics recorded on the request path.
#[derive(Debug, Clone)]
pub struct RoomMetrics {
    pub requests: RequestCounters,
    /// Ticket issued → admitted (at the swap for a pass).
    pub wait: Histogram,
    pub direct_entries: Counter,
    /// Arrivals whose reply was lost, voided in the store afterwards so
    /// that they hold no slot.
    pub arrivals_voided: Counter,
    /// Times this gateway saw the store carry the line on after it lost the
    /// room's state or its counters went back (the generation went up).
    pub line_restored: Counter,
}

impl RoomMetrics {
    pub fn new(room: &str) -> RoomMetrics {
        RoomMetrics {
            requests: RequestCounters::new(room),
            wait: histogram!("anteroom_room_wait_seconds", "room" => room.to_owned()),
            direct_entries: counter!("anteroom_room_direct_entries_total", "room" => room.to_owned()),
            arrivals_voided: counter!("anteroom_room_arrivals_voided_total", "room" => room.to_owned()),
            line_restored: counter!("anteroom_room_line_restored_total", "room" => room.to_owned()),
        }
    }
}

pub fn upstream_response(elapsed: Duration) {
    histogram!("anteroom_upstream_response_seconds").record(elapsed.as_secs_f64());
    UPSTREAM_TOTALS.responses.fetch_add(1, Ordering::Relaxed);
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    UPSTREAM_TOTALS
        .latency_micros
        .fetch_add(micros, Ordering::Relaxed);
}

/// `kind`: one of [`UPSTREAM_ERROR_KINDS`].
pub fn upstream_error(kind: &'static str) {
    counter!("anteroom_upstream_errors_total", "kind" => kind).increment(1);
    if let Some(index) = UPSTREAM_ERROR_KINDS.iter().position(|known| *known == kind) {
        UPSTREAM_TOTALS.errors[index].fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a request to the upstream failed, as counted by [`upstream_error`].
pub const UPSTREAM_ERROR_KINDS: [&str; 5] = [
    "unreachable",
    "timeout",
    "busy",
    "body_too_large",
    "client_body",
];

/// The upstream's totals so far, for the dashboard (`/admin/overview`):
/// counters that a reader differences between two polls to get the mean
/// latency and the error rate of that interval. The same events as
/// `anteroom_upstream_response_seconds` and `anteroom_upstream_errors_total`,
/// and, like them, per process (one gateway per process in production).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpstreamTotals {
    /// Responses whose head came back from the upstream.
    pub responses: u64,
    /// Their latencies (request sent to response head), added up.
    pub response_seconds_sum: f64,
    /// Failures, in the order of [`UPSTREAM_ERROR_KINDS`].
    pub errors: [u64; UPSTREAM_ERROR_KINDS.len()],
}

pub fn upstream_totals() -> UpstreamTotals {
    UpstreamTotals {
        responses: UPSTREAM_TOTALS.responses.load(Ordering::Relaxed),
        response_seconds_sum: UPSTREAM_TOTALS.latency_micros.load(Ordering::Relaxed) as f64
            / 1_000_000.0,
        errors: std::array::from_fn(|index| UPSTREAM_TOTALS.errors[index].load(Ordering::Relaxed)),
    }
}

/// Plain atomics beside the recorder: reading the recorder's histogram
/// back would mean rendering the whole exposition text on every poll.
/// Relaxed ordering: each counter is exact on its own, and a reader may
/// see a response counted a moment before its latency (harmless between
/// polls a second apart).
struct AtomicUpstreamTotals {
    responses: AtomicU64,
    /// Microseconds: an integer sum stays exact, and u64 holds 584,000
    /// years of them.
    latency_micros: AtomicU64,
    errors: [AtomicU64; UPSTREAM_ERROR_KINDS.len()],
}

static UPSTREAM_TOTALS: AtomicUpstreamTotals = AtomicUpstreamTotals {
    responses: AtomicU64::new(0),
    latency_micros: AtomicU64::new(0),
    errors: [const { AtomicU64::new(0) }; UPSTREAM_ERROR_KINDS.len()],
};

/// How a call to the store went, for `anteroom_store_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCall {
    Answered,
    Failed,
}

pub fn store_call(call: StoreCall) {
    let result = match call {
        StoreCall::Answered => "ok",
        StoreCall::Failed => "error",
    };
    counter!("anteroom_store_requests_total", "result" => result).increment(1);
}

pub fn connection_opened(listener: &'static str) {
    gauge!("anteroom_open_connections", "listener" => listener).increment(1.0);
}

pub fn connection_closed(listener: &'static str) {
    gauge!("anteroom_open_connections", "listener" => listener).decrement(1.0);
}

/// A connection answered at once and closed: over `max_connections`, or
/// over `max_connections_per_client` (`reason` says which).
pub fn connection_refused(listener: &'static str, reason: &'static str) {
    counter!("anteroom_connections_refused_total", "listener" => listener, "reason" => reason)
        .increment(1);
}

/// Sets the figures read at scrape time and renders the exposition text.
pub fn render(shared: &Shared) -> String {
    for room in &shared.rooms {
        let name = room.name().to_owned();
        let Some(snapshot) = room.snapshot() else {
            continue;
        };
        let waiting = snapshot.waiting();
        gauge!("anteroom_room_waiting", "room" => name.clone()).set(waiting as f64);
        gauge!("anteroom_room_inside", "room" => name.clone()).set(snapshot.inside as f64);
        gauge!("anteroom_room_arriving", "room" => name.clone()).set(snapshot.pending as f64);
        gauge!("anteroom_room_capacity", "room" => name.clone()).set(f64::from(snapshot.capacity));
        gauge!("anteroom_room_admit_per_minute", "room" => name.clone())
            .set(f64::from(snapshot.admit_per_minute));
        gauge!("anteroom_room_admissions_per_minute", "room" => name.clone())
            .set(room.admissions_per_minute());
        let eta = if waiting > 0 {
            room.eta_seconds(waiting)
        } else {
            0
        };
        gauge!("anteroom_room_eta_seconds", "room" => name.clone()).set(eta as f64);
        counter!("anteroom_room_tickets_issued_total", "room" => name.clone())
            .absolute(snapshot.issued);
        counter!("anteroom_room_admitted_total", "room" => name.clone())
            .absolute(snapshot.admitted_through);
        counter!("anteroom_room_sessions_expired_total", "room" => name.clone())
            .absolute(snapshot.sessions_expired);
        counter!("anteroom_room_no_shows_total", "room" => name.clone())
            .absolute(snapshot.no_shows);
        // A room with a scheduled opening: its pre-queue (final once
        // drawn) and, before the draw, the seconds to the opening.
        if let Some(pre_queue) = snapshot.pre_queue() {
            gauge!("anteroom_room_pre_queue", "room" => name.clone()).set(pre_queue as f64);
            let opens_in = snapshot
                .schedule
                .opens_at
                .filter(|_| snapshot.before_draw())
                .map_or(0, |at| at.saturating_sub(shared.store_clock.now()) / 1000);
            gauge!("anteroom_room_opens_in_seconds", "room" => name.clone()).set(opens_in as f64);
        }
        for state in [RoomState::Open, RoomState::Paused, RoomState::Closed] {
            gauge!("anteroom_room_state", "room" => name.clone(), "state" => state.as_str())
                .set(if snapshot.state == state { 1.0 } else { 0.0 });
        }
        adaptive(room, &name);
    }
    gauge!("anteroom_upstream_in_flight").set(shared.proxy.in_flight() as f64);
    gauge!("anteroom_unfinished_body_bytes").set(shared.bodies.held() as f64);
    gauge!("anteroom_store_reachable").set(if shared.health.is_down() { 0.0 } else { 1.0 });
    // How far the store's clock is from this gateway's (the store's minus
    // ours), as the last step measured it: every shared time is the store's,
    // so this is what the gateway adds to its own clock, not an error; a
    // large figure only says the host's clock is off.
    gauge!("anteroom_store_clock_offset_seconds")
        .set(shared.store_clock.offset_ms() as f64 / 1000.0);
    let (requests, tickets) = shared.limits.tracked();
    gauge!("anteroom_rate_limiter_clients", "limit" => "requests").set(requests as f64);
    gauge!("anteroom_rate_limiter_clients", "limit" => "tickets").set(tickets as f64);
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// A room's adaptive admission, as the latest report learned it: the pace
/// in force (the ceiling while off), the targets, what the last tick saw,
/// the places (fleet-wide, and this gateway's share), and the reason for
/// the pace (one of a fixed set at 1, the others at 0).
fn adaptive(room: &crate::room::RoomRuntime, name: &str) {
    let Some(view) = room.adaptive() else {
        return;
    };
    let label = || name.to_owned();
    gauge!("anteroom_room_adaptive_pace_per_minute", "room" => label()).set(view.pace());
    gauge!("anteroom_room_adaptive_enabled", "room" => label()).set(if view.settings.enabled {
        1.0
    } else {
        0.0
    });
    gauge!("anteroom_room_adaptive_target_p90_seconds", "room" => label())
        .set(view.settings.latency_p90_ms / 1000.0);
    gauge!("anteroom_room_adaptive_max_error_ratio", "room" => label())
        .set(view.settings.max_error_rate);
    let controller = view.controller.as_ref();
    let reason = controller.map_or(anteroom_store::adaptive::Reason::Off, |c| c.reason);
    for each in anteroom_store::adaptive::Reason::ALL {
        gauge!("anteroom_room_adaptive_reason", "room" => label(), "reason" => each.as_str())
            .set(if each == reason { 1.0 } else { 0.0 });
    }
    gauge!("anteroom_room_adaptive_trouble", "room" => label()).set(
        if controller.is_some_and(|c| c.trouble) {
            1.0
        } else {
            0.0
        },
    );
    if let Some(controller) = controller {
        gauge!("anteroom_room_adaptive_places", "room" => label()).set(controller.places);
        if let Some(p90) = controller.p90_ms {
            gauge!("anteroom_room_adaptive_p90_seconds", "room" => label()).set(p90 / 1000.0);
        }
        if let Some(errors) = controller.error_rate {
            gauge!("anteroom_room_adaptive_error_ratio", "room" => label()).set(errors);
        }
    }
    if let Some(share) = view.share {
        gauge!("anteroom_room_upstream_places", "room" => label()).set(share as f64);
    }
}
