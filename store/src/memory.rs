//! The in-memory backend: one process holds every room. The embedded default.
//!
//! One process, one clock: the store keeps time on the [`Clock`] it is
//! given, the gateway's own, so the gateway's reckoning of the store's time
//! is its own clock exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use crate::admission::{self, Bucket};
use crate::{
    Arrival, Changed, Claim, Clock, Millis, Phase, RoomChange, RoomParams, RoomSnapshot, RoomState,
    Schedule, Seed, Store, StoreError,
};

/// Every room's state in this process. Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// The store's clock: every time compared is read here.
    clock: Clock,
    // A std Mutex: every critical section is a few map operations and never
    // awaits, so an async lock would only add cost.
    rooms: Mutex<HashMap<String, RoomData>>,
    /// Buffered requests, by buffer name (see `memory_buffer`).
    pub(crate) buffers: Mutex<HashMap<String, crate::memory_buffer::BufferData>>,
}

#[derive(Debug)]
struct RoomData {
    epoch: u64,
    issued: u64,
    admitted_through: u64,
    bucket: Bucket,
    /// pass id → last activity.
    inside: HashMap<String, Millis>,
    /// The same passes ordered by last activity, for expiry.
    inside_by_activity: BTreeSet<(Millis, String)>,
    /// Admitted ticket → deadline to show up. Tickets are admitted in order at
    /// non-decreasing times, so deadlines are ordered like the tickets.
    pending: BTreeMap<u64, Millis>,
    /// Live changes (admin API) over the config's settings.
    settings: RoomChange,
    /// The draw's seed, from the room's first moment.
    seed: Seed,
    /// Pre-queue tickets the draw ordered, once made.
    drawn: Option<u64>,
    /// Whether the line began before its opening (its tickets until the
    /// opening are a pre-queue); a line that handed out tickets before an
    /// opening was given to it draws nothing.
    pre_queue_line: bool,
    /// Passes that left → when; kept for `inside_ttl`.
    left: HashMap<String, Millis>,
    sessions_expired: u64,
    no_shows: u64,
    /// Adaptive admission: live changes over the config's, the controller
    /// (while on), and each gateway's latest report with its time.
    adaptive: crate::adaptive::Overrides,
    controller: Option<crate::adaptive::Controller>,
    reports: HashMap<String, (Millis, crate::adaptive::Report)>,
}

impl MemoryStore {
    /// A store on the system's clock.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store keeping time on `clock`: the gateway's own, or a manual one
    /// that tests move.
    pub fn with_clock(clock: Clock) -> MemoryStore {
        MemoryStore {
            clock,
            ..MemoryStore::default()
        }
    }

    /// Runs `f` on the room's state, housekept at the store's time, which
    /// `f` is given.
    fn with_room<T>(
        &self,
        room: &RoomParams,
        f: impl FnOnce(&mut RoomData, Millis) -> T,
    ) -> Result<T, StoreError> {
        let now = self.clock.now();
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| StoreError::Protocol("memory store lock poisoned".into()))?;
        let state = rooms
            .entry(room.name.clone())
            .or_insert_with(|| RoomData::new(room, now));
        state.housekeep(room, now);
        Ok(f(state, now))
    }
}

impl RoomData {
    fn new(room: &RoomParams, now: Millis) -> RoomData {
        RoomData {
            epoch: rand::random::<u64>() >> 11, // fits a JSON number / Lua double exactly
            issued: 0,
            admitted_through: 0,
            bucket: Bucket::full(room.admit_per_minute, now),
            inside: HashMap::new(),
            inside_by_activity: BTreeSet::new(),
            pending: BTreeMap::new(),
            settings: RoomChange::default(),
            seed: Seed::generate(),
            drawn: None,
            pre_queue_line: false,
            left: HashMap::new(),
            sessions_expired: 0,
            no_shows: 0,
            adaptive: crate::adaptive::Overrides::default(),
            controller: None,
            reports: HashMap::new(),
        }
    }

    fn capacity(&self, room: &RoomParams) -> u32 {
        self.settings.capacity.unwrap_or(room.capacity)
    }

    fn admit_per_minute(&self, room: &RoomParams) -> u32 {
        self.settings
            .admit_per_minute
            .unwrap_or(room.admit_per_minute)
    }

    fn state(&self) -> RoomState {
        self.settings.state.unwrap_or_default()
    }

    fn schedule(&self, room: &RoomParams) -> Schedule {
        self.settings.schedule.applied_to(room.schedule)
    }

    /// Where the schedule stands; once drawn, open whatever it says.
    fn phase(&self, room: &RoomParams, now: Millis) -> Phase {
        match self.schedule(room).phase(now) {
            Phase::NotOpen | Phase::PreQueue if self.drawn.is_some() => Phase::Open,
            phase => phase,
        }
    }

    /// Expire idle passes and no-shows, and accrue admission budget.
    fn housekeep(&mut self, room: &RoomParams, now: Millis) {
        let idle_before = now.saturating_sub(room.inside_ttl.as_millis() as u64);
        while let Some((last_seen, _)) = self.inside_by_activity.first() {
            if *last_seen >= idle_before {
                break;
            }
            if let Some((_, pass_id)) = self.inside_by_activity.pop_first() {
                self.inside.remove(&pass_id);
                self.sessions_expired += 1;
            }
        }
        let gap = now.saturating_sub(self.bucket.updated_at);
        if gap > admission::OUTAGE_GAP_MS {
            for deadline in self.pending.values_mut() {
                *deadline += gap;
            }
        }
        // Deadlines are ordered like the tickets: expired ones are in front.
        while let Some((_, deadline)) = self.pending.first_key_value() {
            if *deadline > now {
                break;
            }
            self.pending.pop_first();
            self.no_shows += 1;
        }
        self.left.retain(|_, at| *at >= idle_before);
        // The draw: at the opening, every ticket handed out so far is in
        // the pre-queue, and their order is fixed from here on.
        let opens_at = self.schedule(room).opens_at;
        if self.drawn.is_none() && self.issued == 0 && opens_at.is_some_and(|at| now < at) {
            self.pre_queue_line = true;
        }
        if self.drawn.is_none() && opens_at.is_some_and(|at| now >= at) {
            self.drawn = Some(if self.pre_queue_line { self.issued } else { 0 });
        }
        let admit_per_minute = self.pace(room);
        self.bucket.refill(admit_per_minute, now);
    }

    /// What the bucket accrues at: the ceiling, or the adaptive pace under
    /// it while the controller runs.
    fn pace(&self, room: &RoomParams) -> u32 {
        let ceiling = self.admit_per_minute(room);
        match (&self.controller, self.adaptive.enabled) {
            (_, Some(false)) | (None, _) => ceiling,
            (Some(controller), _) => controller.whole_pace().min(ceiling),
        }
    }

    fn enter(&mut self, pass_id: &str, now: Millis) {
        if let Some(previous) = self.inside.insert(pass_id.to_owned(), now) {
            self.inside_by_activity
                .remove(&(previous, pass_id.to_owned()));
        }
        self.inside_by_activity.insert((now, pass_id.to_owned()));
    }

    fn free_slots(&self, room: &RoomParams) -> u64 {
        admission::free_slots(
            self.capacity(room),
            self.inside.len() as u64,
            self.pending.len() as u64,
        )
    }

    fn snapshot(&self, room: &RoomParams, now: Millis) -> RoomSnapshot {
        RoomSnapshot {
            capacity: self.capacity(room),
            admit_per_minute: self.admit_per_minute(room),
            state: self.state(),
            epoch: self.epoch,
            issued: self.issued,
            admitted_through: self.admitted_through,
            inside: self.inside.len() as u64,
            pending: self.pending.len() as u64,
            sessions_expired: self.sessions_expired,
            no_shows: self.no_shows,
            taken_at: now,
            // One process: the state is never lost while anyone uses it.
            generation: 0,
            schedule: self.schedule(room),
            drawn: self.drawn,
            seed: Some(self.seed),
        }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn arrive(&self, room: &RoomParams, pass_id: &str) -> Result<Arrival, StoreError> {
        self.with_room(room, |state, now| {
            let phase = state.phase(room, now);
            if state.state() == RoomState::Closed || phase == Phase::Closed {
                return Arrival::Closed {
                    snapshot: state.snapshot(room, now),
                };
            }
            if phase == Phase::NotOpen {
                return Arrival::NotOpen {
                    snapshot: state.snapshot(room, now),
                };
            }
            state.issued += 1;
            if phase == Phase::PreQueue {
                // Nobody goes straight in before the draw.
                return Arrival::Ticketed {
                    ticket: state.issued,
                    snapshot: state.snapshot(room, now),
                };
            }
            let nobody_waits = state.issued == state.admitted_through + 1;
            if nobody_waits
                && state.state() == RoomState::Open
                && state.free_slots(room) > 0
                && state.bucket.whole() >= 1
            {
                state.admitted_through = state.issued;
                state.bucket.take(1);
                state.enter(pass_id, now);
                Arrival::Admitted {
                    snapshot: state.snapshot(room, now),
                }
            } else {
                Arrival::Ticketed {
                    ticket: state.issued,
                    snapshot: state.snapshot(room, now),
                }
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
        self.with_room(room, |state, now| {
            if epoch != state.epoch {
                Claim::Spent
            } else if state.pending.remove(&place).is_some() {
                state.enter(pass_id, now);
                Claim::Admitted
            } else if state.inside.contains_key(pass_id) {
                // Claimed already with this very pass: the same answer.
                Claim::Admitted
            } else if place > state.admitted_through {
                Claim::NotYet
            } else {
                Claim::Spent
            }
        })
    }

    async fn advance(&self, room: &RoomParams) -> Result<RoomSnapshot, StoreError> {
        self.with_room(room, |state, now| {
            // Nobody is let in before the opening.
            let opened = !matches!(state.phase(room, now), Phase::NotOpen | Phase::PreQueue);
            let budget = if state.state() == RoomState::Open && opened {
                state.bucket.whole()
            } else {
                0
            };
            let count = admission::admit_count(
                budget,
                state.free_slots(room),
                state.issued - state.admitted_through,
            );
            let deadline = now + room.arrival.as_millis() as u64;
            for ticket in state.admitted_through + 1..=state.admitted_through + count {
                state.pending.insert(ticket, deadline);
            }
            state.admitted_through += count;
            state.bucket.take(count);
            state.snapshot(room, now)
        })
    }

    async fn touch(
        &self,
        room: &RoomParams,
        passes: &[(String, Millis)],
    ) -> Result<Vec<String>, StoreError> {
        self.with_room(room, |state, now| {
            let mut revoked = Vec::new();
            for (pass_id, at) in passes {
                if state.left.contains_key(pass_id) {
                    revoked.push(pass_id.clone());
                    continue;
                }
                // Activity cannot be in the future: a time ahead of ours
                // (a caller's reckoning off) counts as now.
                let at = (*at).min(now);
                // A newer time only.
                match state.inside.get(pass_id).copied() {
                    Some(last_seen) if at <= last_seen => {}
                    _ => state.enter(pass_id, at),
                }
            }
            revoked
        })
    }

    async fn rejoin(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError> {
        self.with_room(room, |state, now| {
            if !state.inside.contains_key(pass_id) {
                state.enter(pass_id, now);
            }
        })
    }

    async fn leave(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError> {
        self.with_room(room, |state, now| {
            if let Some(last_seen) = state.inside.remove(pass_id) {
                state
                    .inside_by_activity
                    .remove(&(last_seen, pass_id.to_owned()));
            }
            state.left.insert(pass_id.to_owned(), now);
        })
    }

    async fn change(&self, room: &RoomParams, change: &RoomChange) -> Result<Changed, StoreError> {
        self.with_room(room, |state, now| {
            if !change.schedule.is_empty() {
                let checked = admission::change_schedule(
                    state.schedule(room),
                    &change.schedule,
                    state.drawn,
                    state.issued,
                    now,
                );
                if let Err(refusal) = checked {
                    return Changed::Refused(refusal);
                }
                let set = &mut state.settings.schedule;
                let asked = change.schedule;
                set.pre_queue_from = asked.pre_queue_from.or(set.pre_queue_from);
                set.opens_at = asked.opens_at.or(set.opens_at);
                set.closes_at = asked.closes_at.or(set.closes_at);
            }
            if let Some(capacity) = change.capacity {
                state.settings.capacity = Some(capacity);
            }
            if let Some(rate) = change.admit_per_minute {
                state.settings.admit_per_minute = Some(rate);
            }
            if let Some(room_state) = change.state {
                state.settings.state = Some(room_state);
            }
            Changed::Applied(state.snapshot(room, now))
        })
    }

    /// A call to this store always returns: no arrival goes unanswered.
    async fn void_arrival(&self, _room: &RoomParams, _pass_id: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn adapt(
        &self,
        room: &RoomParams,
        config: &anteroom_config::Adaptive,
        gateway: &str,
        report: &crate::adaptive::Report,
    ) -> Result<crate::adaptive::View, StoreError> {
        self.with_room(room, |state, now| {
            state
                .reports
                .insert(gateway.to_owned(), (now, report.clone()));
            state
                .reports
                .retain(|_, (at, _)| now.saturating_sub(*at) <= crate::adaptive::REPORT_FORGET_MS);
            let settings = state
                .adaptive
                .settings(config, state.admit_per_minute(room));
            let opened = !matches!(state.phase(room, now), Phase::NotOpen | Phase::PreQueue);
            let facts = crate::adaptive::Facts {
                now,
                waiting: state.issued - state.admitted_through,
                admitted: state.admitted_through,
                serving: state.state() == RoomState::Open && opened,
            };
            let reports: Vec<_> = state
                .reports
                .iter()
                .map(|(id, (at, report))| (id.clone(), *at, report.clone()))
                .collect();
            crate::adaptive::step(&mut state.controller, &settings, &facts, &reports);
            crate::adaptive::View::of(settings, state.controller.clone(), gateway, report, now)
        })
    }

    async fn change_adaptive(
        &self,
        room: &RoomParams,
        change: &crate::adaptive::Overrides,
    ) -> Result<crate::adaptive::Overrides, StoreError> {
        self.with_room(room, |state, _| {
            state.adaptive = state.adaptive.with(change);
            if change.enabled == Some(false) {
                state.controller = None;
            }
            state.adaptive
        })
    }
}
