//! A room's `adaptive` object in `GET /admin/rooms[/NAME]` and the
//! overview: its `[room.adaptive]` settings and what the controller last
//! decided (`docs/adaptive.md` §4).

use serde_json::json;

use crate::room::RoomRuntime;

/// `adaptive: {enabled, min_admit_per_minute, latency_p90_ms,
/// max_error_rate, pace, ceiling, phase, places, base_ms, p90_ms,
/// error_rate, reason, changed_at, trouble}` for `room`, whose ceiling is
/// `ceiling` (its live `admit_per_minute`).
///
/// A stand-in until the controller is wired into the gateway: it reports
/// the room's settings, the controller off (`reason` `off`, no trouble)
/// and nothing measured, so the dashboard can be built against the shape.
/// The wiring replaces this function with one that reads the room's
/// adaptive state.
pub(super) fn adaptive_figures(room: &RoomRuntime, ceiling: u32) -> serde_json::Value {
    let settings = &room.config.adaptive;
    json!({
        "enabled": false,
        "min_admit_per_minute": settings.min_admit_per_minute.get(),
        "latency_p90_ms": settings.latency_p90_ms,
        "max_error_rate": settings.max_error_rate,
        "pace": null,
        "ceiling": ceiling,
        "phase": null,
        "places": null,
        "base_ms": null,
        "p90_ms": null,
        "error_rate": null,
        "reason": "off",
        "changed_at": null,
        "trouble": false,
    })
}
