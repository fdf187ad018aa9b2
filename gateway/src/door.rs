//! The waiting room's door: for a visitor asking for something a room
//! protects, decide whether they are inside, are let in now, or wait.
//!
//! Cost per request, by visitor (the budget that shapes the design):
//! - holding a valid pass: no store round trip (activity is batched);
//! - holding a ticket whose turn has not come: none (the cached figures say so);
//! - holding a ticket whose turn has come: one, once (the swap for a pass);
//! - new: one (a ticket, or straight in).

use std::net::IpAddr;

use http::HeaderMap;
use http::header::HeaderValue;

use anteroom_config::{CookieSecure, OnError};
use anteroom_store::{Arrival, Claim, Millis, Phase, Store, StoreError};

use crate::cookies;
use crate::health::StoreHealth;
use crate::limits::ClientLimits;
use crate::room::RoomRuntime;
use crate::token::{Keyring, Pass, Ticket, new_pass_id};

/// How long a ticket cookie lives in the browser: long enough for any queue,
/// so that a tab that sleeps keeps its place.
const TICKET_COOKIE_SECONDS: u64 = 24 * 3600;

/// Where a visitor stands after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Inside: the request goes upstream. `counted` is false only when the
    /// store is unreachable and `on_error = "admit"` waves visitors through.
    Inside { counted: bool },
    /// In line. `position` is `None` when it cannot be known right now (the
    /// store is unreachable and the visitor has no ticket yet). `drawn`
    /// for a pre-queue ticket once the draw is made.
    Waiting {
        position: Option<u64>,
        eta_seconds: Option<u64>,
        refresh_seconds: u64,
        drawn: Option<Drawn>,
    },
    /// The room has not opened and its pre-queue has not begun: no ticket
    /// yet; the page lets the visitor in line by itself when it can.
    NotOpen { refresh_seconds: u64 },
    /// Holding pre-queue ticket `ticket`, before the draw.
    PreQueue { ticket: u64, refresh_seconds: u64 },
    /// No place in line (only for status requests, which never take one).
    Outside,
    /// The room is closed (admin API): no new places.
    Closed,
    /// The client has taken too many places lately
    /// (`tickets_per_ip_per_minute`): `429` with `Retry-After`.
    TooManyPlaces { retry_after: std::time::Duration },
}

/// A pre-queue ticket after the draw: its number and its place in the draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drawn {
    pub ticket: u64,
    pub place: u64,
}

#[derive(Debug)]
pub struct Decision {
    pub standing: Standing,
    /// The pass the visitor is inside with (held or just given), if any.
    pub pass: Option<String>,
    /// `Set-Cookie` values to send with the answer.
    pub set_cookies: Vec<HeaderValue>,
}

/// The first of the visitor's ticket cookies for `room` that verifies.
pub fn valid_ticket(keys: &Keyring, room: &RoomRuntime, headers: &HeaderMap) -> Option<Ticket> {
    cookies::values(headers, &room.ticket_cookie)
        .filter_map(|token| keys.verify_ticket(token))
        .find(|ticket| ticket.room == room.name())
}

/// A visitor waiting at `position` (`None`: not known right now), with the
/// estimated wait and the refresh interval that go with it.
pub fn waiting_standing(room: &RoomRuntime, position: Option<u64>) -> Standing {
    let eta_seconds = position.map(|position| room.eta_seconds(position));
    Standing::Waiting {
        position,
        eta_seconds,
        refresh_seconds: room.refresh_seconds(eta_seconds),
        drawn: None,
    }
}

/// Before the opening: how soon a page should ask again. The room's
/// `refresh_seconds`, sooner as the next moment that changes something
/// (the pre-queue opening, the opening) comes close, so that pages follow
/// it within a second or two.
fn before_opening_refresh(room: &RoomRuntime, now: Millis) -> u64 {
    let next = room.snapshot().and_then(|snapshot| {
        [snapshot.schedule.pre_queue_from, snapshot.schedule.opens_at]
            .into_iter()
            .flatten()
            .find(|at| *at > now)
    });
    let until = next.map(|at| at.saturating_sub(now).div_ceil(1000));
    room.refresh_seconds(until)
}

/// Where a ticket holder stands by cached figures of the ticket's epoch,
/// without a store round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByFigures {
    /// In the pre-queue before the draw, or waiting for their place.
    Stands(Standing),
    /// The ticket's place (its number, or its place in the draw) has been
    /// let in: the store swaps it for a pass.
    TurnCome { place: u64 },
}

/// Where ticket `number` stands by `snapshot` (of the ticket's epoch) at
/// `now`: shared by the door and the event streams.
pub fn by_figures(
    room: &RoomRuntime,
    snapshot: &anteroom_store::RoomSnapshot,
    number: u64,
    now: Millis,
) -> ByFigures {
    let Some(place) = room.place_of(snapshot, number) else {
        // A pre-queue ticket before the draw: no place yet.
        return ByFigures::Stands(Standing::PreQueue {
            ticket: number,
            refresh_seconds: before_opening_refresh(room, now),
        });
    };
    let Some(position) = snapshot.position(place) else {
        return ByFigures::TurnCome { place };
    };
    let drawn = snapshot
        .drawn
        .filter(|drawn| number <= *drawn)
        .map(|_| Drawn {
            ticket: number,
            place,
        });
    let eta_seconds = room.eta_seconds(position);
    ByFigures::Stands(Standing::Waiting {
        position: Some(position),
        eta_seconds: Some(eta_seconds),
        refresh_seconds: room.refresh_seconds(Some(eta_seconds)),
        drawn,
    })
}

/// What a request asks of the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A page (or any request to a protected address): a visitor without a
    /// place is given one.
    Page,
    /// A status poll: looks, never takes a place.
    StatusPoll,
}

/// The door to every room, holding just what deciding needs: the keys that
/// sign tickets and passes, the store, its health, the per-client limits,
/// and whether cookies are `Secure`. Borrowed from the gateway's shared
/// state for one request ([`crate::Shared::door`]); unit tests build one
/// around a fake store.
pub struct Door<'a> {
    pub keys: &'a Keyring,
    pub store: &'a dyn Store,
    pub health: &'a StoreHealth,
    pub limits: &'a ClientLimits,
    pub cookie_secure: CookieSecure,
}

impl Door<'_> {
    /// Decides for one request to `room` at `now`, the store's time as the
    /// gateway reckons it ([`crate::StoreClock`]): passes and tickets carry
    /// times written by whichever gateway signed them, so they are read and
    /// written on the one clock every gateway shares.
    pub async fn decide(
        &self,
        room: &RoomRuntime,
        headers: &HeaderMap,
        client: IpAddr,
        now: Millis,
        ask: Ask,
    ) -> Decision {
        let mut visit = Visit {
            door: self,
            room,
            client,
            now,
            over: cookies::Over::for_request(self.cookie_secure, headers),
            set_cookies: Vec::new(),
            pass: None,
        };
        let standing = visit.standing(headers, ask).await;
        Decision {
            standing,
            set_cookies: visit.set_cookies,
            pass: visit.pass,
        }
    }
}

/// One request at the door: what it has been given so far.
struct Visit<'a> {
    door: &'a Door<'a>,
    room: &'a RoomRuntime,
    client: IpAddr,
    now: Millis,
    /// Whether the cookies handed out are `Secure`.
    over: cookies::Over,
    set_cookies: Vec<HeaderValue>,
    pass: Option<String>,
}

impl Visit<'_> {
    async fn standing(&mut self, headers: &HeaderMap, ask: Ask) -> Standing {
        if let Some(pass) = self.valid_pass(headers) {
            self.room.record_activity(&pass.id, self.now);
            self.pass = Some(pass.id.clone());
            let current_epoch = self.room.snapshot().map(|snapshot| snapshot.epoch);
            if let Some(epoch) = current_epoch
                && epoch != pass.epoch
                && !self.door.health.is_down()
            {
                // The store lost the room's state since this visitor was let
                // in: count them inside again (once; the renewed pass carries
                // the new epoch).
                match self.door.store.rejoin(&self.room.params, &pass.id).await {
                    Ok(()) => {
                        self.give_pass(&Pass {
                            epoch,
                            last_seen: self.now,
                            ..pass
                        });
                        return Standing::Inside { counted: true };
                    }
                    Err(error) => self.door.health.failed(&error),
                }
            }
            if self.now.saturating_sub(pass.last_seen) >= self.renew_after_ms() {
                self.give_pass(&Pass {
                    last_seen: self.now,
                    ..pass
                });
            }
            return Standing::Inside { counted: true };
        }
        if self.door.health.is_down() && self.door.health.on_error() == OnError::Admit {
            // Fail open, for ticket holders too: their cached place no longer
            // matters while everyone is waved through.
            return Standing::Inside { counted: false };
        }
        if let Some(ticket) = self.valid_ticket(headers) {
            match self.with_ticket(&ticket).await {
                Some(standing) => return standing,
                None => self
                    .set_cookies
                    .push(cookies::clear(&self.room.ticket_cookie)),
            }
        }
        if self.phase() == Some(Phase::NotOpen) {
            // No ticket before the pre-queue: nothing to ask the store.
            return Standing::NotOpen {
                refresh_seconds: before_opening_refresh(self.room, self.now),
            };
        }
        if ask == Ask::StatusPoll {
            return Standing::Outside;
        }
        self.arrive().await
    }

    fn valid_pass(&self, headers: &HeaderMap) -> Option<Pass> {
        cookies::values(headers, &self.room.pass_cookie)
            .filter_map(|token| self.door.keys.verify_pass(token))
            .find(|pass| self.room.honours(pass, self.now))
    }

    fn valid_ticket(&self, headers: &HeaderMap) -> Option<Ticket> {
        valid_ticket(self.door.keys, self.room, headers)
    }

    /// The room's phase now, by the cached figures; `None` without any.
    fn phase(&self) -> Option<Phase> {
        self.room
            .snapshot()
            .map(|snapshot| snapshot.phase(self.now))
    }

    /// The standing of a ticket holder; `None` if the ticket is void.
    async fn with_ticket(&mut self, ticket: &Ticket) -> Option<Standing> {
        // A genuine ticket proves the room issued that many: should the
        // store's counters ever go back, it must not hand this number out
        // again (no round trip: the store remembers it for the next call).
        self.door
            .store
            .witness_ticket(&self.room.params, ticket.epoch, ticket.number);
        let cached = self.room.snapshot();
        // A ticket of another epoch than the cached one goes to the store,
        // which decides (spent if older; this gateway's cache may be the one
        // that is behind, just after a Redis wipe).
        let mut place = ticket.number;
        if let Some(snapshot) = cached
            && snapshot.epoch == ticket.epoch
        {
            match by_figures(self.room, &snapshot, ticket.number, self.now) {
                ByFigures::Stands(standing) => return Some(standing),
                ByFigures::TurnCome { place: turn } => place = turn,
            }
        } else if cached.is_none() {
            // No figures yet (the gateway just started): the ticket's place
            // is not known (a pre-queue ticket's is the draw's, and an
            // opening set live is not in this gateway's config), and
            // claiming its number could take another's. The first step is
            // 100 ms away.
            return Some(self.waiting(None));
        }
        // Spent before (claimed, or a no-show): the store said so once, and
        // that does not change.
        if self.room.is_known_spent(ticket) {
            return None;
        }
        // The turn has come (or the gateway has no figures yet): swap the
        // ticket for a pass, which the store allows once.
        if self.door.health.is_down() {
            let position = cached.and_then(|snapshot| snapshot.position(place));
            return Some(self.store_unavailable(position.or(Some(1))));
        }
        let pass_id = self.door.keys.pass_id_for(ticket);
        let claim = self
            .door
            .store
            .claim(&self.room.params, ticket.epoch, place, &pass_id)
            .await;
        match claim {
            Ok(Claim::Admitted) => {
                self.door.health.succeeded();
                let waited_ms = self.now.saturating_sub(ticket.issued_at);
                self.room.metrics.wait.record(waited_ms as f64 / 1000.0);
                self.set_cookies
                    .push(cookies::clear(&self.room.ticket_cookie));
                self.give_new_pass(pass_id, ticket.epoch);
                Some(Standing::Inside { counted: true })
            }
            // The cache ran ahead of the store (another gateway's figures):
            // next in line.
            Ok(Claim::NotYet) => Some(self.waiting(Some(1))),
            Ok(Claim::Spent) => {
                self.room.remember_spent(ticket);
                None
            }
            Err(error) => {
                self.door.health.failed(&error);
                Some(self.store_unavailable(Some(1)))
            }
        }
    }

    async fn arrive(&mut self) -> Standing {
        // Checked before the store is asked: a hoarder costs no round trip.
        if let Err(retry_after) = self.door.limits.check_ticket(&self.client) {
            return Standing::TooManyPlaces { retry_after };
        }
        if self.door.health.is_down() {
            return self.store_unavailable(None);
        }
        let pass_id = new_pass_id();
        match self.door.store.arrive(&self.room.params, &pass_id).await {
            Ok(Arrival::Admitted { snapshot }) => {
                self.door.health.succeeded();
                self.room.metrics.direct_entries.increment(1);
                self.room.observe(snapshot);
                self.give_new_pass(pass_id, snapshot.epoch);
                Standing::Inside { counted: true }
            }
            Ok(Arrival::NotOpen { snapshot }) => {
                self.door.health.succeeded();
                self.room.observe(snapshot);
                Standing::NotOpen {
                    refresh_seconds: before_opening_refresh(self.room, self.now),
                }
            }
            Ok(Arrival::Ticketed { ticket, snapshot }) => {
                self.door.health.succeeded();
                self.room.observe(snapshot);
                let token = self.door.keys.sign_ticket(&Ticket {
                    room: self.room.name().to_owned(),
                    epoch: snapshot.epoch,
                    number: ticket,
                    issued_at: self.now,
                });
                self.set_cookies.push(cookies::set(
                    &self.room.ticket_cookie,
                    &token,
                    TICKET_COOKIE_SECONDS,
                    self.over,
                ));
                if snapshot.before_draw() {
                    return Standing::PreQueue {
                        ticket,
                        refresh_seconds: before_opening_refresh(self.room, self.now),
                    };
                }
                let position = snapshot.position(ticket).unwrap_or(1);
                self.waiting(Some(position))
            }
            Ok(Arrival::Closed { snapshot }) => {
                self.door.health.succeeded();
                self.room.observe(snapshot);
                Standing::Closed
            }
            // The store is settling after it lost the room's state or its
            // counters went back: no ticket for a few seconds; the page asks
            // again by itself.
            Ok(Arrival::Held { snapshot }) => {
                self.door.health.succeeded();
                self.room.observe(snapshot);
                self.waiting(None)
            }
            Err(error) => {
                // The arrival may have run without its reply reaching us:
                // whatever it gave must not hold a slot.
                self.room.defer_void(&pass_id);
                self.unreachable(&error, None)
            }
        }
    }

    fn unreachable(&mut self, error: &StoreError, position: Option<u64>) -> Standing {
        self.door.health.failed(error);
        self.store_unavailable(position)
    }

    fn store_unavailable(&self, position: Option<u64>) -> Standing {
        match self.door.health.on_error() {
            OnError::Wait => Standing::Waiting {
                position,
                eta_seconds: None,
                refresh_seconds: self.room.refresh_seconds(None),
                drawn: None,
            },
            OnError::Admit => Standing::Inside { counted: false },
        }
    }

    fn waiting(&self, position: Option<u64>) -> Standing {
        waiting_standing(self.room, position)
    }

    fn give_new_pass(&mut self, id: String, epoch: u64) {
        // Known inside from now on, so that this gateway can vouch for it
        // should the store forget it (the store counts it already: no
        // report now).
        self.room.know_inside(&id, self.now);
        let pass = Pass {
            room: self.room.name().to_owned(),
            epoch,
            id,
            admitted_at: self.now,
            last_seen: self.now,
        };
        self.give_pass(&pass);
    }

    fn give_pass(&mut self, pass: &Pass) {
        self.pass = Some(pass.id.clone());
        let token = self.door.keys.sign_pass(pass);
        self.set_cookies.push(cookies::set(
            &self.room.pass_cookie,
            &token,
            self.room.config.session.as_secs(),
            self.over,
        ));
    }

    /// A pass cookie is re-signed with fresh activity at most this often:
    /// often enough that the sliding expiry is precise to a tenth of the
    /// session, rarely enough that most responses carry no new cookie.
    fn renew_after_ms(&self) -> u64 {
        (self.room.config.session.as_millis() as u64 / 10).min(30_000)
    }
}

#[cfg(test)]
mod tests;
