//! The Redis backend: room state shared by any number of gateways.
//!
//! Every operation is one round trip: a Lua script (sent by hash, `EVALSHA`,
//! after the first use) that runs the admission arithmetic atomically. Keys
//! of a room share a hash tag so a room lives on one shard.
//!
//! The scripts keep time on Redis's clock (`TIME`, `lua/clock.lua`): no
//! caller's clock enters the room's state, so gateways whose clocks differ
//! share one pace, one expiry and one set of deadlines.

use std::num::NonZeroU32;

use anteroom_config::{Backend, RedisTls};
use redis::Script;

use crate::redis_connection::RedisConnection;
use crate::{
    Arrival, Changed, Claim, Clock, Millis, Refusal, RoomChange, RoomParams, RoomSnapshot,
    RoomState, Schedule, Seed, Store, StoreError, adaptive,
};

/// The store's clock, which every room script opens with.
const CLOCK: &str = include_str!("lua/clock.lua");
const PRELUDE: &str = include_str!("lua/prelude.lua");

pub struct RedisStore {
    pub(crate) connection: RedisConnection,
    arrive: Script,
    claim: Script,
    advance: Script,
    change: Script,
    touch: Script,
    rejoin: Script,
    leave: Script,
    void: Script,
    adapt: Script,
    adapt_apply: Script,
    adapt_change: Script,
    /// What this process has seen of each room's line, sent with every room
    /// script so that the store never believes counters that went back.
    marks: crate::marks::Marks,
    /// `None`: the scripts read Redis's clock. A simulated clock only in
    /// tests (see [`RedisStore::with_simulated_clock`]).
    simulated_clock: Option<Clock>,
    /// Scripts of the buffered write requests (see `redis_buffer`).
    pub(crate) buffer_scripts: crate::redis_buffer::BufferScripts,
    /// Where `enqueue` calls wait to be sent together (see `redis_buffer`);
    /// started on first use.
    pub(crate) enqueues: std::sync::OnceLock<crate::redis_buffer::EnqueueSender>,
    /// Replicas a booking waits for (`store.min_replicas_acked`); `None`:
    /// acknowledged once the primary has it.
    pub(crate) replicas_acked: Option<NonZeroU32>,
    /// The enqueue batcher's own connection when bookings wait for
    /// replicas: `WAIT` holds its connection for up to
    /// [`crate::REPLICA_ACK_TIMEOUT`], and must not hold the room steps'.
    /// Opened on first use.
    pub(crate) waiting_connection: RedisConnection,
}

/// What a primary says of its replication (`INFO replication`, and
/// `CONFIG GET min-replicas-to-write` when Redis allows CONFIG): read at
/// startup, to warn when bookings would wait for replicas that are not
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// `master` or `slave`.
    pub role: String,
    /// Replicas connected to it now.
    pub connected_replicas: u64,
    /// Its `min-replicas-to-write`, if CONFIG answered (managed Redis
    /// services often refuse CONFIG).
    pub min_replicas_to_write: Option<u64>,
    /// How `[store]` named it, for the warnings.
    pub named_by: NamedBy,
}

/// How `[store]` names the Redis the store talks to: what a warning tells
/// the operator to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedBy {
    /// `store.redis_url`: one server.
    RedisUrl,
    /// `store.sentinels` and `store.sentinel_master`: the master they name.
    Sentinels,
    /// `store.cluster_nodes`: a Redis Cluster.
    ClusterNodes,
}

impl NamedBy {
    /// The `[store]` key.
    pub fn key(self) -> &'static str {
        match self {
            NamedBy::RedisUrl => "store.redis_url",
            NamedBy::Sentinels => "store.sentinels",
            NamedBy::ClusterNodes => "store.cluster_nodes",
        }
    }
}

impl Replication {
    /// Reads `INFO replication`'s text, from the server `[store]` names
    /// as `named_by` says.
    pub fn from_info(
        info: &str,
        min_replicas_to_write: Option<u64>,
        named_by: NamedBy,
    ) -> Replication {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
                .map(str::to_owned)
        };
        Replication {
            role: field("role").unwrap_or_default(),
            connected_replicas: field("connected_slaves")
                .and_then(|count| count.parse().ok())
                .unwrap_or(0),
            min_replicas_to_write,
            named_by,
        }
    }

    /// What an operator who asked for `wanted` replicas per booking should
    /// be told about this server, worst first; empty when all is well.
    pub fn warnings(&self, wanted: NonZeroU32) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.role != "master" {
            let remedy = match self.named_by {
                NamedBy::RedisUrl => "point store.redis_url at the primary",
                NamedBy::Sentinels => {
                    "the sentinels are asked again after a refused write; check that they \
                     name the primary (SENTINEL GET-MASTER-ADDR-BY-NAME)"
                }
                NamedBy::ClusterNodes => "check the cluster's primaries (CLUSTER NODES)",
            };
            warnings.push(format!(
                "{} names a Redis whose role is {:?}, not the primary: it refuses writes \
                 (READONLY), so bookings are answered 503; {remedy}",
                self.named_by.key(),
                self.role
            ));
            return warnings;
        }
        if self.connected_replicas < u64::from(wanted.get()) {
            warnings.push(format!(
                "store.min_replicas_acked is {wanted} but the primary has {} replica(s) \
                 connected: bookings are answered 503 (not stored) until {wanted} are",
                self.connected_replicas
            ));
        }
        if self.min_replicas_to_write == Some(0) {
            warnings.push(
                "Redis's min-replicas-to-write is 0: a primary cut off from its replicas (a \
                 split brain) still takes workers' writes, and its workers may deliver \
                 requests the new primary delivers too; set min-replicas-to-write (and \
                 min-replicas-max-lag) on every Redis node"
                    .to_owned(),
            );
        }
        warnings
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` without TLS files: `redis://`, `unix://`, or
    /// `rediss://` trusting the system's roots. See [`RedisStore::with_tls`].
    /// Time is Redis's own.
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::with_tls(url, &RedisTls::default())
    }

    /// What [`RedisStore::with_tls`] checks before it prepares a
    /// connection, without preparing one: for `--check`.
    pub fn check(url: &str, tls: &RedisTls) -> Result<(), StoreError> {
        crate::redis_connection::client(url, tls).map(drop)
    }

    /// The store `[store]` describes (`backend` must be a Redis one): one
    /// server (`redis_url` and the TLS files), the master of a Sentinel
    /// deployment (`sentinels`, `sentinel_master`; followed through a
    /// failover), or a Redis Cluster (`cluster_nodes`). Prepared, not
    /// opened, as [`RedisStore::with_tls`]. Time is Redis's own.
    pub fn for_backend(backend: &Backend) -> Result<RedisStore, StoreError> {
        RedisStore::with_connections(
            RedisConnection::for_backend(backend)?,
            RedisConnection::for_backend_waiting(backend, crate::REPLICA_ACK_TIMEOUT)?,
            None,
        )
    }

    /// [`RedisStore::for_backend`] with a simulated clock (tests only; see
    /// [`RedisStore::with_simulated_clock`]).
    pub fn for_backend_with_simulated_clock(
        backend: &Backend,
        clock: Clock,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::with_connections(
            RedisConnection::for_backend(backend)?,
            RedisConnection::for_backend_waiting(backend, crate::REPLICA_ACK_TIMEOUT)?,
            Some(clock),
        )
    }

    /// What [`RedisStore::for_backend`] checks before it prepares a
    /// connection, without contacting anything: for `--check`.
    pub fn check_backend(backend: &Backend) -> Result<(), StoreError> {
        crate::redis_connection::check(backend)
    }

    /// A store at `url` (config's `store.redis_url`) with `tls` (its
    /// `tls_ca_file`, `tls_cert_file`, `tls_key_file`). Prepares a
    /// connection without opening it: the gateway starts even when Redis is
    /// down, and the connection (re)opens by itself. Fails at once for a URL
    /// that does not parse or TLS files the client cannot use. Time is
    /// Redis's own.
    pub fn with_tls(url: &str, tls: &RedisTls) -> Result<RedisStore, StoreError> {
        RedisStore::on(url, tls, None)
    }

    /// As [`RedisStore::new`], but the room scripts take the time from
    /// `clock` instead of Redis's `TIME`: a simulated store clock, so that
    /// tests can drive expiry and pacing on Redis without waiting. Every
    /// store of a test shares the one `clock` (clones share a manual clock),
    /// so there is still one clock. The binaries never use it.
    pub fn with_simulated_clock(url: &str, clock: Clock) -> Result<RedisStore, StoreError> {
        RedisStore::with_tls_and_simulated_clock(url, &RedisTls::default(), clock)
    }

    /// [`RedisStore::with_simulated_clock`] with TLS files (tests only).
    pub fn with_tls_and_simulated_clock(
        url: &str,
        tls: &RedisTls,
        clock: Clock,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::on(url, tls, Some(clock))
    }

    fn on(
        url: &str,
        tls: &RedisTls,
        simulated_clock: Option<Clock>,
    ) -> Result<RedisStore, StoreError> {
        RedisStore::with_connections(
            RedisConnection::open(url, tls)?,
            RedisConnection::open_waiting(url, tls, crate::REPLICA_ACK_TIMEOUT)?,
            simulated_clock,
        )
    }

    /// `connection` for every call; `waiting_connection` for the batches
    /// of bookings that end in `WAIT` (see `min_replicas_acked`), which
    /// Redis may hold: a connection of their own, so that they hold up
    /// nothing else.
    fn with_connections(
        connection: RedisConnection,
        waiting_connection: RedisConnection,
        simulated_clock: Option<Clock>,
    ) -> Result<RedisStore, StoreError> {
        let room_script = |body: &str| Script::new(&format!("{CLOCK}\n{PRELUDE}\n{body}"));
        let script = |body: &str| Script::new(&format!("{CLOCK}\n{body}"));
        Ok(RedisStore {
            connection,
            arrive: room_script(include_str!("lua/arrive.lua")),
            claim: room_script(include_str!("lua/claim.lua")),
            advance: room_script(include_str!("lua/advance.lua")),
            change: room_script(include_str!("lua/change.lua")),
            touch: script(include_str!("lua/touch.lua")),
            rejoin: script(include_str!("lua/rejoin.lua")),
            leave: script(include_str!("lua/leave.lua")),
            void: room_script(include_str!("lua/void.lua")),
            adapt: script(include_str!("lua/adapt.lua")),
            adapt_apply: Script::new(include_str!("lua/adapt_apply.lua")),
            adapt_change: Script::new(include_str!("lua/adapt_change.lua")),
            marks: crate::marks::Marks::default(),
            simulated_clock,
            buffer_scripts: crate::redis_buffer::BufferScripts::new(),
            enqueues: std::sync::OnceLock::new(),
            replicas_acked: None,
            waiting_connection,
        })
    }

    /// Bookings (`enqueue`) are acknowledged only once Redis's `WAIT`
    /// reports them on `replicas` replicas (`store.min_replicas_acked`);
    /// `None` acknowledges them once the primary has them. Set before the
    /// first `enqueue`.
    pub fn with_min_replicas_acked(mut self, replicas: Option<NonZeroU32>) -> RedisStore {
        self.replicas_acked = replicas;
        self
    }

    /// The primary's replication as it stands (see [`Replication`]).
    pub async fn replication(&self) -> Result<Replication, StoreError> {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        let min_replicas_to_write = self
            .setting("min-replicas-to-write")
            .await
            .ok()
            .and_then(|value| value.parse().ok());
        Ok(Replication::from_info(
            &info,
            min_replicas_to_write,
            self.connection.named_by(),
        ))
    }

    /// Redis's persistence settings, `appendonly` and `appendfsync`: what
    /// "acknowledged" means for a buffered request (see the README).
    pub async fn persistence(&self) -> Result<(String, String), StoreError> {
        let appendonly = self.setting("appendonly").await?;
        let appendfsync = self.setting("appendfsync").await?;
        Ok((appendonly, appendfsync))
    }

    /// One server setting (`CONFIG GET`).
    pub async fn setting(&self, name: &str) -> Result<String, StoreError> {
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        pair.get(1)
            .cloned()
            .ok_or_else(|| StoreError::Protocol(format!("CONFIG GET {name}: {pair:?}")))
    }

    /// Every script's first argument: empty, for Redis's clock, or a
    /// simulated clock's time.
    fn clock_argument(&self) -> String {
        self.simulated_clock
            .as_ref()
            .map(|clock| clock.now().to_string())
            .unwrap_or_default()
    }

    /// A room script (`prelude.lua` and a body) with its keys and the
    /// arguments every one takes.
    fn invocation<'a>(&self, script: &'a Script, room: &RoomParams) -> redis::ScriptInvocation<'a> {
        let keys = RoomKeys::new(&room.name);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.room)
            .key(keys.inside)
            .key(keys.pending)
            .key(keys.arrivals)
            .key(keys.void)
            .arg(self.clock_argument())
            .arg(room.capacity)
            .arg(room.admit_per_minute)
            .arg(room.inside_ttl.as_millis() as u64)
            .arg(room.arrival.as_millis() as u64)
            .arg(new_epoch());
        for mark in self.marks.arguments(room) {
            invocation.arg(mark);
        }
        let time = |at: Option<Millis>| at.map(|at| at.to_string()).unwrap_or_default();
        invocation
            .arg(time(room.schedule.pre_queue_from))
            .arg(time(room.schedule.opens_at))
            .arg(time(room.schedule.closes_at));
        for argument in self.marks.draw_arguments(room) {
            invocation.arg(argument);
        }
        // What this process last saw in force: should the store lose the
        // room, what differs from the config was a live change, kept.
        let seen = self.marks.schedule(room);
        invocation
            .arg(time(seen.pre_queue_from))
            .arg(time(seen.opens_at))
            .arg(time(seen.closes_at));
        invocation
    }

    /// Runs a room script that answers with figures, and takes them in.
    async fn figures(
        &self,
        room: &RoomParams,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<(i64, RoomSnapshot), StoreError> {
        let reply: Vec<redis::Value> = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        let (head, mut snapshot, seed) = parse_snapshot(&reply)?;
        if let Some(seed) = seed {
            self.marks.adopt_seed(&room.name, seed);
        }
        snapshot.seed = self.marks.seed(&room.name);
        self.marks.observe(room, &snapshot);
        Ok((head, snapshot))
    }
}

struct RoomKeys {
    room: String,
    inside: String,
    pending: String,
    left: String,
    arrivals: String,
    void: String,
    reports: String,
}

impl RoomKeys {
    fn new(name: &str) -> RoomKeys {
        RoomKeys {
            room: format!("anteroom:{{{name}}}"),
            inside: format!("anteroom:{{{name}}}:inside"),
            pending: format!("anteroom:{{{name}}}:pending"),
            left: format!("anteroom:{{{name}}}:left"),
            arrivals: format!("anteroom:{{{name}}}:arrivals"),
            void: format!("anteroom:{{{name}}}:void"),
            reports: format!("anteroom:{{{name}}}:reports"),
        }
    }
}

/// A fresh epoch, used only if the room has none yet. 53 bits so that it is
/// exact as a Lua number.
fn new_epoch() -> u64 {
    rand::random::<u64>() >> 11
}

/// How the Lua scripts store a room's state (`set_state`, and the last
/// value of every snapshot): 0 open, 1 paused, 2 closed.
fn state_code(state: RoomState) -> &'static str {
    match state {
        RoomState::Open => "0",
        RoomState::Paused => "1",
        RoomState::Closed => "2",
    }
}

fn state_from_code(code: i64) -> RoomState {
    match code {
        1 => RoomState::Paused,
        2 => RoomState::Closed,
        _ => RoomState::Open,
    }
}

/// A room script's figures: 17 integers (see `prelude.lua`'s `snapshot`),
/// then the room's seed when the caller did not hold it yet.
fn parse_snapshot(reply: &[redis::Value]) -> Result<(i64, RoomSnapshot, Option<Seed>), StoreError> {
    const FIGURES: usize = 17;
    if reply.len() != FIGURES && reply.len() != FIGURES + 1 {
        return Err(StoreError::Protocol(format!(
            "room script returned {} values, expected {FIGURES} or {}",
            reply.len(),
            FIGURES + 1
        )));
    }
    let mut numbers = [0i64; FIGURES];
    for (number, value) in numbers.iter_mut().zip(reply) {
        *number = match value {
            redis::Value::Int(number) => *number,
            other => {
                return Err(StoreError::Protocol(format!(
                    "room script returned {other:?} where a number belongs"
                )));
            }
        };
    }
    let seed = match reply.get(FIGURES) {
        None => None,
        Some(redis::Value::BulkString(bytes)) => {
            let text = String::from_utf8_lossy(bytes);
            Some(Seed::from_hex(&text).map_err(|error| {
                StoreError::Protocol(format!("the room's seed is not a seed: {error}"))
            })?)
        }
        Some(other) => {
            return Err(StoreError::Protocol(format!(
                "room script returned {other:?} where the seed belongs"
            )));
        }
    };
    let [
        head,
        epoch,
        issued,
        admitted,
        inside,
        pending,
        capacity,
        rate,
        state,
        sessions_expired,
        no_shows,
        taken_at,
        generation,
        pre_queue_from,
        opens_at,
        closes_at,
        drawn,
    ] = numbers;
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    let setting = |value: i64| u32::try_from(value).unwrap_or(u32::MAX);
    // -1 stands for none.
    let optional = |value: i64| u64::try_from(value).ok();
    Ok((
        head,
        RoomSnapshot {
            epoch: count(epoch),
            issued: count(issued),
            admitted_through: count(admitted),
            inside: count(inside),
            pending: count(pending),
            capacity: setting(capacity),
            admit_per_minute: setting(rate),
            state: state_from_code(state),
            sessions_expired: count(sessions_expired),
            no_shows: count(no_shows),
            taken_at: count(taken_at),
            generation: count(generation),
            schedule: Schedule {
                pre_queue_from: optional(pre_queue_from),
                opens_at: optional(opens_at),
                closes_at: optional(closes_at),
            },
            drawn: optional(drawn),
            seed: None,
        },
        seed,
    ))
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn arrive(&self, room: &RoomParams, pass_id: &str) -> Result<Arrival, StoreError> {
        let mut invocation = self.invocation(&self.arrive, room);
        invocation.arg(pass_id);
        let (entered, snapshot) = self.figures(room, &invocation).await?;
        Ok(if entered == 1 {
            Arrival::Admitted { snapshot }
        } else if entered == -2 {
            Arrival::Held { snapshot }
        } else if entered == -3 {
            Arrival::NotOpen { snapshot }
        } else if entered < 0 {
            Arrival::Closed { snapshot }
        } else {
            Arrival::Ticketed {
                ticket: snapshot.issued,
                snapshot,
            }
        })
    }

    async fn claim(
        &self,
        room: &RoomParams,
        epoch: u64,
        place: u64,
        pass_id: &str,
    ) -> Result<Claim, StoreError> {
        // Places run over the same numbers as tickets (1..=issued).
        self.marks.witness_ticket(&room.name, epoch, place);
        let mut invocation = self.invocation(&self.claim, room);
        invocation.arg(epoch).arg(place).arg(pass_id);
        let reply: i64 = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        if reply == 1 {
            self.marks.witness_admitted(&room.name, epoch, place);
        }
        Ok(match reply {
            1 => Claim::Admitted,
            0 => Claim::NotYet,
            _ => Claim::Spent,
        })
    }

    async fn advance(&self, room: &RoomParams) -> Result<RoomSnapshot, StoreError> {
        let invocation = self.invocation(&self.advance, room);
        self.figures(room, &invocation)
            .await
            .map(|(_, snapshot)| snapshot)
    }

    async fn touch(
        &self,
        room: &RoomParams,
        passes: &[(String, Millis)],
    ) -> Result<Vec<String>, StoreError> {
        if passes.is_empty() {
            return Ok(Vec::new());
        }
        let keys = RoomKeys::new(&room.name);
        let mut invocation = self.touch.prepare_invoke();
        invocation
            .key(&keys.inside)
            .key(&keys.left)
            .arg(self.clock_argument())
            .arg(room.inside_ttl.as_millis() as u64);
        for (pass_id, at) in passes {
            invocation.arg(pass_id).arg(*at);
        }
        invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }

    async fn rejoin(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError> {
        let keys = RoomKeys::new(&room.name);
        self.rejoin
            .key(&keys.inside)
            .arg(self.clock_argument())
            .arg(pass_id)
            .invoke_async::<()>(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }

    async fn leave(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError> {
        let keys = RoomKeys::new(&room.name);
        self.leave
            .key(&keys.inside)
            .key(&keys.left)
            .arg(self.clock_argument())
            .arg(pass_id)
            .invoke_async::<()>(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }

    async fn change(&self, room: &RoomParams, change: &RoomChange) -> Result<Changed, StoreError> {
        let text = |value: Option<u32>| value.map(|v| v.to_string()).unwrap_or_default();
        let state = change.state.map(state_code).unwrap_or("");
        // '' leaves a time, 'none' clears it.
        let time = |value: Option<Option<Millis>>| match value {
            None => String::new(),
            Some(None) => "none".to_owned(),
            Some(Some(at)) => at.to_string(),
        };
        let schedule = &change.schedule;
        let mut invocation = self.invocation(&self.change, room);
        invocation
            .arg(text(change.capacity))
            .arg(text(change.admit_per_minute))
            .arg(state)
            .arg(time(schedule.pre_queue_from))
            .arg(time(schedule.opens_at))
            .arg(time(schedule.closes_at));
        let (head, snapshot) = self.figures(room, &invocation).await?;
        let refusal = match head {
            -10 => Refusal::Drawn {
                pre_queue: snapshot.drawn.unwrap_or(0),
            },
            -11 => Refusal::InThePast { key: "opens_at" },
            -12 => Refusal::InThePast { key: "closes_at" },
            -13 => Refusal::TicketsIssued {
                issued: snapshot.issued,
            },
            -14 => Refusal::DrawPromised {
                pre_queue: snapshot.issued,
            },
            -15 => match schedule.applied_to(snapshot.schedule).check() {
                Err(error) => Refusal::Order(error),
                Ok(()) => {
                    return Err(StoreError::Protocol(format!(
                        "change.lua refused a schedule in order: {:?}",
                        schedule.applied_to(snapshot.schedule)
                    )));
                }
            },
            _ => return Ok(Changed::Applied(snapshot)),
        };
        Ok(Changed::Refused(refusal))
    }

    async fn void_arrival(&self, room: &RoomParams, pass_id: &str) -> Result<bool, StoreError> {
        let mut invocation = self.invocation(&self.void, room);
        invocation.arg(pass_id);
        let found: i64 = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        Ok(found == 1)
    }

    fn witness_ticket(&self, room: &RoomParams, epoch: u64, number: u64) {
        self.marks.witness_ticket(&room.name, epoch, number);
    }

    /// Reachable and writable: a replica (a primary demoted by a
    /// failover answers `PING` but refuses every write) is
    /// [`StoreError::NotPrimary`], so that a gateway or worker pointed at one
    /// does not say it is ready.
    async fn ping(&self) -> Result<(), StoreError> {
        self.connection.check_writable().await
    }

    async fn adapt(
        &self,
        room: &RoomParams,
        config: &anteroom_config::Adaptive,
        gateway: &str,
        report: &adaptive::Report,
    ) -> Result<adaptive::View, StoreError> {
        let keys = RoomKeys::new(&room.name);
        let names = adaptive::Controller::field_names();
        let opens_at = room
            .schedule
            .opens_at
            .map(|at| at.to_string())
            .unwrap_or_default();
        let mut invocation = self.adapt.prepare_invoke();
        invocation
            .key(&keys.room)
            .key(&keys.reports)
            .arg(self.clock_argument())
            .arg(gateway)
            .arg(report.encode())
            .arg(opens_at)
            .arg(adaptive::REPORT_FORGET_MS)
            .arg(adaptive::TICK_DUE_MS);
        for name in &names {
            invocation.arg(*name);
        }
        let reply: Vec<redis::Value> = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        let read = AdaptReply::parse(&reply, &names)?;
        let overrides = read.overrides;
        let ceiling = read.ceiling.unwrap_or(room.admit_per_minute);
        let settings = overrides.settings(config, ceiling);
        let mut controller = adaptive::Controller::from_fields(&read.fields);
        let had = !read.fields.is_empty();
        let ticked = adaptive::step(&mut controller, &settings, &read.facts, &read.reports);
        if !settings.enabled && had {
            let mut invocation = self.adapt_apply.prepare_invoke();
            invocation.key(&keys.room).arg("");
            for name in &names {
                invocation.arg(*name);
            }
            let _: i64 = invocation
                .invoke_async(&mut self.connection.handle())
                .await
                .map_err(|error| self.connection.failed(error))?;
        } else if !read.claimed {
            // Another gateway holds this second's tick: what is stored is
            // the state, whatever this call computed.
            controller = adaptive::Controller::from_fields(&read.fields);
        } else if ticked || !had {
            // A tick, or a controller just started: written under the claim.
            if let Some(state) = &controller {
                let mut invocation = self.adapt_apply.prepare_invoke();
                invocation.key(&keys.room).arg(read.facts.now);
                for (name, value) in state.fields() {
                    invocation.arg(name).arg(value);
                }
                let _: i64 = invocation
                    .invoke_async(&mut self.connection.handle())
                    .await
                    .map_err(|error| self.connection.failed(error))?;
            }
        }
        Ok(adaptive::View::of(
            settings,
            controller,
            gateway,
            report,
            read.facts.now,
        ))
    }

    async fn change_adaptive(
        &self,
        room: &RoomParams,
        change: &adaptive::Overrides,
    ) -> Result<adaptive::Overrides, StoreError> {
        let keys = RoomKeys::new(&room.name);
        let text = |value: Option<String>| value.unwrap_or_default();
        let mut invocation = self.adapt_change.prepare_invoke();
        invocation
            .key(&keys.room)
            .arg(text(
                change
                    .enabled
                    .map(|on| if on { "1" } else { "0" }.to_owned()),
            ))
            .arg(text(change.min_admit_per_minute.map(|v| v.to_string())))
            .arg(text(change.latency_p90_ms.map(|v| v.to_string())))
            .arg(text(change.max_error_rate.map(|v| v.to_string())));
        for name in adaptive::Controller::field_names() {
            invocation.arg(name);
        }
        let reply: Vec<Option<String>> = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        Ok(overrides_from(
            reply.first().cloned().flatten().as_deref(),
            &reply[1.min(reply.len())..],
        ))
    }
}

/// The live adaptive settings as stored (`set_adaptive`, `set_min_admit`,
/// `set_latency_p90_ms`, `set_max_error_rate`); unreadable values are
/// taken as unset.
fn overrides_from(enabled: Option<&str>, rest: &[Option<String>]) -> adaptive::Overrides {
    let get = |index: usize| rest.get(index).cloned().flatten();
    adaptive::Overrides {
        enabled: enabled.map(|text| text == "1"),
        min_admit_per_minute: get(0).and_then(|text| text.parse().ok()),
        latency_p90_ms: get(1).and_then(|text| text.parse().ok()),
        max_error_rate: get(2).and_then(|text| text.parse().ok()),
    }
}

/// `adapt.lua`'s reply, read.
struct AdaptReply {
    claimed: bool,
    overrides: adaptive::Overrides,
    /// `set_rate`, when the ceiling was changed live.
    ceiling: Option<u32>,
    facts: adaptive::Facts,
    /// The controller's stored fields (only those present).
    fields: std::collections::HashMap<String, String>,
    /// Gateway id, stamp, report.
    reports: Vec<(String, Millis, adaptive::Report)>,
}

impl AdaptReply {
    fn parse(reply: &[redis::Value], names: &[&'static str]) -> Result<AdaptReply, StoreError> {
        let bad = || StoreError::Protocol(format!("adapt.lua returned {reply:?}"));
        let text = |index: usize| -> Option<String> {
            match reply.get(index)? {
                redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
                redis::Value::SimpleString(text) => Some(text.clone()),
                redis::Value::Int(number) => Some(number.to_string()),
                _ => None,
            }
        };
        let number = |index: usize| -> Option<u64> { text(index)?.parse().ok() };
        let now = number(0).ok_or_else(bad)?;
        let claimed = number(1).ok_or_else(bad)? == 1;
        let rest: Vec<Option<String>> = (3..6).map(text).collect();
        let overrides = overrides_from(text(2).as_deref(), &rest);
        let ceiling = text(6).and_then(|value| value.parse().ok());
        let facts = adaptive::Facts {
            now,
            waiting: number(7)
                .ok_or_else(bad)?
                .saturating_sub(number(8).ok_or_else(bad)?),
            admitted: number(8).ok_or_else(bad)?,
            serving: number(9).ok_or_else(bad)? == 1,
        };
        let mut fields = std::collections::HashMap::new();
        for (offset, name) in names.iter().enumerate() {
            if let Some(value) = text(10 + offset) {
                fields.insert((*name).to_owned(), value);
            }
        }
        let mut reports = Vec::new();
        let mut index = 10 + names.len();
        while index + 2 < reply.len() {
            let stamped = number(index + 1).ok_or_else(bad)?;
            // A report this version cannot read (another version's) is
            // left out of the sum rather than failing the call.
            if let (Some(id), Some(report)) = (
                text(index),
                text(index + 2).and_then(|text| adaptive::Report::decode(&text)),
            ) {
                reports.push((id, stamped, report));
            }
            index += 3;
        }
        Ok(AdaptReply {
            claimed,
            overrides,
            ceiling,
            facts,
            fields,
            reports,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
                           slave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\n";

    fn one() -> NonZeroU32 {
        NonZeroU32::MIN
    }

    #[test]
    fn info_replication_gives_the_role_and_the_replicas() {
        let replication = Replication::from_info(PRIMARY, Some(1), NamedBy::RedisUrl);
        assert_eq!(replication.role, "master");
        assert_eq!(replication.connected_replicas, 1);
        assert!(replication.warnings(one()).is_empty());
    }

    #[test]
    fn too_few_replicas_a_replica_and_no_min_replicas_to_write_are_told() {
        let two = NonZeroU32::new(2).unwrap();
        let warnings = Replication::from_info(PRIMARY, None, NamedBy::RedisUrl).warnings(two);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("1 replica(s) connected"),
            "{warnings:?}"
        );

        let warnings = Replication::from_info(PRIMARY, Some(0), NamedBy::RedisUrl).warnings(one());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("min-replicas-to-write is 0"),
            "{warnings:?}"
        );

        let replica = "role:slave\r\nmaster_host:127.0.0.1\r\nconnected_slaves:0\r\n";
        let warnings = Replication::from_info(replica, Some(1), NamedBy::RedisUrl).warnings(one());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("READONLY"), "{warnings:?}");
        assert!(warnings[0].contains("store.redis_url"), "{warnings:?}");
    }

    #[test]
    fn a_replica_named_by_the_sentinels_is_told_by_their_key() {
        let replica = "role:slave\r\nmaster_host:127.0.0.1\r\nconnected_slaves:0\r\n";
        let warnings = Replication::from_info(replica, Some(1), NamedBy::Sentinels).warnings(one());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("store.sentinels"), "{warnings:?}");
        assert!(!warnings[0].contains("store.redis_url"), "{warnings:?}");
    }
}
