//! The public listener's requests: the gateway's own endpoints under
//! `/_anteroom/`, protected paths through their room's door, everything else
//! straight upstream.
//!
//! Routing decides; it does not build responses. Each handler returns a
//! [`Reply`]: an [`Answer`] of ours, rendered in one place
//! ([`Answer::render`]), or the site's own response. Handlers are generic
//! over the request body, so tests can call [`handle`] without a socket.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use anteroom_store::Phase;
use anteroom_store::draw::PublicDraw;

use crate::answer::{Answer, Asked, Audience, PassHeld, Prefers, Reply};
use crate::door::{Ask, Decision, Standing};
use crate::metrics::RequestOutcome;
use crate::proxy::ProxyError;
use crate::room::RoomRuntime;
use crate::status::Status;
use crate::{Body, BoxError, Shared, cookies, host, intake, limits, page, paths};

/// `Retry-After` when the upstream cannot be reached or timed out: each
/// visitor's page tries again this long after, plus up to half as much
/// again at random, so that the pages of a crowd do not all come back in
/// the same second when the site returns.
const UPSTREAM_DOWN_RETRY_SECONDS: u64 = 10;

/// How long the language a visitor chose with the switch is kept.
const LANG_COOKIE_SECONDS: u64 = 365 * 24 * 3600;

/// `Retry-After` when the upstream has had `max_in_flight_upstream`
/// requests for all of `upstream_queue_ms`: short, since the visitor has
/// already waited that long and a burst clears in seconds.
const BUSY_RETRY_SECONDS: u64 = 1;

/// Where a request was routed, for metrics.
#[derive(Debug, Clone, Copy)]
enum Route {
    Room(usize),
    Passthrough,
    Own,
    /// Refused before routing (rate limit, bad request, language switch).
    Unrouted,
}

/// Answers one request on the public listener, and counts it.
pub async fn handle<B>(shared: &Shared, request: Request<B>, peer: SocketAddr) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let audience = Audience::of(&shared.pages, request.headers(), request.uri());
    let (route, reply, set_cookies) = route(shared, request, peer, audience.prefers()).await;
    let (outcome, response) = match reply {
        Reply::Ours(answer) => (
            answer.outcome(),
            answer.render(&audience, &shared.pages, set_cookies),
        ),
        Reply::Site(mut response) => {
            // Whatever the answer, a pass issued by this request is handed
            // over.
            crate::respond::add_cookies(response.headers_mut(), set_cookies);
            (RequestOutcome::Proxied, response)
        }
    };
    let counters = match route {
        Route::Room(index) => &shared.rooms[index].metrics.requests,
        Route::Passthrough => &shared.passthrough_requests,
        Route::Own => &shared.own_requests,
        Route::Unrouted => &shared.unrouted_requests,
    };
    counters.count(outcome);
    response
}

/// Decides what a request gets, and the cookies that go with it. `prefers`:
/// the answer's form the client takes (its `Accept`, read once).
async fn route<'a, B>(
    shared: &'a Shared,
    request: Request<B>,
    peer: SocketAddr,
    prefers: Prefers,
) -> (Route, Reply<'a>, Vec<HeaderValue>)
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let ours = |route, answer| (route, Reply::Ours(answer), Vec::new());
    // The front door's rate limit runs first: a rejected request costs a
    // hash-map lookup, no store and no upstream.
    let client = shared.limits.client(peer, request.headers());
    if !is_exempt_status_poll(shared, &request)
        && let Err(wait) = shared.limits.check_request(&client)
    {
        return ours(Route::Unrouted, too_many(wait, "too many requests"));
    }
    // What the request says about itself is checked before any of it is
    // used: a request the site might read differently from us goes nowhere.
    if let Err(bad_host) = host::check(request.version(), request.headers()) {
        return ours(Route::Unrouted, bad_request(bad_host));
    }
    let normalised = match paths::normalise_request_path(request.uri().path()) {
        Ok(normalised) => normalised,
        Err(unnormalisable) => return ours(Route::Unrouted, bad_request(unnormalisable)),
    };
    if matches!(request.method(), &Method::GET | &Method::HEAD)
        && request
            .uri()
            .query()
            .is_some_and(|query| query.split('&').any(page::is_lang_param))
    {
        let (answer, cookie) = switch_language(shared, &request);
        return (
            Route::Unrouted,
            Reply::Ours(answer),
            cookie.into_iter().collect(),
        );
    }
    if normalised == "/_anteroom" || normalised.starts_with("/_anteroom/") {
        let (answer, set_cookies) = own_endpoint(shared, &request, &normalised, client).await;
        return (Route::Own, Reply::Ours(answer), set_cookies);
    }
    if request.method() == Method::CONNECT {
        // A gateway in front of one site is not a tunnel.
        return ours(
            Route::Unrouted,
            refused(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported"),
        );
    }
    if let Some(length) = content_length(request.headers())
        && length > shared.config.limits.max_body_bytes
    {
        return ours(
            Route::Unrouted,
            refused(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        );
    }
    let Some(index) = shared
        .room_matcher
        .room_of(request.uri().path(), &normalised)
    else {
        let reply = forward(shared, request, (peer, client), None).await;
        return (Route::Passthrough, reply, Vec::new());
    };
    let room = &shared.rooms[index];
    let decision = at_the_door(shared, room, request.headers(), client, Ask::Page).await;
    let reply = match decision.standing {
        Standing::Inside { .. } => {
            match shared
                .intake
                .find(room.name(), request.method(), &normalised)
            {
                Some(buffer) => Reply::Ours(
                    intake::accept(
                        shared,
                        buffer,
                        request,
                        (peer, client),
                        decision.pass,
                        prefers,
                    )
                    .await,
                ),
                None => forward(shared, request, (peer, client), Some(room)).await,
            }
        }
        Standing::Closed => Reply::Ours(Answer::Closed { room: room.name() }),
        Standing::TooManyPlaces { retry_after } => {
            Reply::Ours(places_limited(shared, room, &request, retry_after, prefers))
        }
        Standing::Waiting { .. }
        | Standing::NotOpen { .. }
        | Standing::PreQueue { .. }
        | Standing::Outside => Reply::Ours(Answer::Waiting {
            status: Status::of(
                room,
                decision.standing,
                shared.store_clock.now(),
                &shared.config.time_zone,
            ),
            asked: if matches!(request.method(), &Method::GET | &Method::HEAD) {
                Asked::Read
            } else {
                Asked::Write
            },
            updated_unix_seconds: shared.store_clock.now() / 1000,
        }),
    };
    (Route::Room(index), reply, decision.set_cookies)
}

async fn own_endpoint<'a, B>(
    shared: &'a Shared,
    request: &Request<B>,
    normalised: &str,
    client: IpAddr,
) -> (Answer<'a>, Vec<HeaderValue>) {
    let only = |answer| (answer, Vec::new());
    let room = || room_from_query(shared, request.uri().query());
    match (request.method(), normalised) {
        (&Method::GET | &Method::HEAD, "/_anteroom/status") => match room() {
            Ok(room) => {
                let decision =
                    at_the_door(shared, room, request.headers(), client, Ask::StatusPoll).await;
                (
                    Answer::Status(Status::of(
                        room,
                        decision.standing,
                        shared.store_clock.now(),
                        &shared.config.time_zone,
                    )),
                    decision.set_cookies,
                )
            }
            Err(no_room) => only(no_room.answer()),
        },
        (&Method::POST, "/_anteroom/leave") => match room() {
            Ok(room) => leave(shared, room, request.headers()).await,
            Err(no_room) => only(no_room.answer()),
        },
        (&Method::GET, "/_anteroom/events") => only(match room() {
            Ok(room) => crate::events::open(shared, room, request.headers()),
            Err(no_room) => no_room.answer(),
        }),
        (&Method::GET | &Method::HEAD, "/_anteroom/draw") => only(match room() {
            Ok(room) => public_draw(shared, room),
            Err(no_room) => no_room.answer(),
        }),
        // `GET /_anteroom/leave` only asks: a link (possibly on another
        // site) must not be able to end a visitor's session. The form posts
        // back here, and `SameSite=Lax` cookies do not travel with another
        // site's POST.
        (&Method::GET | &Method::HEAD, "/_anteroom/leave") => only(match room() {
            Ok(room) => Answer::ConfirmLeave { room: room.name() },
            Err(no_room) => no_room.answer(),
        }),
        (&Method::GET | &Method::HEAD, receipt) if receipt.starts_with("/_anteroom/receipts/") => {
            // The id is case-sensitive: take it from the raw path, not the
            // normalised one.
            let id = request.uri().path().rsplit('/').next().unwrap_or_default();
            only(intake::receipt(shared, id).await)
        }
        (_, "/_anteroom/status" | "/_anteroom/leave" | "/_anteroom/events" | "/_anteroom/draw") => {
            only(refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here",
            ))
        }
        _ => only(refused(StatusCode::NOT_FOUND, "no such gateway endpoint")),
    }
}

/// The door's decision for this request, now.
async fn at_the_door(
    shared: &Shared,
    room: &RoomRuntime,
    headers: &HeaderMap,
    client: IpAddr,
    ask: Ask,
) -> Decision {
    shared
        .door()
        .decide(room, headers, client, shared.store_clock.now(), ask)
        .await
}

/// Leaving frees the visitor's slot for the next in line at once, instead
/// of after `session_seconds` of inactivity.
async fn leave<'a>(
    shared: &'a Shared,
    room: &RoomRuntime,
    headers: &HeaderMap,
) -> (Answer<'a>, Vec<HeaderValue>) {
    let passes: Vec<String> = cookies::values(headers, &room.pass_cookie)
        .filter_map(|token| shared.keys.verify_pass(token))
        .filter(|pass| pass.room == room.name())
        .map(|pass| pass.id)
        .collect();
    let now = shared.store_clock.now();
    for pass_id in &passes {
        room.revoke(pass_id, now);
        if let Err(error) = shared.store.leave(&room.params, pass_id).await {
            // Delivered after the outage (the room's step does it), so the
            // slot goes on then rather than when the session times out.
            shared.health.failed(&error);
            room.defer_leave(pass_id);
        }
    }
    (Answer::Goodbye, vec![cookies::clear(&room.pass_cookie)])
}

/// The room named by `?room=`, or the only one.
/// `GET /_anteroom/draw?room=NAME`: the room's draw as anyone may check
/// it (see docs/draw.md): its commitment from the start, its seed once
/// drawn. From the cached figures: no store round trip.
fn public_draw<'a>(shared: &Shared, room: &RoomRuntime) -> Answer<'a> {
    let Some(snapshot) = room.snapshot() else {
        return Answer::Unavailable {
            message: "the room's figures are not known yet",
            retry_seconds: 1,
        };
    };
    let Some(seed) = snapshot.seed else {
        return Answer::Unavailable {
            message: "the room's draw is not known yet",
            retry_seconds: 1,
        };
    };
    if snapshot.schedule.opens_at.is_none() && snapshot.drawn.is_none() {
        return refused(
            StatusCode::NOT_FOUND,
            "this room has no scheduled opening, so no draw",
        );
    }
    let opens_at = snapshot
        .schedule
        .opens_at
        .map(|at| anteroom_config::schedule::format_instant(at, &shared.config.time_zone));
    let draw = match snapshot.drawn {
        Some(pre_queue) => PublicDraw::drawn(room.name(), &seed, pre_queue, opens_at),
        None => PublicDraw::pending(room.name(), &seed, snapshot.issued, opens_at),
    };
    Answer::Draw(Box::new(draw))
}

fn room_from_query<'a>(
    shared: &'a Shared,
    query: Option<&str>,
) -> Result<&'a Arc<RoomRuntime>, NoRoom> {
    let requested = query.and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "room")
            .map(|(_, value)| value)
    });
    match requested {
        Some(name) => shared
            .rooms
            .iter()
            .find(|room| room.name() == name)
            .ok_or(NoRoom(StatusCode::NOT_FOUND, "no such room")),
        None => match shared.rooms.as_slice() {
            [only] => Ok(only),
            [] => Err(NoRoom(StatusCode::NOT_FOUND, "this gateway has no rooms")),
            _ => Err(NoRoom(
                StatusCode::BAD_REQUEST,
                "several rooms: say which with ?room=NAME",
            )),
        },
    }
}

/// Why `?room=NAME` names no room of this gateway.
#[derive(Debug, Clone, Copy)]
struct NoRoom(StatusCode, &'static str);

impl NoRoom {
    fn answer(self) -> Answer<'static> {
        refused(self.0, self.1)
    }
}

/// Sends the request upstream; a failure becomes our answer. `room`: the
/// room whose admitted visitor sent it (holding its pass), whose places it
/// takes and whose figures it counts in; `None` outside every room.
async fn forward<'a, B>(
    shared: &'a Shared,
    request: Request<B>,
    (peer, client): (SocketAddr, IpAddr),
    room: Option<&RoomRuntime>,
) -> Reply<'a>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let held = if room.is_some() {
        PassHeld::Yes
    } else {
        PassHeld::No
    };
    match shared
        .proxy
        .forward(request, peer, client, room.map(RoomRuntime::upstream))
        .await
    {
        Ok(response) => Reply::Site(response),
        Err(error) => Reply::Ours(upstream_failure(error, held)),
    }
}

/// The one place a failed upstream request becomes an answer: counted,
/// logged when it is the site's fault, and shown to the visitor as a
/// friendly page (or short JSON), never with the detail.
///
/// Outside every room the answer says what happened: `502` unreachable,
/// `504` timed out, `503` busy. A visitor holding a room's pass gets `503`
/// whatever the cause: for them the site is unavailable for a moment,
/// their pass is kept (the page says so), and the page tries again by
/// itself. Every answer carries `Retry-After`.
fn upstream_failure(error: ProxyError, held: PassHeld) -> Answer<'static> {
    let (kind, code, retry_seconds) = match error {
        ProxyError::Unreachable { .. } => (
            "unreachable",
            StatusCode::BAD_GATEWAY,
            UPSTREAM_DOWN_RETRY_SECONDS,
        ),
        ProxyError::TimedOut { .. } => (
            "timeout",
            StatusCode::GATEWAY_TIMEOUT,
            UPSTREAM_DOWN_RETRY_SECONDS,
        ),
        ProxyError::Busy => ("busy", StatusCode::SERVICE_UNAVAILABLE, BUSY_RETRY_SECONDS),
        ProxyError::BodyTooLarge { .. } => {
            crate::metrics::upstream_error("body_too_large");
            return refused(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        ProxyError::ClientBody(_) => {
            crate::metrics::upstream_error("client_body");
            return refused(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        }
        // The client's doing, or the bound on memory for bodies: the site
        // never saw the request (or saw it cut short).
        ProxyError::Body(body) => {
            crate::metrics::upstream_error(body.reason());
            return Answer::BodyRefused(body);
        }
        ProxyError::ClientBusy => {
            crate::metrics::upstream_error("client_busy");
            return Answer::TooMany {
                retry_seconds: BUSY_RETRY_SECONDS,
                message: "too many of this address's requests are at the site at once",
            };
        }
    };
    crate::metrics::upstream_error(kind);
    if code != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%error, "upstream request failed");
    }
    let code = match held {
        PassHeld::Yes => StatusCode::SERVICE_UNAVAILABLE,
        PassHeld::No => code,
    };
    let retry_seconds = if retry_seconds == UPSTREAM_DOWN_RETRY_SECONDS {
        retry_seconds + rand::random_range(0..=UPSTREAM_DOWN_RETRY_SECONDS / 2)
    } else {
        retry_seconds
    };
    Answer::SiteDown {
        code,
        retry_seconds,
        held,
    }
}

/// Over `tickets_per_ip_per_minute`. A browser asking for a page (perhaps
/// one of many visitors behind a shared address) gets the waiting page with
/// its place not yet known, which retries by itself once the limit allows:
/// a visitor never sees an error page. Anything else gets a plain `429`.
fn places_limited<'a, B>(
    shared: &'a Shared,
    room: &'a RoomRuntime,
    request: &Request<B>,
    retry_after: std::time::Duration,
    prefers: Prefers,
) -> Answer<'a> {
    let message = "too many new places from this address";
    if request.method() != Method::GET || prefers == Prefers::Json {
        return too_many(retry_after, message);
    }
    Answer::PlaceLater {
        status: Status::of(
            room,
            Standing::Outside,
            shared.store_clock.now(),
            &shared.config.time_zone,
        ),
        retry_seconds: limits::retry_after_seconds(retry_after),
        updated_unix_seconds: shared.store_clock.now() / 1000,
    }
}

/// A status poll by someone holding a place that the cached figures can
/// answer: never rate limited, so that waiting visitors behind one shared
/// address (a carrier's NAT, an office) keep their page moving. It costs no
/// store round trip, and verifying the cookie is one HMAC.
///
/// Only the exact path the waiting page polls is exempt: any other spelling
/// of it is limited like every other request.
///
/// So is a poll of a room that has not opened its pre-queue yet, by anyone:
/// the page before the opening polls until it may take a ticket, the answer
/// (`not_open`) comes from the cached figures, and a crowd behind one
/// address gathers there before the hour.
fn is_exempt_status_poll<B>(shared: &Shared, request: &Request<B>) -> bool {
    if request.uri().path() != "/_anteroom/status" {
        return false;
    }
    // Only without a cookie of the room: before the opening nobody holds a
    // genuine one, and a stale one may cost the door a store call.
    let not_open = room_from_query(shared, request.uri().query()).is_ok_and(|room| {
        room.snapshot()
            .is_some_and(|snapshot| snapshot.phase(shared.store_clock.now()) == Phase::NotOpen)
            && cookies::values(request.headers(), &room.ticket_cookie)
                .next()
                .is_none()
            && cookies::values(request.headers(), &room.pass_cookie)
                .next()
                .is_none()
    });
    if not_open {
        return true;
    }
    // Only polls that the cached figures answer are exempt: a ticket whose
    // turn has come (or that is spent, or of another epoch) goes to the
    // store, so it is rate limited like anything else. Only the first value
    // of each cookie is looked at, so a header full of fake tokens costs at
    // most two HMACs per room.
    shared.rooms.iter().any(|room| {
        let Some(snapshot) = room.snapshot() else {
            return false;
        };
        let waiting = cookies::values(request.headers(), &room.ticket_cookie)
            .next()
            .and_then(|token| shared.keys.verify_ticket(token))
            .is_some_and(|ticket| {
                ticket.room == room.name()
                    && ticket.epoch == snapshot.epoch
                    // A pre-queue ticket before the draw has no place yet
                    // (cached: pre_queue); any other waits by its place.
                    && room
                        .place_of(&snapshot, ticket.number)
                        .is_none_or(|place| snapshot.position(place).is_some())
            });
        // A pass exempts only while it is good: of the current epoch,
        // within its session and not left. A spent one is limited like
        // anything else.
        waiting
            || cookies::values(request.headers(), &room.pass_cookie)
                .next()
                .and_then(|token| shared.keys.verify_pass(token))
                .is_some_and(|pass| {
                    pass.epoch == snapshot.epoch && room.honours(&pass, shared.store_clock.now())
                })
    })
}

/// `429`: the rate limit says to wait `wait`.
fn too_many(wait: std::time::Duration, message: &'static str) -> Answer<'static> {
    Answer::TooMany {
        retry_seconds: limits::retry_after_seconds(wait),
        message,
    }
}

fn refused(code: StatusCode, message: &'static str) -> Answer<'static> {
    Answer::Refused {
        code,
        message: Cow::Borrowed(message),
    }
}

/// `400`, saying what is wrong with the request.
fn bad_request(reason: impl std::fmt::Display) -> Answer<'static> {
    Answer::Refused {
        code: StatusCode::BAD_REQUEST,
        message: Cow::Owned(reason.to_string()),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// A link of the language switch (`?…&anteroom_lang=it`): keeps the choice
/// in a cookie and sends the browser back to the same address without the
/// parameter, so that it never reaches the upstream and the visitor's place
/// (their cookies) is untouched. An unknown language is just taken out.
/// Costs no store round trip.
fn switch_language<B>(
    shared: &Shared,
    request: &Request<B>,
) -> (Answer<'static>, Option<HeaderValue>) {
    let query = request.uri().query().unwrap_or_default();
    let chosen = query
        .split('&')
        .filter(|pair| page::is_lang_param(pair))
        .find_map(|pair| shared.pages.lang(pair.split_once('=')?.1));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !page::is_lang_param(pair))
        .collect();
    // Relative to the current address: `./` plus its last segment names
    // the same path, whatever proxies in front rewrote, and can never
    // point at another host.
    let last_segment = request.uri().path().rsplit('/').next().unwrap_or_default();
    let mut location = format!("./{last_segment}");
    if !kept.is_empty() {
        location.push('?');
        location.push_str(&kept.join("&"));
    }
    let location =
        HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("./"));
    let cookie = chosen.map(|lang| {
        cookies::set(
            page::LANG_COOKIE,
            shared.pages.code(lang),
            LANG_COOKIE_SECONDS,
            cookies::Over::for_request(shared.config.cookies.secure, request.headers()),
        )
    });
    (Answer::SeeOther { location }, cookie)
}

#[cfg(test)]
mod tests;
