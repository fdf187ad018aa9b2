//! A room as one gateway sees it: its settings, a locally cached copy of the
//! shared figures (so that a waiting visitor's poll costs no store round
//! trip), the admission-rate estimate behind the waiting time, and the batch
//! of activity to report for passes inside.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use tokio::sync::watch;

use anteroom_config::Room;
use anteroom_store::{
    Draw, Millis, RoomParams, RoomSnapshot, RoomState, Schedule, Seed, Store, adaptive,
};

use crate::Shutdown;
use crate::clock::StoreClock;
use crate::health::StoreHealth;
use crate::proxy::RoomUpstream;
use crate::token::{Pass, Ticket};

mod kept;
mod places;
mod report;
use kept::Kept;
pub use places::{Busy, PlaceGuard, Places, Taken};
pub use report::{AtSite, InLine, Outcome, Recorder, sample_lag};

/// How often each gateway steps each room: admits the next tickets and
/// refreshes its cached figures. The cost budget asks for at least every
/// 250 ms; 100 ms keeps admissions smooth and costs 10 store calls per
/// second per room per gateway, whatever the queue length.
pub const STEP_INTERVAL: Duration = Duration::from_millis(100);

/// How often activity of passes inside is reported to the store.
pub const ACTIVITY_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Extra time the store keeps an idle pass beyond the session length, so that
/// batched activity reports never arrive after the store has given the slot
/// away while the visitor's cookie is still valid.
const INSIDE_GRACE: Duration = Duration::from_secs(5);
/// Spent tickets a room remembers, at most. An entry is two numbers in a
/// hash set (a few dozen bytes), so this is well under a MiB per room, and
/// far more than the spent tickets honest visitors send back (their cookie
/// is cleared with the first answer).
const MAX_SPENT_REMEMBERED: usize = 10_000;
/// Leaves kept through a store outage, per room: far more visitors than a
/// room holds leave during any outage worth surviving; beyond it a slot
/// frees itself at the session's end, as it always did.
const MAX_UNDELIVERED_LEAVES: usize = 10_000;

/// Arrivals without a reply kept through a store outage, per room, to void
/// afterwards: the store remembers only its latest 4096 arrivals anyway.
const MAX_UNDELIVERED_VOIDS: usize = 4_096;
/// Passes inside a room one gateway remembers having seen, to report them
/// all again when the store says it lost or rolled back the room's state.
/// An entry is a pass id and a time (under 100 bytes), so a full set is
/// under 20 MB; a room with more visitors inside than this relies on their
/// next requests for the rest, as before.
const MAX_KNOWN_INSIDE: usize = 200_000;

/// How fast the admission-rate estimate forgets: waits are estimated from
/// roughly the last half minute of admissions.
const RATE_TIME_CONSTANT_SECONDS: f64 = 30.0;

/// The longest wait we would ever announce.
const MAX_ETA_SECONDS: u64 = 24 * 3600;

/// What a waiting visitor's place depends on: the room's epoch, how far
/// the line has moved, whether the room lets anyone in, its schedule (a
/// moved opening shows on open pages at once) and its draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineMark {
    pub epoch: u64,
    pub admitted_through: u64,
    pub state: RoomState,
    pub schedule: Schedule,
    pub drawn: Option<u64>,
}

impl LineMark {
    fn of(snapshot: &RoomSnapshot) -> LineMark {
        LineMark {
            epoch: snapshot.epoch,
            admitted_through: snapshot.admitted_through,
            state: snapshot.state,
            schedule: snapshot.schedule,
            drawn: snapshot.drawn,
        }
    }
}

#[derive(Debug)]
pub struct RoomRuntime {
    pub config: Room,
    pub params: RoomParams,
    pub ticket_cookie: String,
    pub pass_cookie: String,
    /// `None` until the first successful step.
    snapshot: RwLock<Option<RoomSnapshot>>,
    /// Changes when the line moves or the room's state changes: what
    /// waiting pages' event streams wait for (rather than each looking
    /// every second).
    line: watch::Sender<Option<LineMark>>,
    rate: Mutex<RateEstimate>,
    /// pass id → latest activity not yet reported to the store.
    activity: DashMap<String, Millis>,
    /// Passes that left (here, or as another gateway's store report says),
    /// no longer honoured; pass id → when. Forgotten after the session
    /// length, when their cookies have expired anyway.
    revoked: DashMap<String, Millis>,
    /// Tickets (epoch, number) the store has called spent: a spent ticket
    /// sent again is refused from here, without a store round trip.
    /// Bounded by [`MAX_SPENT_REMEMBERED`].
    spent: DashSet<(u64, u64)>,
    /// Leaves the store did not take (it was unreachable): delivered after
    /// the next step that succeeds, so that their slots go to the next in
    /// line then, not a whole session later. Bounded by
    /// [`MAX_UNDELIVERED_LEAVES`].
    undelivered_leaves: Kept,
    /// Arrivals whose store call failed (it may have run): voided after the
    /// next step that succeeds. Bounded by [`MAX_UNDELIVERED_VOIDS`].
    undelivered_voids: Kept,
    /// Passes seen inside within the session length, pass id → last
    /// activity: reported again, all of them, when the store's generation
    /// changes. Bounded by [`MAX_KNOWN_INSIDE`].
    known_inside: DashMap<String, Millis>,
    /// The draw of the latest figures, keyed once: a pre-queue ticket's
    /// place is computed on demand from it (nothing stored per visitor).
    draw: RwLock<Option<(Seed, Draw)>>,
    /// `/_anteroom/draw?room=NAME`, where the draw can be checked.
    pub draw_url: String,
    /// Whether the log has said that this room was drawn already while
    /// its opening lies ahead (a second event on the same room).
    told_drawn_before: std::sync::atomic::AtomicBool,
    pub metrics: crate::metrics::RoomMetrics,
    /// How many of the room's requests may be at the site at once:
    /// unlimited until the adaptive controller sets a share.
    places: Arc<Places>,
    /// The room's upstream figures of the last seconds, for the controller.
    recorder: Arc<Recorder>,
    /// What the latest report learned of adaptive admission: the settings
    /// in force, the controller's state, this gateway's share of places.
    /// `None` until the first report was answered.
    adaptive: RwLock<Option<adaptive::View>>,
}

impl RoomRuntime {
    /// The room of `config` on a gateway whose `max_in_flight_upstream` is
    /// `max_in_flight_upstream` (the most places it could give the room).
    pub fn new(config: Room, max_in_flight_upstream: usize) -> RoomRuntime {
        let params = RoomParams {
            name: config.name.clone(),
            capacity: config.capacity.get(),
            admit_per_minute: config.admit_per_minute.get(),
            inside_ttl: config.session + INSIDE_GRACE,
            arrival: config.arrival,
            schedule: config.schedule,
        };
        let initial_rate = initial_rate_per_second(&config);
        // An adaptive room's places start at their fewest until the first
        // report says this gateway's share: never a free-for-all at start.
        let places = Arc::new(Places::new());
        if config.adaptive.enabled {
            places.set_limit(adaptive::MIN_PLACES as u64);
        }
        RoomRuntime {
            draw_url: format!("/_anteroom/draw?room={}", config.name),
            metrics: crate::metrics::RoomMetrics::new(&config.name),
            ticket_cookie: format!("anteroom_ticket_{}", config.name),
            pass_cookie: format!("anteroom_pass_{}", config.name),
            params,
            config,
            snapshot: RwLock::new(None),
            line: watch::Sender::new(None),
            rate: Mutex::new(RateEstimate::new(initial_rate)),
            activity: DashMap::new(),
            revoked: DashMap::new(),
            spent: DashSet::new(),
            undelivered_leaves: Kept::new(MAX_UNDELIVERED_LEAVES),
            undelivered_voids: Kept::new(MAX_UNDELIVERED_VOIDS),
            known_inside: DashMap::new(),
            draw: RwLock::new(None),
            told_drawn_before: std::sync::atomic::AtomicBool::new(false),
            places,
            recorder: Arc::new(Recorder::new(
                max_in_flight_upstream as u64,
                tokio::time::Instant::now(),
            )),
            adaptive: RwLock::new(None),
        }
    }

    /// What the latest report learned of adaptive admission (`None` before
    /// the first answer).
    pub fn adaptive(&self) -> Option<adaptive::View> {
        self.adaptive.read().ok().and_then(|view| view.clone())
    }

    /// The site is in trouble (every request failing): the waiting page
    /// says so and gives no estimate.
    pub fn site_trouble(&self) -> bool {
        self.adaptive.read().ok().is_some_and(|view| {
            view.as_ref()
                .and_then(|view| view.controller.as_ref())
                .is_some_and(|controller| controller.trouble)
        })
    }

    /// The adaptive pace in force, admissions a minute, while the
    /// controller runs.
    fn adaptive_pace(&self) -> Option<f64> {
        let view = self.adaptive.read().ok()?;
        let view = view.as_ref()?;
        view.controller.as_ref().map(|_| view.pace())
    }

    /// Takes in what a report learned: the view, and this gateway's share of
    /// the places (unlimited when adaptive admission is off).
    pub fn observe_adaptive(&self, view: adaptive::View) {
        match view.share {
            Some(share) => self.places.set_limit(share),
            None => self.places.set_unlimited(),
        }
        self.places.set_probing(
            view.controller
                .as_ref()
                .is_some_and(adaptive::Controller::probing),
        );
        let trouble = view
            .controller
            .as_ref()
            .is_some_and(|controller| controller.trouble);
        let was = self.site_trouble();
        if let Ok(mut current) = self.adaptive.write() {
            *current = Some(view);
        }
        if trouble != was {
            // Waiting pages' event streams wait on the line: wake them, so
            // that the page says the site is in trouble (or no longer).
            self.line.send_modify(|_| {});
        }
    }

    /// The room's places at the site. Unlimited until the controller's loop
    /// calls [`Places::set_limit`] with this gateway's share (and
    /// [`Places::set_unlimited`] when adaptive admission is off again).
    pub fn places(&self) -> &Arc<Places> {
        &self.places
    }

    /// The room's upstream figures; [`Recorder::report`] once a second is
    /// what goes to the store.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// What the proxy takes for a request of one of the room's visitors.
    pub(crate) fn upstream(&self) -> RoomUpstream<'_> {
        RoomUpstream {
            places: &self.places,
            recorder: &self.recorder,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn snapshot(&self) -> Option<RoomSnapshot> {
        // A poisoned lock only means a panic elsewhere while writing a Copy
        // value; the value is still whole.
        match self.snapshot.read() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Wakes when the line moves (someone is let in), the room's state
    /// changes, or the first figures arrive. The value is the latest mark.
    pub fn watch_line(&self) -> watch::Receiver<Option<LineMark>> {
        self.line.subscribe()
    }

    /// A ticket's place in line as `snapshot` orders it: for a pre-queue
    /// ticket once drawn, its place in the draw; otherwise its number.
    /// `None` for a pre-queue ticket before the draw (or while this
    /// gateway does not know the seed yet): no place yet.
    pub fn place_of(&self, snapshot: &RoomSnapshot, ticket: u64) -> Option<u64> {
        if snapshot.before_draw() {
            return None;
        }
        let Some(pre_queue) = snapshot.drawn.filter(|drawn| ticket <= *drawn) else {
            return Some(ticket);
        };
        let seed = snapshot.seed?;
        {
            let cached = match self.draw.read() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some((cached_seed, draw)) = cached.as_ref()
                && *cached_seed == seed
                && draw.pre_queue() == pre_queue
            {
                return draw.place(ticket).ok();
            }
        }
        let draw = Draw::new(&seed, pre_queue);
        let place = draw.place(ticket).ok();
        let mut cached = match self.draw.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *cached = Some((seed, draw));
        place
    }

    /// Takes in figures fresh from the store after a new arrival's round
    /// trip. Older figures never replace newer ones.
    pub fn observe(&self, fresh: RoomSnapshot) {
        let stored = {
            let mut guard = match self.snapshot.write() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(current) = *guard
                && current.epoch == fresh.epoch
                && fresh.generation > current.generation
            {
                // The store lost the room's state or its counters went back,
                // and carries the line on from the highest counters any
                // gateway reported: tell it every pass known to be inside,
                // so that it counts them before it lets anyone else in.
                self.metrics.line_restored.increment(1);
                tracing::warn!(
                    room = self.name(),
                    generation = fresh.generation,
                    issued = fresh.issued,
                    admitted_through = fresh.admitted_through,
                    "the store lost this room's state or its counters went back; \
                     the line carries on from the highest counters the gateways saw"
                );
                self.report_known_inside();
            }
            if let Some(current) = *guard
                && current.epoch == fresh.epoch
                && (fresh.issued < current.issued
                    || fresh.admitted_through < current.admitted_through)
            {
                // A concurrent call answered out of order: keep the counters
                // monotonic.
                *guard = Some(RoomSnapshot {
                    issued: current.issued.max(fresh.issued),
                    admitted_through: current.admitted_through.max(fresh.admitted_through),
                    generation: current.generation.max(fresh.generation),
                    // A draw once seen stays: an older reply from before
                    // the opening must not put the line back before it.
                    drawn: current.drawn.or(fresh.drawn),
                    ..fresh
                });
            } else {
                let drawn = match *guard {
                    Some(current) if current.epoch == fresh.epoch => current.drawn.or(fresh.drawn),
                    _ => fresh.drawn,
                };
                *guard = Some(RoomSnapshot { drawn, ..fresh });
            }
            *guard
        };
        if let Some(stored) = stored {
            let mark = LineMark::of(&stored);
            // Only a real change wakes the streams: the step runs every
            // 100 ms whether or not anything moved.
            self.line.send_if_modified(|current| {
                let changed = *current != Some(mark);
                *current = Some(mark);
                changed
            });
        }
    }

    /// Takes in the figures of this gateway's periodic step, which also feed
    /// the admission-rate estimate (steps come in order, every 100 ms;
    /// arrivals' figures would not).
    fn observe_step(&self, fresh: RoomSnapshot) {
        self.observe(fresh);
        if fresh.drawn.is_some()
            && fresh
                .schedule
                .opens_at
                .is_some_and(|at| at > fresh.taken_at)
            && !self
                .told_drawn_before
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // The file was given a new opening after this room's draw: the
            // room stays open, and its public seed must not order another
            // pre-queue.
            tracing::warn!(
                room = self.name(),
                pre_queue = fresh.drawn,
                "this room's draw was made already, so its opening ahead is ignored and \
                 it stays open; for a new event use a new room name (or stop every gateway \
                 and clear the room's keys)"
            );
        }
        if let Ok(mut rate) = self.rate.lock() {
            rate.observe(&fresh);
        }
    }

    /// The smoothed admission rate behind the estimated waits.
    pub fn admissions_per_minute(&self) -> f64 {
        self.rate
            .lock()
            .map(|rate| rate.per_second * 60.0)
            .unwrap_or(0.0)
    }

    /// Estimated seconds until the visitor at `position` is let in: at the
    /// smoothed admission rate, or the adaptive pace when that is slower (a
    /// cut shows at once; a rise only as admissions prove it).
    pub fn eta_seconds(&self, position: u64) -> u64 {
        let measured = self.rate.lock().map(|rate| rate.per_second).unwrap_or(0.0);
        let rate = match self.adaptive_pace() {
            Some(pace) => measured.min(pace / 60.0),
            None => measured,
        };
        eta_seconds(position, rate)
    }

    /// How long a waiting page should wait before asking again: the room's
    /// `refresh_seconds`, sooner when the visitor's turn is close.
    ///
    /// The interval is spread at random over its last third: a crowd that
    /// opened the page in the same few seconds would otherwise ask again in
    /// the same seconds for as long as it waits, and everyone let in
    /// between two such waves would reach the site together.
    pub fn refresh_seconds(&self, eta_seconds: Option<u64>) -> u64 {
        let configured = self.config.refresh.as_secs().max(1);
        let interval = match eta_seconds {
            Some(eta) => (eta / 2).clamp(1, configured),
            None => configured,
        };
        spread(interval, rand::random())
    }

    /// Notes that a pass was used at `at` (the store's time as reckoned
    /// here); reported to the store in the next batch.
    pub fn record_activity(&self, pass_id: &str, at: Millis) {
        self.activity
            .entry(pass_id.to_owned())
            .and_modify(|last| *last = (*last).max(at))
            .or_insert(at);
    }

    /// Stops honouring a pass (it left).
    pub fn revoke(&self, pass_id: &str, at: Millis) {
        self.activity.remove(pass_id);
        self.known_inside.remove(pass_id);
        self.revoked.insert(pass_id.to_owned(), at);
    }

    /// Keeps a leave the store could not take, to deliver after the outage.
    /// Beyond [`MAX_UNDELIVERED_LEAVES`] a leave is not kept: its slot frees
    /// itself when the session times out, as before.
    pub fn defer_leave(&self, pass_id: &str) {
        self.undelivered_leaves.keep(pass_id);
    }

    /// Keeps an arrival whose store call failed, to void once the store
    /// answers again. Beyond [`MAX_UNDELIVERED_VOIDS`] it is not kept: its
    /// number then holds a slot as a no-show for `arrival_seconds`, as
    /// before.
    pub fn defer_void(&self, pass_id: &str) {
        self.undelivered_voids.keep(pass_id);
    }

    /// Every pass seen inside within the session goes into the next
    /// activity report, and every leave still remembered is delivered again
    /// (a rollback may have taken it back: leaving twice is harmless).
    fn report_known_inside(&self) {
        for entry in self.known_inside.iter() {
            self.record_activity(entry.key(), *entry.value());
        }
        for entry in self.revoked.iter() {
            self.defer_leave(entry.key());
        }
    }

    /// Remembers a pass this gateway just gave (the store counted it) as
    /// known inside.
    pub fn know_inside(&self, pass_id: &str, at: Millis) {
        if self.known_inside.len() < MAX_KNOWN_INSIDE {
            self.known_inside.insert(pass_id.to_owned(), at);
        }
    }

    /// Remembers the passes of an activity report as known inside, and
    /// forgets those idle longer than the store keeps them.
    fn remember_inside(&self, batch: &[(String, Millis)], now: Millis) {
        let keep_after = now.saturating_sub(self.params.inside_ttl.as_millis() as u64);
        self.known_inside.retain(|_, at| *at >= keep_after);
        for (pass_id, at) in batch {
            if let Some(mut known) = self.known_inside.get_mut(pass_id) {
                *known = (*known).max(*at);
            } else {
                self.know_inside(pass_id, *at);
            }
        }
    }

    pub fn is_revoked(&self, pass_id: &str) -> bool {
        self.revoked.contains_key(pass_id)
    }

    /// Is `pass` (genuine: its signature was checked) good for this room at
    /// `now`: this room's, within its session, and not left? `now` is the
    /// store's time as reckoned here, the clock `last_seen` was written on
    /// by whichever gateway renewed the pass.
    pub fn honours(&self, pass: &Pass, now: Millis) -> bool {
        let session_ms = self.config.session.as_millis() as u64;
        pass.room == self.name()
            && now <= pass.last_seen.saturating_add(session_ms)
            && !self.is_revoked(&pass.id)
    }

    /// Remembers that the store called `ticket` spent (claimed, or its
    /// holder did not show up in time): that never changes, so the ticket
    /// need not go to the store again.
    pub fn remember_spent(&self, ticket: &Ticket) {
        if self.spent.len() >= MAX_SPENT_REMEMBERED {
            // A flood of genuine spent tickets: start afresh rather than
            // grow (each is then asked about once more).
            self.spent.clear();
        }
        self.spent.insert((ticket.epoch, ticket.number));
    }

    /// Did the store call `ticket` spent?
    pub fn is_known_spent(&self, ticket: &Ticket) -> bool {
        self.spent.contains(&(ticket.epoch, ticket.number))
    }

    fn forget_old_revocations(&self, now: Millis) {
        if self.revoked.is_empty() {
            return;
        }
        let keep_after = now.saturating_sub(self.params.inside_ttl.as_millis() as u64);
        self.revoked.retain(|_, at| *at >= keep_after);
    }

    fn take_activity(&self) -> Vec<(String, Millis)> {
        let mut batch = Vec::with_capacity(self.activity.len());
        self.activity.retain(|pass_id, at| {
            batch.push((pass_id.clone(), *at));
            false
        });
        batch
    }
}

/// Keeps one room moving: steps it every [`STEP_INTERVAL`] and reports
/// activity every [`ACTIVITY_FLUSH_INTERVAL`], until `shutdown` changes.
/// Every gateway runs this for every room; the store's step is safe to run
/// from many at once. Each step's reply says the store's time, from which
/// `clock` learns its offset (no extra round trip).
pub async fn tend(
    room: Arc<RoomRuntime>,
    store: Arc<dyn Store>,
    clock: Arc<StoreClock>,
    health: Arc<StoreHealth>,
    gateway_id: Arc<str>,
    shutdown: Shutdown,
) {
    // The first report before the first step: an adaptive room's pace and
    // places exist before anyone is let in (the bucket otherwise starts
    // with a second's worth at the ceiling).
    report_upstream(&room, store.as_ref(), &health, &gateway_id).await;
    let mut ticker = tokio::time::interval(STEP_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let steps_per_flush = (ACTIVITY_FLUSH_INTERVAL.as_millis() / STEP_INTERVAL.as_millis()) as u32;
    let mut reported_second = room.recorder().current_second(tokio::time::Instant::now());
    let mut step: u32 = 0;
    // After a failed call, activity is reported before the next step, so
    // that the store never expires passes that were active during an outage.
    let mut flush_first = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.begun() => break,
        }
        step = step.wrapping_add(1);
        if flush_first || step.is_multiple_of(steps_per_flush) {
            flush_first = !flush_activity(&room, store.as_ref(), &health, clock.now()).await;
            if flush_first {
                continue;
            }
        }
        let sent = clock.local().now();
        match store.advance(&room.params).await {
            Ok(snapshot) => {
                clock.learn(sent, clock.local().now(), snapshot.taken_at);
                health.succeeded();
                room.observe_step(snapshot);
                deliver_kept(&room, store.as_ref(), &health).await;
                // Once a second, at the first step of a new second on the
                // recorder's clock: the report's latest second is then the
                // one that just ended, run under the share last applied.
                let second = room.recorder().current_second(tokio::time::Instant::now());
                if second != reported_second {
                    reported_second = second;
                    report_upstream(&room, store.as_ref(), &health, &gateway_id).await;
                }
            }
            Err(error) => {
                health.failed(&error);
                flush_first = true;
            }
        }
        room.forget_old_revocations(clock.now());
    }
    // Last report, so that a restart does not forget who was active.
    flush_activity(&room, store.as_ref(), &health, clock.now()).await;
}

/// Sends the room's upstream figures of the last seconds to the store's
/// adaptive controller and takes in its answer (the pace, this gateway's
/// share of places). Every gateway does, once a second, whether adaptive
/// admission is on or off: the store decides, so that a live change
/// reaches every gateway at its next report. A failure leaves the places
/// as they were; the next second's report is the next try.
async fn report_upstream(
    room: &RoomRuntime,
    store: &dyn Store,
    health: &StoreHealth,
    gateway_id: &str,
) {
    let report = room.recorder().report(tokio::time::Instant::now());
    match store
        .adapt(&room.params, &room.config.adaptive, gateway_id, &report)
        .await
    {
        Ok(view) => room.observe_adaptive(view),
        Err(error) => health.failed(&error),
    }
}

/// A gateway's id among those reporting to the store: random, made once
/// per gateway when it starts serving (not once per process: several
/// gateways in one process, as in the tests and the bench, are each one
/// of the fleet, and one id would merge their reports into one).
pub fn new_gateway_id() -> Arc<str> {
    format!("{:016x}", rand::random::<u64>()).into()
}

/// Delivers what was kept during an outage (the store answers again: the
/// step just succeeded): the leaves, then the voids of lost arrivals. What
/// fails again is kept for the next step.
async fn deliver_kept(room: &RoomRuntime, store: &dyn Store, health: &StoreHealth) {
    let delivered = async {
        room.undelivered_leaves
            .deliver(|pass_id| async move { store.leave(&room.params, &pass_id).await })
            .await?;
        room.undelivered_voids
            .deliver(|pass_id| async move {
                if store.void_arrival(&room.params, &pass_id).await? {
                    room.metrics.arrivals_voided.increment(1);
                }
                Ok(())
            })
            .await
    };
    if let Err(error) = delivered.await {
        health.failed(&error);
    }
}

/// Reports the batch of activity; on failure puts it back for the next
/// attempt. Returns whether the store took it.
async fn flush_activity(
    room: &RoomRuntime,
    store: &dyn Store,
    health: &StoreHealth,
    now: Millis,
) -> bool {
    let batch = room.take_activity();
    if batch.is_empty() {
        return true;
    }
    room.remember_inside(&batch, now);
    match store.touch(&room.params, &batch).await {
        Ok(revoked) => {
            for pass_id in revoked {
                room.revoke(&pass_id, now);
            }
            true
        }
        Err(error) => {
            health.failed(&error);
            for (pass_id, at) in batch {
                room.record_activity(&pass_id, at);
            }
            false
        }
    }
}

/// Until admissions have been measured: the slower of the configured rate
/// and what the room sustains if every visitor stays a whole session.
fn initial_rate_per_second(room: &Room) -> f64 {
    let configured = f64::from(room.admit_per_minute.get()) / 60.0;
    let turnover = f64::from(room.capacity.get()) / room.session.as_secs_f64().max(1.0);
    configured.min(turnover)
}

/// A whole number of seconds from the last third of `interval`, picked by
/// `unit` (uniform in `[0, 1)`).
fn spread(interval: u64, unit: f64) -> u64 {
    let low = (interval * 2).div_ceil(3);
    let choices = interval - low + 1;
    (low + (choices as f64 * unit.clamp(0.0, 1.0)) as u64).min(interval)
}

fn eta_seconds(position: u64, rate_per_second: f64) -> u64 {
    if rate_per_second <= 0.0 {
        return MAX_ETA_SECONDS;
    }
    let seconds = position as f64 / rate_per_second;
    if seconds.is_finite() {
        (seconds.round() as u64).min(MAX_ETA_SECONDS)
    } else {
        MAX_ETA_SECONDS
    }
}

/// Admissions per second, measured from the store's figures and smoothed
/// exponentially so that the announced wait does not swing.
#[derive(Debug)]
struct RateEstimate {
    per_second: f64,
    last: Option<RoomSnapshot>,
}

impl RateEstimate {
    fn new(initial: f64) -> RateEstimate {
        RateEstimate {
            per_second: initial,
            last: None,
        }
    }

    fn observe(&mut self, fresh: &RoomSnapshot) {
        let Some(last) = self.last.replace(*fresh) else {
            return;
        };
        // Only intervals that began with a queue say how fast the queue
        // moves; with nobody waiting, admissions only follow arrivals.
        if last.epoch != fresh.epoch || last.waiting() == 0 || fresh.taken_at <= last.taken_at {
            return;
        }
        let elapsed = (fresh.taken_at - last.taken_at) as f64 / 1000.0;
        let admitted = fresh.admitted_through.saturating_sub(last.admitted_through) as f64;
        let weight = 1.0 - (-elapsed / RATE_TIME_CONSTANT_SECONDS).exp();
        self.per_second += weight * (admitted / elapsed - self.per_second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(at: Millis, issued: u64, admitted_through: u64) -> RoomSnapshot {
        RoomSnapshot {
            epoch: 1,
            issued,
            admitted_through,
            taken_at: at,
            ..RoomSnapshot::default()
        }
    }

    #[test]
    fn rate_estimate_converges_to_the_measured_rate() {
        let mut estimate = RateEstimate::new(1.0);
        // 10 admissions per second for five minutes (ten time constants),
        // queue never empty.
        for step in 0..3000u64 {
            estimate.observe(&snapshot(step * 100, 1_000_000, step));
        }
        assert!(
            (estimate.per_second - 10.0).abs() < 0.1,
            "{}",
            estimate.per_second
        );
    }

    #[test]
    fn rate_estimate_ignores_intervals_without_a_queue() {
        let mut estimate = RateEstimate::new(2.0);
        for step in 0..100u64 {
            estimate.observe(&snapshot(step * 100, step, step));
        }
        assert_eq!(estimate.per_second, 2.0);
    }

    #[test]
    fn eta_is_position_over_rate_and_bounded() {
        assert_eq!(eta_seconds(100, 10.0), 10);
        assert_eq!((spread(1, 0.0), spread(1, 0.999)), (1, 1));
        assert_eq!(
            (
                spread(5, 0.0),
                spread(5, 0.49),
                spread(5, 0.5),
                spread(5, 0.999)
            ),
            (4, 4, 5, 5)
        );
        assert_eq!((spread(30, 0.0), spread(30, 0.999)), (20, 30));
        assert_eq!(spread(30, 1.0), 30);
        assert_eq!(eta_seconds(1, 0.0), MAX_ETA_SECONDS);
        assert_eq!(eta_seconds(u64::MAX, 1e-9), MAX_ETA_SECONDS);
    }
}
