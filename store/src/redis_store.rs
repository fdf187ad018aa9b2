//! The Redis backend: room state shared by any number of gateways.
//!
//! Every operation is one round trip: a Lua script (sent by hash, `EVALSHA`,
//! after the first use) that runs the admission arithmetic atomically, or one
//! pipeline. Keys of a room share a hash tag so a room lives on one shard.

use anteroom_config::RedisTls;
use redis::Script;

use crate::redis_connection::RedisConnection;
use crate::{
    Arrival, Claim, Millis, RoomChange, RoomParams, RoomSnapshot, RoomState, Store, StoreError,
};

const PRELUDE: &str = include_str!("lua/prelude.lua");

pub struct RedisStore {
    pub(crate) connection: RedisConnection,
    arrive: Script,
    claim: Script,
    advance: Script,
    change: Script,
    touch: Script,
    /// Scripts of the buffered write requests (see `redis_buffer`).
    pub(crate) buffer_scripts: crate::redis_buffer::BufferScripts,
    /// Where `enqueue` calls wait to be sent together (see `redis_buffer`);
    /// started on first use.
    pub(crate) enqueues: std::sync::OnceLock<crate::redis_buffer::EnqueueSender>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store at `url` without TLS files: `redis://`, `unix://`, or
    /// `rediss://` trusting the system's roots. See [`RedisStore::with_tls`].
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::with_tls(url, &RedisTls::default())
    }

    /// What [`RedisStore::with_tls`] checks before it prepares a
    /// connection, without preparing one: for `--check`.
    pub fn check(url: &str, tls: &RedisTls) -> Result<(), StoreError> {
        crate::redis_connection::client(url, tls).map(drop)
    }

    /// A store at `url` (config's `store.redis_url`) with `tls` (its
    /// `tls_ca_file`, `tls_cert_file`, `tls_key_file`). Prepares a
    /// connection without opening it: the gateway starts even when Redis is
    /// down, and the connection (re)opens by itself. Fails at once for a URL
    /// that does not parse or TLS files the client cannot use.
    pub fn with_tls(url: &str, tls: &RedisTls) -> Result<RedisStore, StoreError> {
        let connection = RedisConnection::open(url, tls)?;
        let script = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Ok(RedisStore {
            connection,
            arrive: script(include_str!("lua/arrive.lua")),
            claim: script(include_str!("lua/claim.lua")),
            advance: script(include_str!("lua/advance.lua")),
            change: script(include_str!("lua/change.lua")),
            touch: Script::new(include_str!("lua/touch.lua")),
            buffer_scripts: crate::redis_buffer::BufferScripts::new(),
            enqueues: std::sync::OnceLock::new(),
        })
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

    fn invocation<'a>(
        script: &'a Script,
        room: &RoomParams,
        now: Millis,
    ) -> redis::ScriptInvocation<'a> {
        let keys = RoomKeys::new(&room.name);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.room)
            .key(keys.inside)
            .key(keys.pending)
            .arg(now)
            .arg(room.capacity)
            .arg(room.admit_per_minute)
            .arg(room.inside_ttl.as_millis() as u64)
            .arg(room.arrival.as_millis() as u64)
            .arg(new_epoch());
        invocation
    }
}

struct RoomKeys {
    room: String,
    inside: String,
    pending: String,
    left: String,
}

impl RoomKeys {
    fn new(name: &str) -> RoomKeys {
        RoomKeys {
            room: format!("anteroom:{{{name}}}"),
            inside: format!("anteroom:{{{name}}}:inside"),
            pending: format!("anteroom:{{{name}}}:pending"),
            left: format!("anteroom:{{{name}}}:left"),
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

fn parse_snapshot(reply: &[i64], now: Millis) -> Result<(i64, RoomSnapshot), StoreError> {
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
    ] = reply
    else {
        return Err(StoreError::Protocol(format!(
            "room script returned {} values, expected 11",
            reply.len()
        )));
    };
    let count = |value: &i64| u64::try_from(*value).unwrap_or(0);
    let setting = |value: &i64| u32::try_from(*value).unwrap_or(u32::MAX);
    Ok((
        *head,
        RoomSnapshot {
            epoch: count(epoch),
            issued: count(issued),
            admitted_through: count(admitted),
            inside: count(inside),
            pending: count(pending),
            capacity: setting(capacity),
            admit_per_minute: setting(rate),
            state: state_from_code(*state),
            sessions_expired: count(sessions_expired),
            no_shows: count(no_shows),
            taken_at: now,
        },
    ))
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn arrive(
        &self,
        room: &RoomParams,
        pass_id: &str,
        now: Millis,
    ) -> Result<Arrival, StoreError> {
        let mut invocation = Self::invocation(&self.arrive, room, now);
        invocation.arg(pass_id);
        let reply: Vec<i64> = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        let (entered, snapshot) = parse_snapshot(&reply, now)?;
        Ok(if entered == 1 {
            Arrival::Admitted { snapshot }
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
        ticket: u64,
        pass_id: &str,
        now: Millis,
    ) -> Result<Claim, StoreError> {
        let mut invocation = Self::invocation(&self.claim, room, now);
        invocation.arg(epoch).arg(ticket).arg(pass_id);
        let reply: i64 = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        Ok(match reply {
            1 => Claim::Admitted,
            0 => Claim::NotYet,
            _ => Claim::Spent,
        })
    }

    async fn advance(&self, room: &RoomParams, now: Millis) -> Result<RoomSnapshot, StoreError> {
        let reply: Vec<i64> = Self::invocation(&self.advance, room, now)
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        parse_snapshot(&reply, now).map(|(_, snapshot)| snapshot)
    }

    async fn touch(
        &self,
        room: &RoomParams,
        passes: &[(String, Millis)],
        now: Millis,
    ) -> Result<Vec<String>, StoreError> {
        if passes.is_empty() {
            return Ok(Vec::new());
        }
        let keys = RoomKeys::new(&room.name);
        let mut invocation = self.touch.prepare_invoke();
        invocation
            .key(&keys.inside)
            .key(&keys.left)
            .arg(now)
            .arg(room.inside_ttl.as_millis() as u64);
        for (pass_id, at) in passes {
            invocation.arg(pass_id).arg(*at);
        }
        invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }

    async fn rejoin(
        &self,
        room: &RoomParams,
        pass_id: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let keys = RoomKeys::new(&room.name);
        redis::cmd("ZADD")
            .arg(&keys.inside)
            .arg("NX")
            .arg(now)
            .arg(pass_id)
            .query_async::<()>(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }

    async fn leave(&self, room: &RoomParams, pass_id: &str, now: Millis) -> Result<(), StoreError> {
        let keys = RoomKeys::new(&room.name);
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(&keys.inside)
            .arg(pass_id)
            .ignore()
            .cmd("ZADD")
            .arg(&keys.left)
            .arg(now)
            .arg(pass_id)
            .ignore()
            .query_async::<()>(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }

    async fn change(
        &self,
        room: &RoomParams,
        change: &RoomChange,
        now: Millis,
    ) -> Result<RoomSnapshot, StoreError> {
        let text = |value: Option<u32>| value.map(|v| v.to_string()).unwrap_or_default();
        let state = change.state.map(state_code).unwrap_or("");
        let mut invocation = Self::invocation(&self.change, room, now);
        invocation
            .arg(text(change.capacity))
            .arg(text(change.admit_per_minute))
            .arg(state);
        let reply: Vec<i64> = invocation
            .invoke_async(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))?;
        parse_snapshot(&reply, now).map(|(_, snapshot)| snapshot)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection.handle())
            .await
            .map_err(|error| self.connection.failed(error))
    }
}
