//! The door's decisions and its cost budget, without sockets: a real
//! in-memory store behind a fake that counts (and can refuse) every call,
//! a room whose cached figures the test refreshes by hand, and time passed
//! in explicitly (the memory store's clock, a manual one, is set to each
//! call's time: one process, one clock).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anteroom_config::{Config, CookieSecure, OnError};
use anteroom_store::{
    Arrival, Claim, Clock, MemoryStore, Millis, RoomChange, RoomParams, RoomSnapshot, Store,
    StoreError,
};
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};

use super::{Ask, Decision, Door, Standing};
use crate::health::StoreHealth;
use crate::limits::ClientLimits;
use crate::room::RoomRuntime;
use crate::token::{Keyring, Pass};

const KEY: &str = "a-unit-test-cookie-key-of-32-characters-or-more";
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
/// Any instant will do; the store only compares.
const START: Millis = 1_700_000_000_000;

/// A store that counts every call it gets, and refuses them all while
/// `refusing` is set (the store is unreachable).
struct CountingStore {
    inner: MemoryStore,
    calls: AtomicU64,
    refusing: AtomicBool,
}

impl CountingStore {
    fn on(clock: &Clock) -> CountingStore {
        CountingStore {
            inner: MemoryStore::with_clock(clock.clone()),
            calls: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
        }
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn call(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.refusing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("refused by the test".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for CountingStore {
    async fn arrive(&self, room: &RoomParams, pass_id: &str) -> Result<Arrival, StoreError> {
        self.call()?;
        self.inner.arrive(room, pass_id).await
    }

    async fn claim(
        &self,
        room: &RoomParams,
        epoch: u64,
        ticket: u64,
        pass_id: &str,
    ) -> Result<Claim, StoreError> {
        self.call()?;
        self.inner.claim(room, epoch, ticket, pass_id).await
    }

    async fn advance(&self, room: &RoomParams) -> Result<RoomSnapshot, StoreError> {
        self.call()?;
        self.inner.advance(room).await
    }

    async fn touch(
        &self,
        room: &RoomParams,
        passes: &[(String, Millis)],
    ) -> Result<Vec<String>, StoreError> {
        self.call()?;
        self.inner.touch(room, passes).await
    }

    async fn rejoin(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError> {
        self.call()?;
        self.inner.rejoin(room, pass_id).await
    }

    async fn leave(&self, room: &RoomParams, pass_id: &str) -> Result<(), StoreError> {
        self.call()?;
        self.inner.leave(room, pass_id).await
    }

    async fn change(
        &self,
        room: &RoomParams,
        change: &RoomChange,
    ) -> Result<anteroom_store::Changed, StoreError> {
        self.call()?;
        self.inner.change(room, change).await
    }

    async fn void_arrival(&self, room: &RoomParams, pass_id: &str) -> Result<bool, StoreError> {
        self.call()?;
        self.inner.void_arrival(room, pass_id).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call()?;
        self.inner.ping().await
    }

    async fn adapt(
        &self,
        room: &RoomParams,
        config: &anteroom_config::Adaptive,
        gateway: &str,
        report: &anteroom_store::adaptive::Report,
    ) -> Result<anteroom_store::adaptive::View, StoreError> {
        self.call()?;
        self.inner.adapt(room, config, gateway, report).await
    }

    async fn change_adaptive(
        &self,
        room: &RoomParams,
        change: &anteroom_store::adaptive::Overrides,
    ) -> Result<anteroom_store::adaptive::Overrides, StoreError> {
        self.call()?;
        self.inner.change_adaptive(room, change).await
    }
}

/// Everything the door borrows, owned by the test.
struct Fixture {
    /// The store's clock (the memory store's is the gateway's own).
    clock: Clock,
    store: CountingStore,
    keys: Keyring,
    health: StoreHealth,
    limits: ClientLimits,
    room: RoomRuntime,
}

impl Fixture {
    /// A room of `capacity` letting in 600 a minute, with tickets limited
    /// to `tickets_per_minute` per client.
    fn new(capacity: u32, tickets_per_minute: u32, on_error: OnError) -> Fixture {
        let config = Config::from_toml(
            &format!(
                "upstream = \"http://127.0.0.1:9\"\n\
                 [limits]\ntickets_per_ip_per_minute = {tickets_per_minute}\n\
                 [[room]]\nname = \"vaccini\"\npaths = [\"/\"]\ncapacity = {capacity}\nadmit_per_minute = 600\n"
            ),
            |_| None,
        )
        .expect("the test's config is valid");
        let clock = Clock::manual();
        Fixture {
            store: CountingStore::on(&clock),
            clock,
            keys: Keyring::new(&[KEY]),
            health: StoreHealth::new(on_error),
            limits: ClientLimits::new(&config.limits),
            room: RoomRuntime::new(
                config.rooms[0].clone(),
                config.limits.max_in_flight_upstream,
            ),
        }
    }

    fn door(&self) -> Door<'_> {
        Door {
            keys: &self.keys,
            store: &self.store,
            health: &self.health,
            limits: &self.limits,
            cookie_secure: CookieSecure::Auto,
        }
    }

    async fn decide(&self, cookies: &[HeaderValue], now: Millis, ask: Ask) -> Decision {
        self.clock.set(now);
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            // A browser sends back `name=value`, the part before the first `;`.
            let text = cookie.to_str().expect("our cookies are ASCII");
            let pair = text.split(';').next().expect("a cookie has a name=value");
            headers.append(COOKIE, HeaderValue::from_str(pair).expect("valid header"));
        }
        self.door()
            .decide(&self.room, &headers, CLIENT, now, ask)
            .await
    }

    /// The room's step, as `room::tend` runs it: the store moves the line,
    /// and the room caches the figures. Not counted as the request path's.
    async fn step(&self, now: Millis) {
        let snapshot = self.figures(now).await;
        self.room.observe(snapshot);
    }

    /// The store's step at `now`, straight (not cached by the room).
    async fn figures(&self, now: Millis) -> RoomSnapshot {
        self.clock.set(now);
        self.store
            .inner
            .advance(&self.room.params)
            .await
            .expect("the memory store answers")
    }

    /// A room of one place at `START`: a first visitor let in (their pass
    /// id), and a second given a ticket, first in line (its cookie).
    async fn one_inside_one_waiting() -> (Fixture, String, HeaderValue) {
        let fixture = Fixture::new(1, 100, OnError::Wait);
        fixture.step(START).await;
        let first = fixture.decide(&[], START, Ask::Page).await;
        assert_eq!(first.standing, Standing::Inside { counted: true });
        let first_pass = first.pass.expect("the first visitor is inside");
        let second = fixture.decide(&[], START, Ask::Page).await;
        assert!(
            matches!(
                second.standing,
                Standing::Waiting {
                    position: Some(1),
                    ..
                }
            ),
            "{second:?}"
        );
        let ticket = fixture
            .cookie_named(&second, &fixture.room.ticket_cookie)
            .expect("a ticket cookie")
            .clone();
        (fixture, first_pass, ticket)
    }

    /// `pass_id` leaves at `at` (straight in the store, as `/_anteroom/leave` does).
    async fn leave(&self, pass_id: &str, at: Millis) {
        self.clock.set(at);
        self.store
            .inner
            .leave(&self.room.params, pass_id)
            .await
            .expect("the memory store answers");
    }

    fn cookie_named<'d>(&self, decision: &'d Decision, name: &str) -> Option<&'d HeaderValue> {
        decision.set_cookies.iter().find(|cookie| {
            cookie.to_str().is_ok_and(|text| {
                text.starts_with(&format!("{name}=")) && !text.contains("Max-Age=0")
            })
        })
    }
}

#[tokio::test]
async fn a_newcomer_with_room_inside_costs_one_store_call_and_gets_a_pass() {
    let fixture = Fixture::new(10, 100, OnError::Wait);
    fixture.step(START).await;
    let decision = fixture.decide(&[], START, Ask::Page).await;
    assert_eq!(decision.standing, Standing::Inside { counted: true });
    assert_eq!(fixture.store.calls(), 1, "one arrive");
    assert!(decision.pass.is_some());
    assert!(
        fixture
            .cookie_named(&decision, &fixture.room.pass_cookie)
            .is_some()
    );
}

#[tokio::test]
async fn a_waiting_ticket_holder_costs_no_store_call() {
    let (fixture, _, ticket) = Fixture::one_inside_one_waiting().await;
    fixture.step(START + 100).await;
    let calls = fixture.store.calls();
    for ask in [Ask::Page, Ask::StatusPoll] {
        let again = fixture
            .decide(std::slice::from_ref(&ticket), START + 200, ask)
            .await;
        assert!(
            matches!(
                again.standing,
                Standing::Waiting {
                    position: Some(1),
                    ..
                }
            ),
            "{again:?}"
        );
        assert!(again.set_cookies.is_empty(), "nothing new to hand out");
    }
    assert_eq!(fixture.store.calls(), calls, "waiting costs no store call");
}

#[tokio::test]
async fn a_turn_is_claimed_with_one_store_call_once_and_the_pass_then_costs_nothing() {
    let (fixture, first_pass, ticket) = Fixture::one_inside_one_waiting().await;
    // The first visitor leaves; the next step lets the ticket in.
    fixture.leave(&first_pass, START + 1_000).await;
    fixture.step(START + 2_000).await;
    let calls = fixture.store.calls();
    let turn = fixture
        .decide(
            std::slice::from_ref(&ticket),
            START + 2_100,
            Ask::StatusPoll,
        )
        .await;
    assert_eq!(turn.standing, Standing::Inside { counted: true });
    assert_eq!(fixture.store.calls(), calls + 1, "one claim");
    let pass = fixture
        .cookie_named(&turn, &fixture.room.pass_cookie)
        .expect("a pass cookie")
        .clone();
    // The same ticket again (a second tab): the same pass, not a second
    // slot.
    let replay = fixture
        .decide(
            std::slice::from_ref(&ticket),
            START + 2_200,
            Ask::StatusPoll,
        )
        .await;
    assert_eq!(replay.standing, Standing::Inside { counted: true });
    assert_eq!(replay.pass, turn.pass);
    assert_eq!(
        fixture.figures(START + 2_200).await.inside,
        1,
        "one visitor inside"
    );
    let calls = fixture.store.calls();
    let inside = fixture.decide(&[pass], START + 2_300, Ask::Page).await;
    assert_eq!(inside.standing, Standing::Inside { counted: true });
    assert_eq!(fixture.store.calls(), calls, "a pass costs no store call");
}

#[tokio::test]
async fn a_status_poll_never_takes_a_place() {
    let fixture = Fixture::new(10, 100, OnError::Wait);
    fixture.step(START).await;
    let decision = fixture.decide(&[], START, Ask::StatusPoll).await;
    assert_eq!(decision.standing, Standing::Outside);
    assert!(decision.set_cookies.is_empty());
    assert_eq!(fixture.store.calls(), 0);
}

#[tokio::test]
async fn a_client_over_its_ticket_limit_costs_no_store_call() {
    let fixture = Fixture::new(10, 1, OnError::Wait);
    fixture.step(START).await;
    let first = fixture.decide(&[], START, Ask::Page).await;
    assert_eq!(first.standing, Standing::Inside { counted: true });
    let hoarder = fixture.decide(&[], START, Ask::Page).await;
    assert!(
        matches!(hoarder.standing, Standing::TooManyPlaces { .. }),
        "{hoarder:?}"
    );
    assert_eq!(
        fixture.store.calls(),
        1,
        "only the first arrival reached the store"
    );
}

#[tokio::test]
async fn while_the_store_is_down_requests_do_not_call_it_and_on_error_decides() {
    for (on_error, expected) in [
        (
            OnError::Wait,
            Standing::Waiting {
                position: None,
                eta_seconds: None,
                refresh_seconds: 0,
                drawn: None,
            },
        ),
        (OnError::Admit, Standing::Inside { counted: false }),
    ] {
        let fixture = Fixture::new(10, 100, on_error);
        fixture.step(START).await;
        fixture.store.refusing.store(true, Ordering::SeqCst);
        // The first failure marks the store down...
        let first = fixture.decide(&[], START, Ask::Page).await;
        assert_eq!(fixture.store.calls(), 1);
        assert!(fixture.health.is_down());
        // ...and from then on nothing calls it.
        let second = fixture.decide(&[], START + 10, Ask::Page).await;
        assert_eq!(fixture.store.calls(), 1, "{on_error:?}: no call while down");
        for decision in [first, second] {
            match (decision.standing, expected) {
                (
                    Standing::Waiting {
                        position,
                        eta_seconds,
                        ..
                    },
                    Standing::Waiting { .. },
                ) => {
                    assert_eq!((position, eta_seconds), (None, None));
                }
                (standing, expected) => assert_eq!(standing, expected),
            }
            assert!(decision.set_cookies.is_empty(), "no place handed out");
        }
    }
}

#[tokio::test]
async fn a_pass_from_before_the_store_lost_its_data_rejoins_once() {
    let fixture = Fixture::new(10, 100, OnError::Wait);
    fixture.step(START).await;
    let epoch = fixture.room.snapshot().expect("stepped").epoch;
    let old = fixture.keys.sign_pass(&Pass {
        room: "vaccini".to_owned(),
        epoch: epoch.wrapping_add(1),
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        admitted_at: START,
        last_seen: START,
    });
    let cookie =
        HeaderValue::from_str(&format!("{}={old}", fixture.room.pass_cookie)).expect("ascii");
    let decision = fixture.decide(&[cookie], START + 10, Ask::Page).await;
    assert_eq!(decision.standing, Standing::Inside { counted: true });
    assert_eq!(fixture.store.calls(), 1, "one rejoin");
    let renewed = fixture
        .cookie_named(&decision, &fixture.room.pass_cookie)
        .expect("a renewed pass");
    let token = renewed
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, token)| token.to_owned())
        .expect("name=token");
    let pass = fixture.keys.verify_pass(&token).expect("signed by us");
    assert_eq!(
        (pass.id.as_str(), pass.epoch),
        ("0123456789abcdef0123456789abcdef", epoch)
    );
    let again = fixture
        .decide(std::slice::from_ref(renewed), START + 20, Ask::Page)
        .await;
    assert_eq!(again.standing, Standing::Inside { counted: true });
    assert_eq!(fixture.store.calls(), 1, "the renewed pass costs nothing");
}

#[tokio::test]
async fn a_forged_or_foreign_cookie_is_no_place() {
    let fixture = Fixture::new(10, 100, OnError::Wait);
    fixture.step(START).await;
    let other_keys = Keyring::new(&["another-gateways-key-of-32-characters-at-least"]);
    let forged = other_keys.sign_pass(&Pass {
        room: "vaccini".to_owned(),
        epoch: fixture.room.snapshot().expect("stepped").epoch,
        id: "fedcba9876543210fedcba9876543210".to_owned(),
        admitted_at: START,
        last_seen: START,
    });
    let cookie =
        HeaderValue::from_str(&format!("{}={forged}", fixture.room.pass_cookie)).expect("ascii");
    let decision = fixture.decide(&[cookie], START, Ask::StatusPoll).await;
    assert_eq!(decision.standing, Standing::Outside);
    assert_eq!(fixture.store.calls(), 0);
}

#[tokio::test]
async fn a_spent_ticket_reaches_the_store_once() {
    // The room's default: 60 s to show up once let in.
    let (fixture, first_pass, ticket) = Fixture::one_inside_one_waiting().await;
    // The first leaves; the ticket is let in, but its holder does not come
    // within the minute: a no-show, its slot gone to the next.
    fixture.leave(&first_pass, START + 1_000).await;
    // Stepped every second, as the gateway does (a longer gap would count
    // as an outage, which makes no no-shows).
    for second in 2..=64 {
        fixture.step(START + second * 1_000).await;
    }
    let late = START + 64_500;
    let calls = fixture.store.calls();
    let first_try = fixture
        .decide(std::slice::from_ref(&ticket), late, Ask::StatusPoll)
        .await;
    assert_eq!(first_try.standing, Standing::Outside);
    assert_eq!(
        fixture.store.calls(),
        calls + 1,
        "the store says spent, once"
    );
    assert!(
        first_try
            .set_cookies
            .iter()
            .any(|cookie| cookie.to_str().is_ok_and(|text| text.contains("Max-Age=0"))),
        "the spent ticket's cookie is cleared"
    );
    for ask in [Ask::StatusPoll, Ask::StatusPoll, Ask::Page] {
        let again = fixture
            .decide(std::slice::from_ref(&ticket), late + 10, ask)
            .await;
        if ask == Ask::StatusPoll {
            assert_eq!(again.standing, Standing::Outside);
        }
    }
    // The page request took a new place (one arrive); the spent ticket
    // itself never went to the store again.
    assert_eq!(fixture.store.calls(), calls + 2);
}

#[tokio::test]
async fn a_gateway_without_figures_yet_never_claims_a_ticket() {
    let (fixture, first_pass, ticket) = Fixture::one_inside_one_waiting().await;
    fixture.leave(&first_pass, START + 1_000).await;
    fixture.step(START + 2_000).await;
    // A gateway just started on the same store: no figures yet, so it does
    // not know the ticket's place (a pre-queue ticket's is the draw's, and
    // an opening may have been set live), and must not claim its number.
    let fresh = RoomRuntime::new(fixture.room.config.clone(), 64);
    let mut headers = HeaderMap::new();
    let text = ticket.to_str().expect("our cookies are ASCII");
    let pair = text.split(';').next().expect("a cookie has a name=value");
    headers.append(COOKIE, HeaderValue::from_str(pair).expect("valid header"));
    let calls = fixture.store.calls();
    let now = START + 2_100;
    fixture.clock.set(now);
    let early = fixture
        .door()
        .decide(&fresh, &headers, CLIENT, now, Ask::StatusPoll)
        .await;
    assert!(
        matches!(early.standing, Standing::Waiting { position: None, .. }),
        "{early:?}"
    );
    assert_eq!(fixture.store.calls(), calls, "no claim without figures");
    // With its first figures, the gateway lets the ticket in.
    fresh.observe(fixture.figures(now).await);
    let later = fixture
        .door()
        .decide(&fresh, &headers, CLIENT, now, Ask::StatusPoll)
        .await;
    assert_eq!(later.standing, Standing::Inside { counted: true });
}
