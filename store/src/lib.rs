//! Room state behind one seam.
//!
//! A room's shared state is the *serving counter* (see ARCHITECTURE.md):
//! `issued` (the last ticket number handed out) and `admitted_through` (every
//! ticket up to this number has been let in), plus the set of passes inside
//! and the set of admitted tickets whose holders have not arrived yet. A
//! waiting visitor's own state (their ticket number) lives in their signed
//! cookie, so the store holds nothing per waiting visitor.
//!
//! Two backends implement [`Store`]: [`MemoryStore`] (one process, the embedded
//! default) and [`RedisStore`] (any number of gateways). Both run the same
//! admission arithmetic from [`admission`]; the Redis one runs it inside Lua
//! scripts so that every call is one atomic round trip.
//!
//! The store keeps the time too: every time it compares (pass activity,
//! arrival deadlines, the pace) is on its own clock, never a caller's, so
//! gateways whose clocks differ share one. Redis's clock is `TIME`, read
//! inside the scripts; the memory store's is the [`Clock`] it was given
//! (the gateway's own: one process, one clock).

// No `unwrap()` on the request path (ARCHITECTURE.md's invariant); tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod adaptive;
pub mod admission;
pub mod buffer;
mod clock;
pub mod draw;
mod marks;
mod memory;
mod memory_buffer;
mod redis_buffer;
mod redis_connection;
mod redis_store;
mod request;

use std::time::Duration;

pub use anteroom_config::schedule::{Phase, Schedule, ScheduleError};
pub use buffer::{
    BufferParams, BufferStats, BufferStore, DeadLetter, Enqueued, Finished, Job, Receipt,
    ReceiptState, Submission, Taken, Verdict,
};
pub use clock::Clock;
pub use draw::{Draw, Seed};
pub use memory::MemoryStore;
pub use redis_buffer::REPLICA_ACK_TIMEOUT;
pub use redis_store::{NamedBy, RedisStore, Replication};
pub use request::{
    BodyProblem, BufferedRequest, DecodeError, ParamSource, check_body, header_bytes, header_text,
    lookup_path,
};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// What the store needs to know about a room on every call. Passed in rather
/// than stored so that a live change of capacity or rate (admin API) takes
/// effect on the next call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomParams {
    pub name: String,
    pub capacity: u32,
    pub admit_per_minute: u32,
    /// How long a pass may go without activity before its slot is freed
    /// server-side. The gateway passes the session length plus a grace period
    /// for its batched activity reports, so the store never forgets a pass
    /// whose cookie is still valid.
    pub inside_ttl: Duration,
    /// How long an admitted ticket holder has to show up.
    pub arrival: Duration,
    /// The config's launch schedule; a live change (admin API) stored with
    /// the room takes precedence.
    pub schedule: Schedule,
}

/// Whether a room admits and hands out places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoomState {
    /// Normal operation.
    #[default]
    Open,
    /// No admissions; waiting visitors keep their places, new ones still
    /// get tickets.
    Paused,
    /// No admissions and no new places.
    Closed,
}

impl RoomState {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Open => "open",
            RoomState::Paused => "paused",
            RoomState::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<RoomState> {
        match text {
            "open" => Some(RoomState::Open),
            "paused" => Some(RoomState::Paused),
            "closed" => Some(RoomState::Closed),
            _ => None,
        }
    }
}

/// A live change to a room (admin API), stored so that it reaches every
/// gateway and survives restarts. `None` leaves a setting as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomChange {
    pub capacity: Option<u32>,
    pub admit_per_minute: Option<u32>,
    pub state: Option<RoomState>,
    pub schedule: ScheduleChange,
}

/// A live change to a room's schedule: `None` leaves a time as it is,
/// `Some(None)` clears it, `Some(Some(at))` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScheduleChange {
    pub pre_queue_from: Option<Option<Millis>>,
    pub opens_at: Option<Option<Millis>>,
    pub closes_at: Option<Option<Millis>>,
}

impl ScheduleChange {
    pub fn is_empty(&self) -> bool {
        *self == ScheduleChange::default()
    }

    /// `current` with this change applied.
    pub fn applied_to(&self, current: Schedule) -> Schedule {
        Schedule {
            pre_queue_from: self.pre_queue_from.unwrap_or(current.pre_queue_from),
            opens_at: self.opens_at.unwrap_or(current.opens_at),
            closes_at: self.closes_at.unwrap_or(current.closes_at),
        }
    }
}

/// The outcome of a live change: applied, or refused with nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Applied(RoomSnapshot),
    Refused(Refusal),
}

/// Why a change to a room's schedule was refused (nothing was changed).
/// Decided by the store, atomically with the draw, on its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The draw was made: the pre-queue's order is final, so the times
    /// that decided it cannot move.
    #[error(
        "the draw was made at the opening, over {pre_queue} pre-queue tickets, and is final: \
         opens_at and pre_queue_from can no longer change"
    )]
    Drawn { pre_queue: u64 },
    /// `opens_at` or `closes_at` at or before the store's now.
    #[error("{key} is in the past (the store's clock says so); to close now, set state to closed")]
    InThePast { key: &'static str },
    /// The schedule that would result is out of order.
    #[error("{0}")]
    Order(#[from] ScheduleError),
    /// An opening scheduled on a room that has handed out tickets already:
    /// they would have been mixed into a draw they never entered.
    #[error(
        "the room has already handed out {issued} tickets: an opening can be scheduled only \
         before its first ticket"
    )]
    TicketsIssued { issued: u64 },
    /// Clearing the opening while the pre-queue holds tickets would cancel
    /// the draw they were promised.
    #[error(
        "the pre-queue holds {pre_queue} tickets, promised a draw at the opening: move \
         opens_at instead of clearing it"
    )]
    DrawPromised { pre_queue: u64 },
}

/// The shared figures of one room, as seen at `taken_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomSnapshot {
    /// Identifies this room's ticket sequence. It changes only if the store
    /// loses the room's state (a wiped Redis), which invalidates old tickets.
    pub epoch: u64,
    /// The last ticket number handed out.
    pub issued: u64,
    /// Every ticket up to and including this number has been let in.
    pub admitted_through: u64,
    /// Passes inside the room.
    pub inside: u64,
    /// Admitted tickets whose holders have not shown up yet.
    pub pending: u64,
    /// The room's settings in force: the config's, or a live change's.
    pub capacity: u32,
    pub admit_per_minute: u32,
    pub state: RoomState,
    /// Sessions ended by inactivity, ever (in this epoch).
    pub sessions_expired: u64,
    /// Admitted tickets whose holders did not show up in time, ever (in
    /// this epoch).
    pub no_shows: u64,
    /// When the figures were taken, on the store's clock: what a gateway
    /// learns the store's time from.
    pub taken_at: Millis,
    /// Goes up each time the store finds it lost the room's state or its
    /// counters went back (see ARCHITECTURE.md, "When the store forgets"):
    /// every gateway then reports again each pass it knows to be inside.
    pub generation: u64,
    /// The launch schedule in force: the config's, or a live change's.
    pub schedule: Schedule,
    /// Once the draw is made (at `opens_at`, on the store's clock): how
    /// many pre-queue tickets it ordered, tickets `1..=drawn`.
    pub drawn: Option<u64>,
    /// The room's draw seed, secret until the draw (never shown before);
    /// `None` until this process has learnt it from the store.
    pub seed: Option<Seed>,
}

impl RoomSnapshot {
    /// Visitors holding a ticket that has not been let in yet.
    pub fn waiting(&self) -> u64 {
        self.issued.saturating_sub(self.admitted_through)
    }

    /// A place's position in line: 1 for the next to be let in, `None`
    /// once its turn has come. A ticket's place is [`RoomSnapshot::place`].
    pub fn position(&self, place: u64) -> Option<u64> {
        admission::position(place, self.admitted_through)
    }

    /// Where the room's schedule stands at `now` (the store's clock). Once
    /// drawn, the room is open whatever `opens_at` says now.
    pub fn phase(&self, now: Millis) -> Phase {
        match self.schedule.phase(now) {
            Phase::NotOpen | Phase::PreQueue if self.drawn.is_some() => Phase::Open,
            phase => phase,
        }
    }

    /// Before the draw, with an opening scheduled: every ticket handed out
    /// so far is a pre-queue ticket, whose place is not known yet.
    pub fn before_draw(&self) -> bool {
        self.drawn.is_none() && self.schedule.opens_at.is_some()
    }

    /// Pre-queue tickets: so far, or final once drawn; `None` without an
    /// opening.
    pub fn pre_queue(&self) -> Option<u64> {
        match self.drawn {
            Some(drawn) => Some(drawn),
            None => self.schedule.opens_at.map(|_| self.issued),
        }
    }
}

/// The outcome of a new visitor's arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Nobody was waiting and the room had space: the visitor went straight
    /// in, holding the pass id they offered.
    Admitted { snapshot: RoomSnapshot },
    /// The visitor holds a place in line.
    Ticketed { ticket: u64, snapshot: RoomSnapshot },
    /// The room is closed: no new places (closed by hand, or past its
    /// `closes_at`).
    Closed { snapshot: RoomSnapshot },
    /// The room has not opened and its pre-queue has not begun: no ticket.
    NotOpen { snapshot: RoomSnapshot },
    /// The store found it lost the room's state or its counters went back,
    /// and settles for a few seconds before it hands out numbers again:
    /// the visitor is asked to come back shortly, without a ticket.
    Held { snapshot: RoomSnapshot },
}

/// The outcome of a ticket holder asking to come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The ticket's turn had come: it is spent and the pass is inside.
    Admitted,
    /// The ticket's turn has not come yet.
    NotYet,
    /// The ticket can no longer be used: it was already swapped for a pass,
    /// its holder did not show up within the arrival time, or it belongs to an
    /// older epoch of the room.
    Spent,
}

/// Why a store call failed. The gateway treats every kind alike (the
/// store is down: `on_error` decides); the kinds keep the cause for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis did not answer (refused, timed out, connection lost).
    #[error("store unreachable: {0}")]
    Redis(#[source] redis::RedisError),
    /// `redis_url` does not parse. `url` is without its password.
    #[error("store unreachable: redis url {url}: {source}")]
    Url {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// TLS to Redis failed: the client could not be built from the TLS
    /// files (a key that is not the certificate's), or a handshake failed
    /// (Redis's certificate not signed by a trusted CA or not for its host,
    /// our certificate refused). `url` is without its password.
    #[error("TLS to {url}: {source}")]
    Tls {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Redis refused our credentials (a wrong password or user name), or
    /// asked for some (`NOAUTH`: none configured). Not an unreachable
    /// store: nothing will change until the configuration does. `server`
    /// names it without a password; `keys` are the settings to check.
    #[error("store {server}: authentication failed, check {keys} ({source})")]
    Authentication {
        server: String,
        keys: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// The store answers but cannot take writes: the server is a replica
    /// (`ROLE` says so; writes would get `READONLY`), e.g. an old master
    /// that came back as one after a failover.
    #[error("store {server} is a read-only replica (ROLE says {role}), not the primary")]
    NotPrimary { server: String, role: String },
    /// Unreachable for a reason of ours (a batch whose call failed, a
    /// stopped task), told in words.
    #[error("store unreachable: {0}")]
    Unavailable(String),
    #[error("store answered something unexpected: {0}")]
    Protocol(String),
    /// The Redis at `url` is a replica (`READONLY`): it was demoted by a
    /// failover, or the URL names a replica. It takes no writes, so
    /// nothing was stored; the config must name the primary. `url` is
    /// without its password.
    #[error(
        "store {url} is a read-only replica (READONLY): nothing was written; \
         point store.redis_url at the primary (after a failover, the promoted one)"
    )]
    ReadOnly {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis refused the write itself (`NOREPLICAS`): fewer replicas are
    /// connected to it than its `min-replicas-to-write`, as on a primary
    /// cut off from its replicas. Nothing was written.
    #[error(
        "store refused the write (NOREPLICAS): the primary has fewer good replicas than its \
         min-replicas-to-write; nothing was written"
    )]
    NoReplicas(#[source] redis::RedisError),
    /// The write reached the primary, but `WAIT` reported it on only
    /// `acked` of the `wanted` replicas (`store.min_replicas_acked`) within
    /// `waited`: not acknowledged, since a failover now could lose it.
    #[error(
        "store: the write reached the primary but WAIT reported it on {acked} of the \
         {wanted} replicas wanted (store.min_replicas_acked) within {waited:?}"
    )]
    NotReplicated {
        acked: u64,
        wanted: u32,
        waited: Duration,
    },
}

impl StoreError {
    /// Whether the store refused or could not confirm a write for want of
    /// replicas (`WAIT` fell short, or Redis's own `min-replicas-to-write`),
    /// as opposed to being unreachable.
    pub fn is_for_want_of_replicas(&self) -> bool {
        matches!(
            self,
            StoreError::NoReplicas(_) | StoreError::NotReplicated { .. }
        )
    }
}

/// The seam between the gateway and where room state lives.
///
/// Every method is one round trip to the store at most, and none of them
/// costs more when the queue is longer. No method takes the time: the store
/// reads its own clock, so that every gateway's calls are judged on one.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A visitor without a ticket arrives: let them straight in as
    /// `pass_id` when nobody waits and there is space and rate budget, or
    /// hand them the next ticket.
    async fn arrive(&self, room: &RoomParams, pass_id: &str) -> Result<Arrival, StoreError>;

    /// A ticket holder comes back: swap the ticket for a pass if its turn has
    /// come. A ticket is swapped once: claiming it again with the same pass id
    /// (the gateway derives it from the ticket) gives the same answer, with
    /// any other id it is spent. `place` is the ticket's place in line: its
    /// number, or for a pre-queue ticket its place in the draw.
    async fn claim(
        &self,
        room: &RoomParams,
        epoch: u64,
        place: u64,
        pass_id: &str,
    ) -> Result<Claim, StoreError>;

    /// The periodic step: expire idle passes and no-shows, let in as many
    /// tickets as space and rate allow, and report the room's figures. Safe
    /// to call from any number of gateways at once.
    async fn advance(&self, room: &RoomParams) -> Result<RoomSnapshot, StoreError>;

    /// Records activity of passes inside (batched by the caller), each at
    /// its time on the store's clock as the caller reckons it; a time ahead
    /// of the store's own counts as now. The caller has verified each
    /// pass's cookie, so a pass the store had expired (a report delayed by
    /// an outage) is counted again, except one that left: those are
    /// returned, and the caller stops honouring them.
    async fn touch(
        &self,
        room: &RoomParams,
        passes: &[(String, Millis)],
    ) -> Result<Vec<String>, StoreError>;

    /// A pass issued in an earlier epoch of the room (the store lost its
    /// state, e.g. a Redis restart without persistence) is counted inside
    /// again, so that capacity holds for visitors admitted before the loss.
    async fn rejoin(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError>;

    /// A visitor leaves: their slot goes to the next in line, and the pass
    /// is remembered as left (for the session length) so that activity
    /// reported for it later does not bring it back.
    async fn leave(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError>;

    /// Applies a live change to the room's settings and reports the figures
    /// with the change in force; a schedule change that cannot stand (see
    /// [`Refusal`]) changes nothing.
    async fn change(&self, room: &RoomParams, change: &RoomChange) -> Result<Changed, StoreError>;

    /// An arrival whose reply never came back (the call failed: it may
    /// have run or not): nobody holds the ticket or pass it gave, so it
    /// must not hold a slot. The caller delivers it once the store answers
    /// again. Returns whether the arrival was found.
    async fn void_arrival(&self, room: &RoomParams, pass_id: &str) -> Result<bool, StoreError>;

    /// A genuine ticket (its signature checked) was shown: the room has
    /// issued at least `number` in `epoch`. A backend that can lose its
    /// state remembers it (see [`RoomSnapshot::generation`]); no round trip.
    fn witness_ticket(&self, _room: &RoomParams, _epoch: u64, _number: u64) {}

    /// Is the store reachable, and can it take writes (Redis: not a
    /// replica)? Not on the request path: `/readyz` asks it.
    async fn ping(&self) -> Result<(), StoreError>;

    /// One gateway's report of its last seconds at the site for the room
    /// (`gateway`: its id, made at start), once a second. The first report
    /// due in a second ticks the room's controller for the whole fleet
    /// ([`adaptive`]); every report learns the pace, the settings in force
    /// and its share of the places. `config` is the room's
    /// `[room.adaptive]`; live changes stored with the room go over it.
    async fn adapt(
        &self,
        room: &RoomParams,
        config: &anteroom_config::Adaptive,
        gateway: &str,
        report: &adaptive::Report,
    ) -> Result<adaptive::View, StoreError>;

    /// A live change to the room's adaptive settings (admin API): every
    /// gateway follows at its next step. Turning it off puts the pace back
    /// at the ceiling at once.
    async fn change_adaptive(
        &self,
        room: &RoomParams,
        change: &adaptive::Overrides,
    ) -> Result<adaptive::Overrides, StoreError>;
}
