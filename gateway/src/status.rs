//! The figures a visitor is shown about their place: the status JSON of
//! the contract (`/_anteroom/status`, the event stream's data, the waiting
//! answer for clients that ask for JSON), built from where the door says
//! the visitor stands and the room's cached figures.
//!
//! Shared by `routes` and `events`, so neither imports the other.

use serde::Serialize;

use anteroom_store::RoomState;

use crate::door::Standing;
use crate::room::RoomRuntime;

/// The status JSON of the contract, plus `room_state` (`open`, `paused`,
/// `closed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status<'a> {
    pub room: &'a str,
    pub state: &'static str,
    pub position: Option<u64>,
    pub eta_seconds: Option<u64>,
    pub refresh_seconds: u64,
    #[serde(serialize_with = "serialize_room_state")]
    pub room_state: RoomState,
}

impl Status<'_> {
    /// What `room`'s figures say to a visitor standing at `standing`.
    pub fn of(room: &RoomRuntime, standing: Standing) -> Status<'_> {
        let base = Status {
            room: room.name(),
            state: "none",
            position: None,
            eta_seconds: None,
            refresh_seconds: room.refresh_seconds(None),
            room_state: room_state(room),
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
            } => Status {
                state: "waiting",
                position,
                eta_seconds,
                refresh_seconds,
                ..base
            },
            Standing::Outside | Standing::TooManyPlaces { .. } | Standing::Closed => base,
        }
    }

    /// As JSON text, for the event stream.
    pub fn to_json(self) -> String {
        serde_json::to_string(&self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The room's state as this gateway last saw it.
pub fn room_state(room: &RoomRuntime) -> RoomState {
    room.snapshot()
        .map(|snapshot| snapshot.state)
        .unwrap_or_default()
}

fn serialize_room_state<S: serde::Serializer>(
    state: &RoomState,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(state.as_str())
}
