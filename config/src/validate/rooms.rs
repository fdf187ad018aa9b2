//! `[[room]]` and `[[buffer]]`: names, path prefixes and the references
//! between them.

use std::time::Duration;

use super::{Result, at_least_one, required_at_least_one};
use crate::defaults::{self, Bounded};
use crate::raw::{RawBuffer, RawRoom};
use crate::schedule::{Millis, Schedule, parse_instant};
use crate::{Buffer, Room, Sink};

const MAX_NAME_CHARS: usize = 32;
/// Paths under this prefix belong to the gateway and never reach upstream.
const RESERVED_PREFIX: &str = "/_anteroom";

/// `upstream_timeout`: `[room.adaptive]`'s latency target must stay below it.
pub(super) fn rooms(raw: Vec<RawRoom>, upstream_timeout: Duration) -> Result<Vec<Room>> {
    let mut rooms: Vec<Room> = Vec::with_capacity(raw.len());
    for (index, raw_room) in raw.into_iter().enumerate() {
        let context = context("room", index, raw_room.name.as_deref());
        let room =
            room(raw_room, upstream_timeout).map_err(|problem| format!("{context}: {problem}"))?;
        if let Some(earlier) = rooms.iter().position(|other| other.name == room.name) {
            return Err(format!(
                "{context}: name {:?} is already used by room[{earlier}]",
                room.name
            ));
        }
        rooms.push(room);
    }
    for (index, room) in rooms.iter().enumerate() {
        for other in &rooms[index + 1..] {
            for path in &room.paths {
                for other_path in &other.paths {
                    if path.starts_with(other_path.as_str())
                        || other_path.starts_with(path.as_str())
                    {
                        return Err(format!(
                            "room {:?} paths {path:?} overlaps room {:?} paths {other_path:?}",
                            room.name, other.name
                        ));
                    }
                }
            }
        }
    }
    Ok(rooms)
}

fn room(raw: RawRoom, upstream_timeout: Duration) -> Result<Room> {
    let name = name(raw.name)?;
    let paths = raw.paths.ok_or("paths is required")?;
    if paths.is_empty() {
        return Err("paths must list at least one path prefix".to_owned());
    }
    let paths = paths
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let path = path(value).map_err(|problem| format!("paths[{index}]: {problem}"))?;
            if path.starts_with(RESERVED_PREFIX) {
                return Err(format!(
                    "paths[{index}]: {value:?} is under {RESERVED_PREFIX}, which belongs to the \
                     gateway"
                ));
            }
            Ok(path)
        })
        .collect::<Result<Vec<_>>>()?;
    let exclude = raw
        .exclude
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let excluded = path(value).map_err(|problem| format!("exclude[{index}]: {problem}"))?;
            if !paths.iter().any(|path| excluded.starts_with(path.as_str())) {
                return Err(format!(
                    "exclude[{index}]: {value:?} is not under any of this room's paths"
                ));
            }
            Ok(excluded)
        })
        .collect::<Result<Vec<_>>>()?;
    let capacity = required_at_least_one(raw.capacity, "capacity")?;
    let admit_per_minute = required_at_least_one(raw.admit_per_minute, "admit_per_minute")?;
    let session = defaults::SESSION_SECONDS
        .seconds(raw.session_seconds)
        .map_err(|problem| format!("session_seconds {problem}"))?;
    let arrival_seconds = defaults::ARRIVAL_SECONDS
        .value(raw.arrival_seconds)
        .map_err(|problem| format!("arrival_seconds {problem}"))?;
    let refresh_seconds = defaults::REFRESH_SECONDS
        .value(raw.refresh_seconds)
        .map_err(|problem| format!("refresh_seconds {problem}"))?;
    // A waiting page that re-checks less often than the arrival window could
    // miss its own turn.
    if refresh_seconds >= arrival_seconds {
        return Err(format!(
            "refresh_seconds ({refresh_seconds}) must be less than arrival_seconds \
             ({arrival_seconds})"
        ));
    }
    let schedule = schedule(raw.pre_queue_from, raw.opens_at, raw.closes_at)?;
    let adaptive = super::adaptive::adaptive(raw.adaptive, admit_per_minute, upstream_timeout)?;
    Ok(Room {
        name,
        paths,
        exclude,
        capacity,
        admit_per_minute,
        session,
        arrival: Duration::from_secs(arrival_seconds),
        refresh: Duration::from_secs(refresh_seconds),
        schedule,
        adaptive,
    })
}

/// `pre_queue_from`, `opens_at` and `closes_at`, parsed and put in order.
/// Times in the past are not refused: a gateway restarted after the
/// opening is started with the same file.
fn schedule(
    pre_queue_from: Option<toml::Value>,
    opens_at: Option<toml::Value>,
    closes_at: Option<toml::Value>,
) -> Result<Schedule> {
    let schedule = Schedule {
        pre_queue_from: instant("pre_queue_from", pre_queue_from)?,
        opens_at: instant("opens_at", opens_at)?,
        closes_at: instant("closes_at", closes_at)?,
    };
    schedule.check().map_err(|problem| problem.to_string())?;
    Ok(schedule)
}

/// One time of the schedule: an RFC 3339 string with an offset, or the
/// same written as a TOML offset date-time (without quotes).
fn instant(key: &str, value: Option<toml::Value>) -> Result<Option<Millis>> {
    let text = match value {
        None => return Ok(None),
        Some(toml::Value::String(text)) => text,
        Some(toml::Value::Datetime(datetime)) => datetime.to_string(),
        Some(other) => {
            return Err(format!(
                "{key}: must be an RFC 3339 time with an offset, like \
                 \"2021-02-01T12:00:00+01:00\" (got a TOML {})",
                other.type_str()
            ));
        }
    };
    parse_instant(&text)
        .map(Some)
        .map_err(|problem| format!("{key}: {problem}"))
}

pub(super) fn buffers(raw: Vec<RawBuffer>, rooms: &[Room]) -> Result<Vec<Buffer>> {
    let mut buffers: Vec<Buffer> = Vec::with_capacity(raw.len());
    for (index, raw_buffer) in raw.into_iter().enumerate() {
        let context = context("buffer", index, raw_buffer.name.as_deref());
        let buffer =
            buffer(raw_buffer, rooms).map_err(|problem| format!("{context}: {problem}"))?;
        for (earlier, other) in buffers.iter().enumerate() {
            if other.name == buffer.name {
                return Err(format!(
                    "{context}: name {:?} is already used by buffer[{earlier}]",
                    buffer.name
                ));
            }
            if other.method == buffer.method && other.path == buffer.path {
                return Err(format!(
                    "{context}: method {} and path {:?} are already used by buffer[{earlier}]",
                    buffer.method, buffer.path
                ));
            }
        }
        buffers.push(buffer);
    }
    Ok(buffers)
}

fn buffer(raw: RawBuffer, rooms: &[Room]) -> Result<Buffer> {
    let name = name(raw.name)?;
    let room_name = raw.room.ok_or("room is required")?;
    let room = rooms
        .iter()
        .find(|room| room.name == room_name)
        .ok_or_else(|| format!("room {room_name:?} does not name any [[room]]"))?;
    let method = method(raw.method.as_deref().unwrap_or(defaults::BUFFER_METHOD))?;
    let path_value = raw.path.ok_or("path is required")?;
    let path = path(&path_value).map_err(|problem| format!("path {problem}"))?;
    if !room
        .paths
        .iter()
        .any(|prefix| path.starts_with(prefix.as_str()))
    {
        return Err(format!(
            "path {path_value:?} is not under any of room {:?}'s paths",
            room.name
        ));
    }
    if let Some(excluded) = room
        .exclude
        .iter()
        .find(|prefix| path.starts_with(prefix.as_str()))
    {
        return Err(format!(
            "path {path_value:?} is under exclude {excluded:?} of room {:?}, so it is not \
             protected",
            room.name
        ));
    }
    let drain_per_second = required_at_least_one(raw.drain_per_second, "drain_per_second")?;
    let max_in_flight = at_least_one(raw.max_in_flight, defaults::MAX_IN_FLIGHT)
        .map_err(|problem| format!("max_in_flight {problem}"))?;
    let sink = sink(
        raw.sink.as_deref().unwrap_or(defaults::SINK),
        raw.postgres_url,
        raw.statement,
        raw.params,
    )?;
    let bounded = |key: &str, bounds: Bounded, value: Option<u64>| {
        bounds
            .value(value)
            .map_err(|problem| format!("{key} {problem}"))
    };
    let max_depth = bounded("max_depth", defaults::MAX_DEPTH, raw.max_depth)?;
    let max_per_pass = match raw.max_per_pass {
        None => defaults::MAX_PER_PASS.min(max_depth),
        Some(value) if (1..=max_depth).contains(&value) => value,
        Some(value) => {
            return Err(format!(
                "max_per_pass must be between 1 and max_depth ({max_depth}) (got {value})"
            ));
        }
    };
    let max_attempts = bounded("max_attempts", defaults::MAX_ATTEMPTS, raw.max_attempts)? as u32;
    let retry_initial = Duration::from_millis(bounded(
        "retry_initial_ms",
        defaults::RETRY_INITIAL_MS,
        raw.retry_initial_ms,
    )?);
    let retry_max = Duration::from_secs(bounded(
        "retry_max_seconds",
        defaults::RETRY_MAX_SECONDS,
        raw.retry_max_seconds,
    )?);
    if retry_initial > retry_max {
        return Err("retry_initial_ms must not be longer than retry_max_seconds".to_owned());
    }
    let sink_timeout = Duration::from_secs(bounded(
        "sink_timeout_seconds",
        defaults::SINK_TIMEOUT_SECONDS,
        raw.sink_timeout_seconds,
    )?);
    let reclaim_after = Duration::from_secs(bounded(
        "reclaim_after_seconds",
        defaults::RECLAIM_AFTER_SECONDS,
        raw.reclaim_after_seconds,
    )?);
    if reclaim_after <= sink_timeout {
        return Err(format!(
            "reclaim_after_seconds ({}) must be longer than sink_timeout_seconds ({}), or a \
             slow request would be taken by a second worker while the first still runs it",
            reclaim_after.as_secs(),
            sink_timeout.as_secs()
        ));
    }
    let result_for = Duration::from_secs(bounded(
        "result_seconds",
        defaults::RESULT_SECONDS,
        raw.result_seconds,
    )?);
    let content_types = content_types(raw.content_types)?;
    Ok(Buffer {
        name,
        room: room_name,
        method,
        path,
        drain_per_second,
        max_in_flight,
        sink,
        max_depth,
        max_per_pass,
        content_types,
        max_attempts,
        retry_initial,
        retry_max,
        sink_timeout,
        reclaim_after,
        result_for,
    })
}

fn content_types(value: Option<Vec<String>>) -> Result<Vec<String>> {
    let Some(types) = value else {
        return Ok(defaults::CONTENT_TYPES
            .iter()
            .map(|media| (*media).to_owned())
            .collect());
    };
    if types.is_empty() {
        return Err("content_types must list at least one media type".to_owned());
    }
    types
        .into_iter()
        .map(|media| {
            let lower = media.trim().to_ascii_lowercase();
            let valid = lower.split_once('/').is_some_and(|(kind, sub)| {
                let token = |part: &str| {
                    !part.is_empty()
                        && part.bytes().all(|byte| {
                            byte.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&byte)
                        })
                };
                token(kind) && token(sub)
            });
            if valid {
                Ok(lower)
            } else {
                Err(format!(
                    "content_types: {media:?} is not a media type like \"application/json\" \
                     (no parameters)"
                ))
            }
        })
        .collect()
}

fn method(value: &str) -> Result<http::Method> {
    match value.to_ascii_uppercase().as_str() {
        "POST" => Ok(http::Method::POST),
        "PUT" => Ok(http::Method::PUT),
        "PATCH" => Ok(http::Method::PATCH),
        "DELETE" => Ok(http::Method::DELETE),
        _ => Err(format!(
            "method {value:?} must be POST, PUT, PATCH or DELETE"
        )),
    }
}

fn sink(
    kind: &str,
    postgres_url: Option<String>,
    statement: Option<String>,
    params: Option<Vec<String>>,
) -> Result<Sink> {
    match kind {
        "http" => {
            if params.is_some() {
                return Err("params is only for sink = \"postgres\"".to_owned());
            }
            if postgres_url.is_some() {
                return Err("postgres_url is only for sink = \"postgres\"".to_owned());
            }
            if statement.is_some() {
                return Err("statement is only for sink = \"postgres\"".to_owned());
            }
            Ok(Sink::Http)
        }
        "postgres" => {
            let url = postgres_url.ok_or("sink \"postgres\" needs postgres_url")?;
            let parsed = url::Url::parse(&url)
                .map_err(|error| format!("postgres_url is not a valid URL ({error})"))?;
            if !matches!(parsed.scheme(), "postgres" | "postgresql") {
                return Err(format!(
                    "postgres_url: scheme {:?} is not supported; use postgres:// or postgresql://",
                    parsed.scheme()
                ));
            }
            let statement = statement.ok_or("sink \"postgres\" needs statement")?;
            if statement.trim().is_empty() {
                return Err("statement must not be empty".to_owned());
            }
            let params = params.unwrap_or_default();
            for param in &params {
                let special = ["$idempotency_key", "$receipt", "$body"];
                if param.starts_with('$') && !special.contains(&param.as_str()) {
                    return Err(format!(
                        "params: {param:?} is not one of {special:?} (a JSON path does not \
                         start with '$')"
                    ));
                }
                if param.is_empty() || param.split('.').any(str::is_empty) {
                    return Err(format!(
                        "params: {param:?} is not a dotted JSON path like \"patient.name\""
                    ));
                }
            }
            Ok(Sink::Postgres {
                url,
                statement,
                params,
            })
        }
        other => Err(format!("sink {other:?} must be \"http\" or \"postgres\"")),
    }
}

/// Room and buffer names appear in cookies, metrics labels and URLs, hence
/// the small charset.
fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

fn name(value: Option<String>) -> Result<String> {
    match value {
        None => Err("name is required".to_owned()),
        Some(name) if is_valid_name(&name) => Ok(name),
        Some(_) => Err(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters of a-z, 0-9, _ and -"
        )),
    }
}

/// `room[0] "vaccini"`, or `room[0]` while the name is unknown.
fn context(table: &str, index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{table}[{index}] {name:?}"),
        None => format!("{table}[{index}]"),
    }
}

/// A path or path prefix as written in the file, ASCII-lowercased.
/// The problem names the value but not the key; the caller adds it.
fn path(value: &str) -> Result<String> {
    if !value.starts_with('/') {
        return Err(format!("{value:?} must start with \"/\""));
    }
    let plain = |byte: u8| byte.is_ascii_graphic() && byte != b'?' && byte != b'#';
    if !value.bytes().all(plain) {
        return Err(format!(
            "{value:?} must be plain ASCII without spaces, '?' or '#' \
             (percent-encode other characters, as a browser sends them)"
        ));
    }
    Ok(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("vaccini"));
        assert!(is_valid_name("a-b_c9"));
        assert!(is_valid_name(&"a".repeat(32)));
        assert!(!is_valid_name(&"a".repeat(33)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Vaccini"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("caffè"));
    }
}
