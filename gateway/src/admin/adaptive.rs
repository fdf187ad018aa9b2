//! A room's `adaptive` object in `GET /admin/rooms[/NAME]` and the
//! overview: its `[room.adaptive]` settings and what the controller last
//! decided (`docs/adaptive.md` §4).

use serde_json::json;

use crate::room::RoomRuntime;

/// `adaptive: {enabled, min_admit_per_minute, latency_p90_ms,
/// max_error_rate, ceiling, pace, phase, places, share, base_ms, p90_ms,
/// site_p50_ms, lag_p90_ms, error_rate, reason, changed_at, probing,
/// trouble, gateways}`
/// for `room`, as its latest report learned it: the settings in force (the
/// config's, and `ceiling`, its live `admit_per_minute`, until the first
/// report is answered), and the controller's state while it runs (`null`s
/// and `reason` `off` while it does not).
pub(super) fn adaptive_figures(room: &RoomRuntime, ceiling: u32) -> serde_json::Value {
    let view = room.adaptive();
    let config = &room.config.adaptive;
    let settings = view.as_ref().map(|view| view.settings);
    let controller = view.as_ref().and_then(|view| view.controller.as_ref());
    let rounded = |value: f64| (value * 10.0).round() / 10.0;
    json!({
        "enabled": settings.map_or(config.enabled, |settings| settings.enabled),
        "min_admit_per_minute": settings.map_or(u64::from(config.min_admit_per_minute.get()), |settings| {
            settings.floor as u64
        }),
        "latency_p90_ms": settings.map_or(u64::from(config.latency_p90_ms), |settings| {
            settings.latency_p90_ms as u64
        }),
        "max_error_rate": settings.map_or(config.max_error_rate, |settings| settings.max_error_rate),
        "ceiling": settings.map_or(u64::from(ceiling), |settings| settings.ceiling as u64),
        "pace": controller.and(view.as_ref()).map(|view| rounded(view.pace())),
        "phase": controller.map(|controller| controller.phase.as_str()),
        "places": controller.map(|controller| rounded(controller.places)),
        "share": view.as_ref().and_then(|view| view.share),
        "base_ms": controller.and_then(|controller| controller.base_ms).map(rounded),
        "p90_ms": controller.and_then(|controller| controller.p90_ms).map(rounded),
        "site_p50_ms": controller.and_then(|controller| controller.site_p50_ms).map(rounded),
        "lag_p90_ms": controller.and_then(|controller| controller.lag_p90_ms).map(rounded),
        "error_rate": controller.and_then(|controller| controller.error_rate),
        "reason": controller.map_or("off", |controller| controller.reason.as_str()),
        "changed_at": controller.map(|controller| controller.changed_at),
        "probing": controller.is_some_and(|controller| controller.probing()),
        "trouble": controller.is_some_and(|controller| controller.trouble),
        "gateways": controller.map(|controller| controller.gateways),
    })
}
