//! The admin listener: health, readiness, the rooms' admin API and the
//! operator's dashboard.
//!
//! `GET /admin/rooms`, `GET /admin/rooms/NAME` and `PATCH /admin/rooms/NAME`
//! need `Authorization: Bearer <admin_token>` (compared in constant time).
//! Without a configured token the API only reads. A change is stored in the
//! store, so it reaches every gateway at its next step (100 ms) and survives
//! restarts; the config file stays the starting point.
//!
//! The dashboard (`dashboard`) is a page without data, served to anyone who
//! reaches the listener; it reads `GET /admin/overview` (`overview`) and
//! changes rooms through the same API, with the token the operator types in.

mod adaptive;
mod dashboard;
mod overview;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use anteroom_config::schedule;
use anteroom_store::{Changed, Millis, Phase, Refusal, RoomChange, RoomState, ScheduleChange};

use crate::respond::{json_error, json_response};
use crate::room::RoomRuntime;
use crate::{Body, Shared};

/// The largest `PATCH` body we read: a change is a few dozen bytes.
const MAX_CHANGE_BYTES: usize = 4096;

/// Bounds on live settings: a typo must not open the floodgates.
const MAX_CAPACITY: u32 = 10_000_000;
const MAX_ADMIT_PER_MINUTE: u32 = 10_000_000;

pub async fn handle<B>(shared: &Shared, request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::BoxError>,
{
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/healthz") => {
            json_response(StatusCode::OK, &serde_json::json!({"status": "alive"}))
        }
        (&Method::GET, "/readyz") => readiness(shared).await,
        (&Method::GET, "/metrics") => {
            let mut response = Response::new(crate::full_body(Bytes::from(
                crate::metrics::render(shared),
            )));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        (_, "/admin/") | (_, "/admin/dashboard") => match *request.method() {
            Method::GET | Method::HEAD => dashboard::page(),
            _ => method_not_allowed("GET, HEAD"),
        },
        (_, "/admin/overview") => {
            if let Err(response) = authorize(shared, &request) {
                return *response;
            }
            match *request.method() {
                Method::GET => overview::overview(shared).await,
                _ => method_not_allowed("GET"),
            }
        }
        (_, "/admin/rooms") | (_, "/admin/rooms/") => {
            if let Err(response) = authorize(shared, &request) {
                return *response;
            }
            match *request.method() {
                Method::GET => rooms(shared),
                _ => method_not_allowed("GET"),
            }
        }
        (_, room_path) if room_path.starts_with("/admin/rooms/") => {
            if let Err(response) = authorize(shared, &request) {
                return *response;
            }
            let name = &room_path["/admin/rooms/".len()..];
            let Some(room) = shared.rooms.iter().find(|room| room.name() == name) else {
                return json_error(StatusCode::NOT_FOUND, "no such room");
            };
            match *request.method() {
                Method::GET => json_response(StatusCode::OK, &figures(shared, room)),
                Method::PATCH => change(shared, room, request).await,
                _ => method_not_allowed("GET, PATCH"),
            }
        }
        (_, buffer_path) if buffer_path.starts_with("/admin/buffers") => {
            if let Err(response) = authorize(shared, &request) {
                return *response;
            }
            if request.method() != Method::GET {
                return method_not_allowed("GET");
            }
            let name = buffer_path["/admin/buffers".len()..].trim_matches('/');
            buffers(shared, name).await
        }
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn store_unreachable(error: &anteroom_store::StoreError) -> Response<Body> {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"error": "store unreachable", "reason": error.to_string()}),
    )
}

/// Dead letters listed per buffer in `GET /admin/buffers/NAME`.
const DEAD_LETTERS_SHOWN: usize = 100;

/// `GET /admin/buffers`: every buffer's figures; `GET /admin/buffers/NAME`:
/// one buffer's, with its oldest dead letters (request line, receipt, why),
/// so the operator can see what was not applied.
async fn buffers(shared: &Shared, name: &str) -> Response<Body> {
    let mut listed = Vec::new();
    for buffer in shared.intake.buffers() {
        if !name.is_empty() && buffer.config.name != name {
            continue;
        }
        let mut figures = match buffer_figures(shared, buffer).await {
            Ok(figures) => figures,
            Err(error) => return store_unreachable(&error),
        };
        if !name.is_empty() {
            let dead = match shared
                .buffers
                .dead_letters(&buffer.params, DEAD_LETTERS_SHOWN)
                .await
            {
                Ok(dead) => dead,
                Err(error) => return store_unreachable(&error),
            };
            let dead: Vec<serde_json::Value> = dead
                .iter()
                .map(|letter| {
                    let request = anteroom_store::BufferedRequest::decode(&letter.request).ok();
                    serde_json::json!({
                        "receipt": letter.receipt,
                        "idempotency_key": letter.idempotency_key,
                        // The key as the client sent it; the one above is
                        // scoped to the visitor (what the site was sent).
                        "client_idempotency_key": request
                            .as_ref()
                            .and_then(|request| request.client_idempotency_key.clone()),
                        "why": letter.why,
                        "attempts": letter.attempts,
                        "method": request.as_ref().map(|request| request.method.clone()),
                        "target": request.as_ref().map(|request| request.target.clone()),
                        "received_at_ms": request.as_ref().map(|request| request.received_at),
                        // Personal data: shown only behind a configured token.
                        "body": request
                            .as_ref()
                            .filter(|_| shared.config.secrets.admin_token.is_some())
                            .map(|request| String::from_utf8_lossy(&request.body).into_owned()),
                    })
                })
                .collect();
            figures["dead_letters"] = serde_json::Value::Array(dead);
            return json_response(StatusCode::OK, &figures);
        }
        listed.push(figures);
    }
    if !name.is_empty() {
        return json_error(StatusCode::NOT_FOUND, "no such buffer");
    }
    json_response(StatusCode::OK, &serde_json::json!({ "buffers": listed }))
}

/// One buffer's settings and figures (one store round trip), without its
/// dead letters.
async fn buffer_figures(
    shared: &Shared,
    buffer: &crate::intake::BufferRuntime,
) -> Result<serde_json::Value, anteroom_store::StoreError> {
    let stats = shared.buffers.buffer_stats(&buffer.params).await?;
    Ok(serde_json::json!({
        "name": buffer.config.name,
        "room": buffer.config.room,
        "method": buffer.config.method.as_str(),
        "path": buffer.config.path,
        "drain_per_second": buffer.params.drain_per_second,
        "max_in_flight": buffer.params.max_in_flight,
        "max_depth": buffer.params.max_depth,
        "depth": stats.depth(),
        "queued": stats.queued,
        "in_flight": stats.in_flight,
        "retrying": stats.retrying,
        "dead": stats.dead,
        "accepted": stats.accepted,
        "done": stats.done,
    }))
}

/// Ready means "this gateway can admit": the store answers and takes
/// writes (`ping`: a replica is refused), the rooms' steps have answered
/// once (passes are judged on the store's clock, which the gateway only
/// knows from a step's reply, its first 100 ms) and the last store call did
/// not fail (a step is a write, 10 a second: one refused with `READONLY` or
/// unanswered marks the store down until one succeeds). One store round
/// trip per `/readyz`, none per visitor.
///
/// Bookings refused do not make it not ready, neither for want of replicas
/// (`min_replicas_acked`) nor because their own connection failed: every
/// gateway shares those replicas, so a load balancer would take them all
/// out while they can still admit, and a booking's connection follows a
/// failover by itself as the others do. The refusals are counted on
/// `/metrics` (`anteroom_buffer_refused_total`, `reason` `not_replicated`
/// or `store_unavailable`).
async fn readiness(shared: &Shared) -> Response<Body> {
    let not_ready = |reason: &str| {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "not ready", "reason": reason}),
        )
    };
    match shared.store.ping().await {
        Ok(()) if !shared.rooms.is_empty() && !shared.store_clock.is_learned() => {
            not_ready("no room step has answered yet: the store's clock is not known")
        }
        Ok(()) if !shared.rooms.is_empty() && shared.health.is_down() => {
            not_ready("the last store call failed; waiting for a room step to succeed")
        }
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(error) => not_ready(&error.to_string()),
    }
}

/// With a token configured, every admin call needs it; without one, reads
/// are open (the admin listener is private) and changes are refused.
fn authorize<B>(shared: &Shared, request: &Request<B>) -> Result<(), Box<Response<Body>>> {
    let Some(expected) = shared.config.secrets.admin_token.as_deref() else {
        if request.method() == Method::GET {
            return Ok(());
        }
        return Err(Box::new(json_error(
            StatusCode::FORBIDDEN,
            "changes need secrets.admin_token (or ANTEROOM_ADMIN_TOKEN) to be set",
        )));
    };
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(offered.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        let mut response = json_error(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(Box::new(response))
    }
}

fn rooms(shared: &Shared) -> Response<Body> {
    let rooms: Vec<serde_json::Value> = shared
        .rooms
        .iter()
        .map(|room| figures(shared, room))
        .collect();
    json_response(StatusCode::OK, &serde_json::json!({ "rooms": rooms }))
}

/// A room's live figures, from this gateway's cached view (at most one step,
/// 100 ms, old).
fn figures(shared: &Shared, room: &RoomRuntime) -> serde_json::Value {
    let snapshot = room.snapshot().unwrap_or_default();
    let waiting = snapshot.waiting();
    let now = shared.store_clock.now();
    let zone = &shared.config.time_zone;
    let shown = |at: Option<Millis>| at.map(|at| schedule::format_instant(at, zone));
    let phase = match snapshot.phase(now) {
        Phase::NotOpen => "not_open",
        Phase::PreQueue => "pre_queue",
        Phase::Open => "open",
        Phase::Closed => "closed",
    };
    let event = serde_json::json!({
        "phase": phase,
        "pre_queue_from": shown(snapshot.schedule.pre_queue_from),
        "opens_at": shown(snapshot.schedule.opens_at),
        "closes_at": shown(snapshot.schedule.closes_at),
        "opens_in_seconds": snapshot
            .schedule
            .opens_at
            .filter(|_| snapshot.before_draw())
            .map(|at| at.saturating_sub(now).div_ceil(1000)),
        "pre_queue": snapshot.pre_queue(),
        "drawn": snapshot.drawn.is_some(),
        "commitment": snapshot.seed.map(|seed| seed.commitment().to_hex()),
        "time_zone": zone.iana_name(),
    });
    serde_json::json!({
        "event": event,
        "name": room.name(),
        "state": snapshot.state.as_str(),
        "capacity": snapshot.capacity,
        "admit_per_minute": snapshot.admit_per_minute,
        "configured": {
            "capacity": room.config.capacity.get(),
            "admit_per_minute": room.config.admit_per_minute.get(),
        },
        "waiting": waiting,
        "inside": snapshot.inside,
        "arriving": snapshot.pending,
        "tickets_issued": snapshot.issued,
        "admitted_through": snapshot.admitted_through,
        "no_shows": snapshot.no_shows,
        "sessions_expired": snapshot.sessions_expired,
        "admissions_per_minute": (room.admissions_per_minute() * 10.0).round() / 10.0,
        "eta_seconds_last_in_line": (waiting > 0).then(|| room.eta_seconds(waiting)),
        "updated_unix_ms": snapshot.taken_at,
        "adaptive": adaptive::adaptive_figures(room, snapshot.admit_per_minute),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRequest {
    capacity: Option<u32>,
    admit_per_minute: Option<u32>,
    state: Option<String>,
    /// Absent: unchanged; `null`: cleared; a string: RFC 3339.
    #[serde(default, deserialize_with = "present")]
    pre_queue_from: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    opens_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    closes_at: Option<Option<String>>,
    /// Read key by key ([`adaptive_request`]), so that a refusal names
    /// the key.
    adaptive: Option<serde_json::Value>,
}

/// `adaptive` in a change: any of the `[room.adaptive]` keys, each read on
/// its own so that a value of the wrong type is refused naming its key
/// (`adaptive.max_error_rate: invalid type: ...`), as the range checks
/// are. `null` leaves a key as it is.
fn adaptive_request(
    value: serde_json::Value,
) -> Result<anteroom_store::adaptive::Overrides, InvalidChange> {
    fn read<T: serde::de::DeserializeOwned>(
        key: &str,
        value: serde_json::Value,
    ) -> Result<Option<T>, InvalidChange> {
        serde_json::from_value(value)
            .map_err(|error| InvalidChange::Adaptive(format!("{key}: {error}")))
    }
    let serde_json::Value::Object(fields) = value else {
        return Err(InvalidChange::Adaptive(
            "must be an object of [room.adaptive] keys".to_owned(),
        ));
    };
    let mut asked = anteroom_store::adaptive::Overrides::default();
    for (key, value) in fields {
        match key.as_str() {
            "enabled" => asked.enabled = read(&key, value)?,
            "min_admit_per_minute" => asked.min_admit_per_minute = read(&key, value)?,
            "latency_p90_ms" => asked.latency_p90_ms = read(&key, value)?,
            "max_error_rate" => asked.max_error_rate = read(&key, value)?,
            _ => {
                return Err(InvalidChange::Adaptive(format!(
                    "{key}: unknown key, expected enabled, min_admit_per_minute, \
                     latency_p90_ms or max_error_rate"
                )));
            }
        }
    }
    Ok(asked)
}

/// A key present in the JSON, `null` included (`Some(None)`); an absent
/// key is the field's default (`None`).
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

async fn change<B>(shared: &Shared, room: &RoomRuntime, request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<crate::BoxError>,
{
    let body = match Limited::new(request.into_body(), MAX_CHANGE_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "a change is at most 4 KiB of JSON",
            );
        }
    };
    let (change, adaptive) = match parse_change(&body).and_then(|(change, adaptive)| {
        checked_adaptive(shared, room, &change, adaptive).map(|adaptive| (change, adaptive))
    }) {
        Ok(parsed) => parsed,
        Err(error) => return json_error(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    if let Some(adaptive) = adaptive {
        match shared.store.change_adaptive(&room.params, &adaptive).await {
            Ok(stored) => tracing::info!(
                room = room.name(),
                ?stored,
                "room's adaptive admission changed"
            ),
            Err(error) => {
                shared.health.failed(&error);
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store is unreachable; nothing changed",
                );
            }
        }
        if change == RoomChange::default() {
            return json_response(StatusCode::OK, &figures(shared, room));
        }
    }
    match shared.store.change(&room.params, &change).await {
        Ok(Changed::Applied(snapshot)) => {
            room.observe(snapshot);
            let zone = &shared.config.time_zone;
            let shown = |at: Option<Option<Millis>>| {
                at.map(|at| at.map(|at| schedule::format_instant(at, zone)))
            };
            tracing::info!(
                room = room.name(),
                capacity = ?change.capacity,
                admit_per_minute = ?change.admit_per_minute,
                state = ?change.state.map(RoomState::as_str),
                pre_queue_from = ?shown(change.schedule.pre_queue_from),
                opens_at = ?shown(change.schedule.opens_at),
                closes_at = ?shown(change.schedule.closes_at),
                "room changed"
            );
            json_response(StatusCode::OK, &figures(shared, room))
        }
        Ok(Changed::Refused(refusal)) => {
            let code = match refusal {
                Refusal::Drawn { .. }
                | Refusal::TicketsIssued { .. }
                | Refusal::DrawPromised { .. } => StatusCode::CONFLICT,
                Refusal::InThePast { .. } | Refusal::Order(_) => StatusCode::BAD_REQUEST,
            };
            tracing::info!(room = room.name(), %refusal, "room change refused");
            json_error(code, &format!("nothing changed: {refusal}"))
        }
        Err(error) => {
            shared.health.failed(&error);
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unreachable; nothing changed",
            )
        }
    }
}

/// Why a `PATCH /admin/rooms/NAME` body is refused (`400`, with this text).
#[derive(Debug, thiserror::Error)]
enum InvalidChange {
    #[error("invalid change: {0}")]
    Json(#[source] serde_json::Error),
    #[error("state: {0:?} is not one of \"open\", \"paused\", \"closed\"")]
    State(String),
    #[error("capacity: must be between 1 and {MAX_CAPACITY}")]
    Capacity,
    #[error("admit_per_minute: must be between 1 and {MAX_ADMIT_PER_MINUTE}")]
    AdmitPerMinute,
    #[error("{key}: {source}")]
    Time {
        key: &'static str,
        #[source]
        source: schedule::InstantError,
    },
    #[error(
        "nothing to change: give capacity, admit_per_minute, state, pre_queue_from, opens_at, \
         closes_at or adaptive"
    )]
    Nothing,
    #[error("adaptive.{0}")]
    Adaptive(String),
}

/// The adaptive part of a change, checked as the file's `[room.adaptive]`
/// is, against the settings in force with the change over them (and the
/// change's `admit_per_minute`, if it has one, as the ceiling).
fn checked_adaptive(
    shared: &Shared,
    room: &RoomRuntime,
    change: &RoomChange,
    adaptive: Option<anteroom_store::adaptive::Overrides>,
) -> Result<Option<anteroom_store::adaptive::Overrides>, InvalidChange> {
    let Some(asked) = adaptive else {
        return Ok(None);
    };
    let config = room.config.adaptive;
    let current = room.adaptive().map(|view| view.settings);
    let floor = match asked.min_admit_per_minute {
        Some(floor) => std::num::NonZeroU32::new(floor).ok_or_else(|| {
            InvalidChange::Adaptive("min_admit_per_minute: must be at least 1".to_owned())
        })?,
        None => current
            .and_then(|settings| std::num::NonZeroU32::new(settings.floor as u32))
            .unwrap_or(config.min_admit_per_minute),
    };
    let merged = anteroom_config::Adaptive {
        enabled: asked
            .enabled
            .unwrap_or(current.map_or(config.enabled, |settings| settings.enabled)),
        min_admit_per_minute: floor,
        latency_p90_ms: asked.latency_p90_ms.unwrap_or(
            current.map_or(config.latency_p90_ms, |settings| {
                settings.latency_p90_ms as u32
            }),
        ),
        max_error_rate: asked
            .max_error_rate
            .unwrap_or(current.map_or(config.max_error_rate, |settings| settings.max_error_rate)),
    };
    let ceiling = change
        .admit_per_minute
        .or_else(|| room.snapshot().map(|snapshot| snapshot.admit_per_minute))
        .and_then(std::num::NonZeroU32::new)
        .unwrap_or(room.config.admit_per_minute);
    merged
        .check(ceiling, shared.config.upstream_timeout)
        .map_err(|error| InvalidChange::Adaptive(error.to_string()))?;
    Ok(Some(asked))
}

fn parse_change(
    body: &Bytes,
) -> Result<(RoomChange, Option<anteroom_store::adaptive::Overrides>), InvalidChange> {
    let request: ChangeRequest = serde_json::from_slice(body).map_err(InvalidChange::Json)?;
    let state = match request.state.as_deref() {
        None => None,
        Some(text) => {
            Some(RoomState::parse(text).ok_or_else(|| InvalidChange::State(text.to_owned()))?)
        }
    };
    if let Some(capacity) = request.capacity
        && !(1..=MAX_CAPACITY).contains(&capacity)
    {
        return Err(InvalidChange::Capacity);
    }
    if let Some(rate) = request.admit_per_minute
        && !(1..=MAX_ADMIT_PER_MINUTE).contains(&rate)
    {
        return Err(InvalidChange::AdmitPerMinute);
    }
    let time = |key: &'static str, value: Option<Option<String>>| match value {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(text)) => schedule::parse_instant(&text)
            .map(|at| Some(Some(at)))
            .map_err(|source| InvalidChange::Time { key, source }),
    };
    let change = RoomChange {
        capacity: request.capacity,
        admit_per_minute: request.admit_per_minute,
        state,
        schedule: ScheduleChange {
            pre_queue_from: time("pre_queue_from", request.pre_queue_from)?,
            opens_at: time("opens_at", request.opens_at)?,
            closes_at: time("closes_at", request.closes_at)?,
        },
    };
    let adaptive = request
        .adaptive
        .map(adaptive_request)
        .transpose()?
        .filter(|asked| *asked != anteroom_store::adaptive::Overrides::default());
    if change == RoomChange::default() && adaptive.is_none() {
        return Err(InvalidChange::Nothing);
    }
    Ok((change, adaptive))
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_once_a_step_has_told_the_stores_clock() {
        let config = anteroom_config::Config::from_toml(
            "upstream = \"http://127.0.0.1:9\"\n\
             [[room]]\nname = \"vaccini\"\npaths = [\"/prenota\"]\ncapacity = 1\nadmit_per_minute = 60\n",
            |_| None,
        )
        .expect("the test's config is valid");
        let gateway = crate::Gateway::with_clock(config, crate::Clock::manual())
            .expect("the gateway is built");
        let shared = &gateway.shared;
        let readyz = || {
            Request::get("/readyz")
                .body(http_body_util::Empty::<Bytes>::new())
                .expect("a request")
        };
        assert_eq!(handle(shared, readyz()).await.status(), 503);
        // What `room::tend` does with a step's reply.
        let now = shared.store_clock.local().now();
        shared.store_clock.learn(now, now, now);
        assert_eq!(handle(shared, readyz()).await.status(), 200);
    }

    #[test]
    fn changes_are_validated() {
        let parse = |text: &str| parse_change(&Bytes::from(text.to_owned()));
        assert_eq!(
            parse(r#"{"capacity": 5, "state": "paused"}"#).unwrap(),
            (
                RoomChange {
                    capacity: Some(5),
                    admit_per_minute: None,
                    state: Some(RoomState::Paused),
                    schedule: ScheduleChange::default(),
                },
                None
            )
        );
        let (change, adaptive) =
            parse(r#"{"adaptive": {"enabled": false, "latency_p90_ms": 800}}"#).unwrap();
        assert_eq!(change, RoomChange::default());
        assert_eq!(
            adaptive,
            Some(anteroom_store::adaptive::Overrides {
                enabled: Some(false),
                latency_p90_ms: Some(800),
                ..Default::default()
            })
        );
        for bad in [
            r#"{}"#,
            r#"{"capacity": 0}"#,
            r#"{"admit_per_minute": 0}"#,
            r#"{"state": "ajar"}"#,
            r#"{"capacty": 5}"#,
            r#"{"capacity": -1}"#,
            r#"{"adaptive": {}}"#,
            r#"{"adaptive": {"enabeld": true}}"#,
            r#"{"adaptive": {"max_error_rate": "high"}}"#,
            r#"{"adaptive": true}"#,
            r#"not json"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // A refused adaptive key is named, whatever is wrong with it.
        for (bad, key) in [
            (r#"{"adaptive": {"enabeld": true}}"#, "adaptive.enabeld"),
            (
                r#"{"adaptive": {"max_error_rate": "high"}}"#,
                "adaptive.max_error_rate",
            ),
            (r#"{"adaptive": {"enabled": 1}}"#, "adaptive.enabled"),
            (
                r#"{"adaptive": {"min_admit_per_minute": -1}}"#,
                "adaptive.min_admit_per_minute",
            ),
        ] {
            let message = parse(bad).unwrap_err().to_string();
            assert!(message.starts_with(key), "{bad}: {message}");
        }
    }
}
