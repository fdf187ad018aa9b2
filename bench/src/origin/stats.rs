//! The load the site has seen, for `/_stats`: requests, connections,
//! requests in flight (now and at most), timeouts and slowed requests; and
//! what it serves well, now and over time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, Response, StatusCode};
use serde_json::json;

use super::{Body, CapacityPlan, json_response, method_not_allowed};

/// What the site has seen since it started.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) requests: AtomicU64,
    pub(super) connections: AtomicU64,
    pub(super) current_concurrency: AtomicU64,
    pub(super) max_concurrency: AtomicU64,
    /// `503`s the site gave because a request timed out in the melt.
    pub(super) timeouts: AtomicU64,
    /// Requests that took longer than `service_time` (the site was slow).
    pub(super) slowed: AtomicU64,
}

/// Counts a request as in flight for as long as it lives.
pub(super) struct InFlight<'a> {
    stats: &'a Stats,
    /// Requests in flight when this one started, itself included.
    pub(super) at_start: u64,
}

impl<'a> InFlight<'a> {
    pub(super) fn enter(stats: &'a Stats) -> InFlight<'a> {
        let now = stats.current_concurrency.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_concurrency.fetch_max(now, Ordering::SeqCst);
        InFlight {
            stats,
            at_start: now,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats
            .current_concurrency
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// `/_stats`: the figures as JSON, with `bookings` taken so far and, for a
/// site that melts, its capacity `uptime` after it started and the points
/// where that changed (`capacity_timeline`, seconds from its start: a
/// report aligns them with its own clock through `uptime_seconds`).
pub(super) fn answer(
    stats: &Stats,
    bookings: u64,
    uptime: Duration,
    capacity: Option<&CapacityPlan>,
    method: &Method,
) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return method_not_allowed("GET, HEAD");
    }
    let timeline: Vec<_> = capacity
        .map(|plan| plan.changes_until(uptime))
        .unwrap_or_default()
        .into_iter()
        .map(|change| json!({"at_seconds": change.at.as_secs_f64(), "capacity": change.capacity}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "requests": stats.requests.load(Ordering::Relaxed),
            "connections": stats.connections.load(Ordering::Relaxed),
            "max_concurrency": stats.max_concurrency.load(Ordering::SeqCst),
            "current_concurrency": stats.current_concurrency.load(Ordering::SeqCst),
            "timeouts": stats.timeouts.load(Ordering::Relaxed),
            "slowed": stats.slowed.load(Ordering::Relaxed),
            "bookings": bookings,
            "uptime_seconds": uptime.as_secs_f64(),
            "capacity": capacity.map(|plan| plan.melt_at(uptime).capacity),
            "capacity_timeline": timeline,
        }),
    )
}
