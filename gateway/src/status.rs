//! The figures a visitor is shown about their place: the status JSON of
//! the contract (`/_anteroom/status`, the event stream's data, the waiting
//! answer for clients that ask for JSON), built from where the door says
//! the visitor stands and the room's cached figures.
//!
//! Shared by `routes` and `events`, so neither imports the other.

use serde::Serialize;

use anteroom_store::{Millis, RoomState};

use crate::door::Standing;
use crate::page::WallClock;
use crate::room::RoomRuntime;

/// The status JSON of the contract, plus `room_state` (`open`, `paused`,
/// `closed`) and, for a room with a scheduled opening, its launch event
/// (each field only when it has a value): `opens_at` and `pre_queue_from`
/// (in the deployment's zone),
/// `opens_in_seconds` (on the store's clock, so a page's countdown does
/// not depend on the visitor's clock), `pre_queue` (tickets in the
/// pre-queue so far, final once drawn), `ticket` and `draw_place` (a
/// pre-queue visitor's ticket number, and their place once drawn) and
/// `draw_url` (where the draw can be checked). `site` is always there:
/// [`SITE_OK`], or [`SITE_TROUBLE`] while adaptive admission finds the
/// site failing (the estimate is then `null`: the pace it rests on is
/// withdrawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status<'a> {
    pub room: &'a str,
    /// `none`, `not_open`, `pre_queue`, `waiting` or `admitted`.
    pub state: &'static str,
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub refresh_seconds: u64,
    #[serde(serialize_with = "serialize_room_state")]
    pub room_state: RoomState,
    /// [`SITE_OK`] or [`SITE_TROUBLE`].
    pub site: &'static str,
    // The launch event's fields are left out when absent: a room without
    // one answers its polls with the bytes it always did.
    /// RFC 3339 in the deployment's time zone.
    #[serde(
        serialize_with = "serialize_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub opens_at: Option<Instant<'a>>,
    #[serde(
        serialize_with = "serialize_instant",
        skip_serializing_if = "Option::is_none"
    )]
    pub pre_queue_from: Option<Instant<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_queue: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_place: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_url: Option<&'a str>,
}

/// The status JSON's `site` while the site answers as it should.
pub const SITE_OK: &str = "ok";
/// The status JSON's `site` while the site is having trouble: places are
/// kept, the waiting page says so and shows no estimate.
pub const SITE_TROUBLE: &str = "trouble";

/// A time to show, with the zone it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant<'a> {
    pub at: Millis,
    pub zone: &'a jiff::tz::TimeZone,
}

impl Instant<'_> {
    pub fn to_rfc3339(self) -> String {
        anteroom_config::schedule::format_instant(self.at, self.zone)
    }

    /// As a clock on the wall in the zone shows it, for a page; `None` for
    /// a time out of jiff's range (never a configured one).
    pub fn wall_clock(self) -> Option<WallClock> {
        let millis = i64::try_from(self.at).ok()?;
        let local = jiff::Timestamp::from_millisecond(millis)
            .ok()?
            .to_zoned_datetime(self.zone.clone());
        Some(WallClock {
            month: u8::try_from(local.month()).ok()?,
            day: u8::try_from(local.day()).ok()?,
            weekday: u8::try_from(local.weekday().to_monday_zero_offset()).ok()?,
            hour: u8::try_from(local.hour()).ok()?,
            minute: u8::try_from(local.minute()).ok()?,
        })
    }
}

impl<'a> Status<'a> {
    /// What `room`'s figures say to a visitor standing at `standing`, at
    /// `now` (the store's time as reckoned here); times are shown in
    /// `zone`.
    pub fn of(
        room: &'a RoomRuntime,
        standing: Standing,
        now: Millis,
        zone: &'a jiff::tz::TimeZone,
    ) -> Status<'a> {
        let snapshot = room.snapshot();
        let schedule = snapshot
            .map(|snapshot| snapshot.schedule)
            .unwrap_or_default();
        let scheduled = schedule.opens_at.is_some();
        let before_opening = snapshot.is_some_and(|snapshot| snapshot.before_draw());
        let site = site(room);
        let base = Status {
            room: room.name(),
            state: "none",
            position: None,
            eta_seconds: None,
            refresh_seconds: room.refresh_seconds(None),
            room_state: room_state(room),
            site,
            opens_at: schedule.opens_at.map(|at| Instant { at, zone }),
            pre_queue_from: schedule.pre_queue_from.map(|at| Instant { at, zone }),
            opens_in_seconds: schedule
                .opens_at
                .filter(|_| before_opening)
                .map(|at| at.saturating_sub(now).div_ceil(1000)),
            pre_queue: snapshot.and_then(|snapshot| snapshot.pre_queue()),
            ticket: None,
            draw_place: None,
            draw_url: scheduled.then_some(room.draw_url.as_str()),
        };
        match standing {
            Standing::Inside { .. } => Status {
                state: "admitted",
                ..base
            },
            Standing::Waiting {
                position,
                eta_seconds,
                refresh_seconds,
                drawn,
            } => Status {
                state: "waiting",
                position,
                // No promise while the site is in trouble: the pace the
                // estimate rests on may be cut at any moment.
                eta_seconds: eta_seconds.filter(|_| site == SITE_OK),
                refresh_seconds,
                ticket: drawn.map(|drawn| drawn.ticket),
                draw_place: drawn.map(|drawn| drawn.place),
                ..base
            },
            Standing::NotOpen { refresh_seconds } => Status {
                state: "not_open",
                refresh_seconds,
                ..base
            },
            Standing::PreQueue {
                ticket,
                refresh_seconds,
            } => Status {
                state: "pre_queue",
                refresh_seconds,
                ticket: Some(ticket),
                ..base
            },
            Standing::Outside | Standing::TooManyPlaces { .. } | Standing::Closed => base,
        }
    }

    /// Whether the site is having trouble (the waiting page says so).
    pub fn site_trouble(&self) -> bool {
        self.site == SITE_TROUBLE
    }

    /// As JSON text, for the event stream.
    pub fn to_json(self) -> String {
        serde_json::to_string(&self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// What the status JSON says of the site behind `room`: [`SITE_TROUBLE`]
/// while adaptive admission has the room's `trouble` flag up, else
/// [`SITE_OK`].
pub fn site(room: &RoomRuntime) -> &'static str {
    if room.site_trouble() {
        SITE_TROUBLE
    } else {
        SITE_OK
    }
}

/// The room's state as this gateway last saw it.
pub fn room_state(room: &RoomRuntime) -> RoomState {
    room.snapshot()
        .map(|snapshot| snapshot.state)
        .unwrap_or_default()
}

fn serialize_instant<S: serde::Serializer>(
    instant: &Option<Instant<'_>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match instant {
        Some(instant) => serializer.serialize_str(&instant.to_rfc3339()),
        None => serializer.serialize_none(),
    }
}

fn serialize_room_state<S: serde::Serializer>(
    state: &RoomState,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(state.as_str())
}
