//! The public listener's requests: the gateway's own endpoints under
//! `/_anteroom/`, protected paths through their room's door, everything else
//! straight upstream. The one place where outcomes become HTTP answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// `Retry-After` when the upstream cannot be reached or timed out: each
/// visitor's page tries again this long after, plus up to half as much
/// again at random, so that the pages of a crowd do not all come back in
/// the same second when the site returns.
const UPSTREAM_DOWN_RETRY_SECONDS: u64 = 10;

/// `Retry-After` of the closed page, which also looks again by itself this
/// often: a closed room is a matter of minutes or hours.
const CLOSED_RETRY_SECONDS: u64 = 300;

/// How long the language a visitor chose with the switch is kept.
const LANG_COOKIE_SECONDS: u64 = 365 * 24 * 3600;

/// `Retry-After` when the upstream has had `max_in_flight_upstream`
/// requests for all of `upstream_queue_ms`: short, since the visitor has
/// already waited that long and a burst clears in seconds.
const BUSY_RETRY_SECONDS: u64 = 1;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use crate::entry::{self, Standing};
use crate::metrics::Outcome;
use crate::page::{self, Visitor, WaitingView};
use crate::proxy::ProxyError;
use crate::respond::{
    add_cookies, html_response, json_error, json_response, no_store, visitor, wants_json,
};
use crate::room::RoomRuntime;
use crate::{Body, Shared, cookies, full_body, intake, limits, paths};

/// Where a request was routed, for metrics (set as a response extension).
#[derive(Debug, Clone, Copy)]
enum Route {
    Room(usize),
    Passthrough,
    Own,
}

/// Answers one request on the public listener, and counts it.
pub async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let response = answer(shared, request, peer).await;
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or_else(|| match response.status().as_u16() {
            429 => Outcome::RateLimited,
            400..=499 => Outcome::Rejected,
            500..=599 => Outcome::Error,
            _ => Outcome::Gateway,
        });
    let counters = match response.extensions().get::<Route>() {
        Some(Route::Room(index)) => &shared.rooms[*index].metrics.requests,
        Some(Route::Passthrough) => &shared.passthrough_requests,
        Some(Route::Own) => &shared.own_requests,
        None => &shared.unrouted_requests,
    };
    counters.count(outcome);
    response
}

async fn answer(shared: &Shared, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    // The front door's rate limit runs first: a rejected request costs a
    // hash-map lookup, no store and no upstream.
    let client = shared.limits.client(peer, request.headers());
    let path = request.uri().path();
    if !is_place_holders_poll(shared, &request)
        && let Err(wait) = shared.limits.check_request(&client)
    {
        return too_many_requests(shared, request.headers(), wait, "too many requests");
    }
    if matches!(request.method(), &Method::GET | &Method::HEAD)
        && request
            .uri()
            .query()
            .is_some_and(|query| query.split('&').any(page::is_lang_param))
    {
        return switch_language(shared, &request);
    }
    let normalised = paths::normalise(path);
    let own = normalised == "/_anteroom" || normalised.starts_with("/_anteroom/");
    if own {
        let mut response = own_endpoint(shared, &request, &normalised, client).await;
        response.extensions_mut().insert(Route::Own);
        return response;
    }
    if request.method() == Method::CONNECT {
        // A gateway in front of one site is not a tunnel.
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "CONNECT is not supported");
    }
    if let Some(length) = content_length(request.headers())
        && length > shared.config.limits.max_body_bytes
    {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let Some(index) = shared.room_matcher.room_for(path) else {
        let mut response = forward(shared, request, peer, Vec::new(), false).await;
        response.extensions_mut().insert(Route::Passthrough);
        return response;
    };
    let room = &shared.rooms[index];
    let decision = entry::decide(shared, room, request.headers(), client, true).await;
    let mut response = match decision.standing {
        Standing::Inside { .. } => {
            match shared
                .intake
                .find(room.name(), request.method(), &normalised)
            {
                Some(buffer) => {
                    intake::accept(
                        shared,
                        buffer,
                        request,
                        (peer, client),
                        decision.pass,
                        decision.set_cookies,
                    )
                    .await
                }
                None => forward(shared, request, peer, decision.set_cookies, true).await,
            }
        }
        Standing::Closed => closed_answer(shared, room, &request),
        Standing::TooManyPlaces { retry_after } => {
            places_limited(shared, room, &request, retry_after)
        }
        Standing::Waiting { .. } | Standing::Outside => waiting_answer(
            shared,
            room,
            &request,
            decision.standing,
            decision.set_cookies,
        ),
    };
    response.extensions_mut().insert(Route::Room(index));
    response
}

async fn own_endpoint(
    shared: &Shared,
    request: &Request<Incoming>,
    normalised: &str,
    client: IpAddr,
) -> Response<Body> {
    match (request.method(), normalised) {
        (&Method::GET | &Method::HEAD, "/_anteroom/status") => {
            status(shared, request, client).await
        }
        (&Method::POST, "/_anteroom/leave") => leave(shared, request).await,
        (&Method::GET, "/_anteroom/events") => match room_from_query(shared, request) {
            Ok(room) => crate::events::open(shared, room, request),
            Err((code, message)) => json_error(code, message),
        },
        (&Method::GET | &Method::HEAD, "/_anteroom/leave") => confirm_leave(shared, request),
        (&Method::GET | &Method::HEAD, receipt) if receipt.starts_with("/_anteroom/receipts/") => {
            // The id is case-sensitive: take it from the raw path, not the
            // normalised one.
            let id = request.uri().path().rsplit('/').next().unwrap_or_default();
            intake::receipt(shared, request.headers(), id).await
        }
        (_, "/_anteroom/status" | "/_anteroom/leave" | "/_anteroom/events") => {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        _ => json_error(StatusCode::NOT_FOUND, "no such gateway endpoint"),
    }
}

/// The status JSON of the contract, plus `room_state` (`open`, `paused`,
/// `closed`).
#[derive(Debug, Serialize)]
struct Status<'a> {
    room: &'a str,
    state: &'static str,
    position: Option<u64>,
    eta_seconds: Option<u64>,
    refresh_seconds: u64,
    room_state: &'static str,
}

async fn status(shared: &Shared, request: &Request<Incoming>, client: IpAddr) -> Response<Body> {
    let room = match room_from_query(shared, request) {
        Ok(room) => room,
        Err((code, message)) => return json_error(code, message),
    };
    let decision = entry::decide(shared, room, request.headers(), client, false).await;
    let mut response = json_response(StatusCode::OK, &status_body(room, decision.standing));
    add_cookies(response.headers_mut(), decision.set_cookies);
    no_store(response.headers_mut());
    response
}

/// `GET /_anteroom/leave` only asks: a link (possibly on another site) must
/// not be able to end a visitor's session. The form posts back here, and
/// `SameSite=Lax` cookies do not travel with another site's POST.
fn confirm_leave(shared: &Shared, request: &Request<Incoming>) -> Response<Body> {
    let room = match room_from_query(shared, request) {
        Ok(room) => room,
        Err((code, message)) => return json_error(code, message),
    };
    let html = shared
        .pages
        .confirm_leave(visitor(shared, request), room.name());
    let mut response = html_response(shared, StatusCode::OK, html);
    no_store(response.headers_mut());
    response
}

/// Leaving frees the visitor's slot for the next in line at once, instead
/// of after `session_seconds` of inactivity.
async fn leave(shared: &Shared, request: &Request<Incoming>) -> Response<Body> {
    let room = match room_from_query(shared, request) {
        Ok(room) => room,
        Err((code, message)) => return json_error(code, message),
    };
    let passes: Vec<String> = cookies::values(request.headers(), &room.pass_cookie)
        .filter_map(|token| shared.keys.verify_pass(token))
        .filter(|pass| pass.room == room.name())
        .map(|pass| pass.id)
        .collect();
    let now = shared.clock.now();
    for pass_id in &passes {
        room.revoke(pass_id, now);
        if let Err(error) = shared.store.leave(&room.params, pass_id, now).await {
            // The slot frees itself when the session times out.
            shared.health.failed(&error);
        }
    }
    let lang = shared.pages.language_for(request.headers());
    let mut response = html_response(shared, StatusCode::OK, shared.pages.goodbye(lang));
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::clear(&room.pass_cookie));
    no_store(response.headers_mut());
    response
}

fn room_from_query<'a>(
    shared: &'a Shared,
    request: &Request<Incoming>,
) -> Result<&'a Arc<RoomRuntime>, (StatusCode, &'static str)> {
    let requested = request.uri().query().and_then(|query| {
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
            .ok_or((StatusCode::NOT_FOUND, "no such room")),
        None => match shared.rooms.as_slice() {
            [only] => Ok(only),
            [] => Err((StatusCode::NOT_FOUND, "this gateway has no rooms")),
            _ => Err((
                StatusCode::BAD_REQUEST,
                "several rooms: say which with ?room=NAME",
            )),
        },
    }
}

/// The status JSON as text, for the event stream.
pub(crate) fn status_json(room: &RoomRuntime, standing: Standing) -> String {
    serde_json::to_string(&status_body(room, standing)).unwrap_or_else(|_| "{}".to_owned())
}

fn status_body(room: &RoomRuntime, standing: Standing) -> Status<'_> {
    let base = Status {
        room: room.name(),
        state: "none",
        position: None,
        eta_seconds: None,
        refresh_seconds: room.refresh_seconds(None),
        room_state: room_state(room).as_str(),
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

/// A waiting visitor's answer: the waiting page, or the status JSON for
/// clients that ask for JSON. Never reaches upstream. A write (anything but
/// GET/HEAD) gets 503 so that no client mistakes it for success.
fn waiting_answer(
    shared: &Shared,
    room: &RoomRuntime,
    request: &Request<Incoming>,
    standing: Standing,
    set_cookies: Vec<HeaderValue>,
) -> Response<Body> {
    let status = status_body(room, standing);
    let code = if matches!(request.method(), &Method::GET | &Method::HEAD) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let refresh_seconds = status.refresh_seconds;
    let mut response = if wants_json(request.headers()) {
        json_response(code, &status)
    } else {
        let status_url = format!("/_anteroom/status?room={}", room.name());
        let view = WaitingView {
            room: room.name(),
            position: status.position,
            eta_seconds: status.eta_seconds,
            refresh_seconds,
            updated_unix_seconds: shared.clock.now() / 1000,
            status_url: &status_url,
            room_state: room_state(room),
        };
        let html = shared.pages.waiting(visitor(shared, request), &view);
        html_response(shared, code, html)
    };
    response.extensions_mut().insert(Outcome::Waiting);
    let headers = response.headers_mut();
    add_cookies(headers, set_cookies);
    no_store(headers);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(refresh_seconds));
    response
}

/// Sends the request upstream. `inside`: the visitor holds a room's pass
/// (which a failure page says they keep).
async fn forward(
    shared: &Shared,
    request: Request<Incoming>,
    peer: SocketAddr,
    set_cookies: Vec<HeaderValue>,
    inside: bool,
) -> Response<Body> {
    // What a failure page needs, kept before the request goes upstream.
    let lang = shared.pages.language_for(request.headers());
    // A clone shares the bytes: no copy on the way that succeeds.
    let uri = request.uri().clone();
    let request_headers = accept_only(request.headers());
    let mut response = match shared.proxy.forward(request, peer).await {
        Ok(mut response) => {
            response.extensions_mut().insert(Outcome::Proxied);
            response
        }
        Err(error) => {
            let visitor = Visitor {
                lang,
                query: uri.query().unwrap_or_default(),
            };
            upstream_failure(shared, error, visitor, inside, &request_headers)
        }
    };
    // Whatever the answer, a pass issued by this request is handed over.
    add_cookies(response.headers_mut(), set_cookies);
    response
}

/// The one place a failed upstream request becomes an answer: counted,
/// logged when it is the site's fault, and shown to the visitor as a
/// friendly page (or short JSON), never with the detail.
///
/// Outside every room the answer says what happened: `502` unreachable,
/// `504` timed out, `503` busy. A visitor inside a room (`inside`) gets
/// `503` whatever the cause: for them the site is unavailable for a
/// moment, their pass is kept (the page says so), and the page tries again
/// by itself. Every answer carries `Retry-After`.
fn upstream_failure(
    shared: &Shared,
    error: ProxyError,
    visitor: Visitor<'_>,
    inside: bool,
    request_headers: &HeaderMap,
) -> Response<Body> {
    let (kind, code, retry_seconds) = match &error {
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
            return json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        ProxyError::ClientBody(_) => {
            crate::metrics::upstream_error("client_body");
            return json_error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        }
    };
    crate::metrics::upstream_error(kind);
    if code != StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(%error, "upstream request failed");
    }
    let code = if inside {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        code
    };
    let retry_seconds = if retry_seconds == UPSTREAM_DOWN_RETRY_SECONDS {
        retry_seconds + rand::random_range(0..=UPSTREAM_DOWN_RETRY_SECONDS / 2)
    } else {
        retry_seconds
    };
    let mut response = if wants_json(request_headers) {
        json_error(
            code,
            "the site cannot answer right now; please try again shortly",
        )
    } else {
        let html = shared
            .pages
            .upstream_unavailable(visitor, retry_seconds, inside);
        html_response(shared, code, html)
    };
    let headers = response.headers_mut();
    no_store(headers);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds));
    response
}

/// Over `tickets_per_ip_per_minute`. A browser asking for a page (perhaps
/// one of many visitors behind a shared address) gets the waiting page with
/// its place not yet known, which retries by itself once the limit allows:
/// a visitor never sees an error page. Anything else gets a plain `429`.
fn places_limited(
    shared: &Shared,
    room: &RoomRuntime,
    request: &Request<Incoming>,
    retry_after: std::time::Duration,
) -> Response<Body> {
    let message = "too many new places from this address";
    if request.method() != Method::GET || wants_json(request.headers()) {
        return too_many_requests(shared, request.headers(), retry_after, message);
    }
    let retry_seconds = limits::retry_after_seconds(retry_after);
    let status_url = format!("/_anteroom/status?room={}", room.name());
    let view = WaitingView {
        room: room.name(),
        position: None,
        eta_seconds: None,
        refresh_seconds: retry_seconds,
        updated_unix_seconds: shared.clock.now() / 1000,
        status_url: &status_url,
        room_state: room_state(room),
    };
    let html = shared.pages.waiting(visitor(shared, request), &view);
    let mut response = html_response(shared, StatusCode::TOO_MANY_REQUESTS, html);
    let headers = response.headers_mut();
    no_store(headers);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds));
    response
}

/// The room is closed: no new places. A short page (or JSON), `503` with a
/// long `Retry-After`; the origin sees nothing. The page looks again by
/// itself, so a visitor who keeps it open is there when the room opens.
fn closed_answer(
    shared: &Shared,
    room: &RoomRuntime,
    request: &Request<Incoming>,
) -> Response<Body> {
    let mut response = if wants_json(request.headers()) {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"room": room.name(), "state": "none", "room_state": "closed"}),
        )
    } else {
        let html = shared
            .pages
            .closed(visitor(shared, request), CLOSED_RETRY_SECONDS);
        html_response(shared, StatusCode::SERVICE_UNAVAILABLE, html)
    };
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(CLOSED_RETRY_SECONDS));
    no_store(headers);
    response
}

/// A status poll by someone holding a genuine ticket or pass: never rate
/// limited, so that waiting visitors behind one shared address (a carrier's
/// NAT, an office) keep their page moving. It costs no store round trip, and
/// verifying the cookie is one HMAC.
///
/// Only the exact path the waiting page polls is exempt: any other spelling
/// of it is limited like every other request.
fn is_place_holders_poll(shared: &Shared, request: &Request<Incoming>) -> bool {
    if request.uri().path() != "/_anteroom/status" {
        return false;
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
                    && snapshot.position(ticket.number).is_some()
            });
        waiting
            || cookies::values(request.headers(), &room.pass_cookie)
                .next()
                .and_then(|token| shared.keys.verify_pass(token))
                .is_some_and(|pass| pass.room == room.name() && pass.epoch == snapshot.epoch)
    })
}

/// `429` with `Retry-After`, as a small JSON or HTML answer by `Accept`
/// (the HTML is static: rejecting must stay cheap).
fn too_many_requests(
    shared: &Shared,
    headers: &HeaderMap,
    wait: std::time::Duration,
    message: &str,
) -> Response<Body> {
    let retry_after = limits::retry_after_seconds(wait);
    let mut response = if wants_json(headers) {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &serde_json::json!({ "error": message, "retry_after_seconds": retry_after }),
        )
    } else {
        let lang = shared.pages.language_for(headers);
        let mut response = Response::new(full_body(shared.pages.too_many_requests(lang)));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    no_store(headers);
    response
}

/// Just the `Accept` header, kept to choose an error's format after the
/// request has gone upstream.
fn accept_only(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    if let Some(accept) = headers.get(header::ACCEPT) {
        kept.insert(header::ACCEPT, accept.clone());
    }
    kept
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// The room's state as this gateway last saw it.
fn room_state(room: &RoomRuntime) -> anteroom_store::RoomState {
    room.snapshot()
        .map(|snapshot| snapshot.state)
        .unwrap_or_default()
}

/// A link of the language switch (`?…&anteroom_lang=it`): keeps the choice
/// in a cookie and sends the browser back to the same address without the
/// parameter, so that it never reaches the upstream and the visitor's place
/// (their cookies) is untouched. An unknown language is just taken out.
/// Costs no store round trip.
fn switch_language(shared: &Shared, request: &Request<Incoming>) -> Response<Body> {
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
    let mut response = Response::new(full_body(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("./")),
    );
    if let Some(lang) = chosen {
        let secure = match shared.config.cookies.secure {
            anteroom_config::CookieSecure::Always => true,
            anteroom_config::CookieSecure::Auto => entry::is_https(request.headers()),
        };
        headers.append(
            header::SET_COOKIE,
            cookies::set(
                page::LANG_COOKIE,
                shared.pages.code(lang),
                LANG_COOKIE_SECONDS,
                secure,
            ),
        );
    }
    no_store(headers);
    response
}
