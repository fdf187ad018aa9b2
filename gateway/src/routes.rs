//! The public listener's requests: the gateway's own endpoints under
//! `/_anteroom/`, protected paths through their room's door, everything else
//! straight upstream. The one place where outcomes become HTTP answers.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use crate::entry::{self, Standing};
use crate::page::{Lang, WaitingView};
use crate::proxy::ProxyError;
use crate::room::RoomRuntime;
use crate::{Body, Shared, cookies, full_body, paths};

/// Answers one request on the public listener.
pub async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = request.uri().path();
    let normalised = paths::normalise(path);
    if normalised == "/_anteroom" || normalised.starts_with("/_anteroom/") {
        return own_endpoint(shared, &request, &normalised).await;
    }
    let Some(index) = paths::room_for(shared.room_configs(), path) else {
        return forward(shared, request, peer, Vec::new()).await;
    };
    let room = &shared.rooms[index];
    let decision = entry::decide(shared, room, request.headers(), true).await;
    match decision.standing {
        Standing::Inside { .. } => forward(shared, request, peer, decision.set_cookies).await,
        Standing::Waiting { .. } | Standing::Outside => waiting_answer(
            shared,
            room,
            &request,
            decision.standing,
            decision.set_cookies,
        ),
    }
}

async fn own_endpoint(
    shared: &Shared,
    request: &Request<Incoming>,
    normalised: &str,
) -> Response<Body> {
    match (request.method(), normalised) {
        (&Method::GET | &Method::HEAD, "/_anteroom/status") => status(shared, request).await,
        (&Method::GET | &Method::POST, "/_anteroom/leave") => leave(shared, request).await,
        (_, "/_anteroom/status" | "/_anteroom/leave") => {
            json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        }
        _ => json_error(StatusCode::NOT_FOUND, "no such gateway endpoint"),
    }
}

/// The status JSON of the contract.
#[derive(Debug, Serialize)]
struct Status<'a> {
    room: &'a str,
    state: &'static str,
    position: Option<u64>,
    eta_seconds: Option<u64>,
    refresh_seconds: u64,
}

async fn status(shared: &Shared, request: &Request<Incoming>) -> Response<Body> {
    let room = match room_from_query(shared, request) {
        Ok(room) => room,
        Err((code, message)) => return json_error(code, message),
    };
    let decision = entry::decide(shared, room, request.headers(), false).await;
    let mut response = json_response(StatusCode::OK, &status_body(room, decision.standing));
    add_cookies(response.headers_mut(), decision.set_cookies);
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
    for pass_id in &passes {
        if let Err(error) = shared.store.leave(&room.params, pass_id).await {
            // The slot frees itself when the session times out.
            shared.health.failed(&error);
        }
    }
    let lang = Lang::from_accept_language(header_str(request.headers(), header::ACCEPT_LANGUAGE));
    let mut response = html_response(StatusCode::OK, shared.pages.goodbye(lang));
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::clear(&room.pass_cookie));
    no_store(response.headers_mut());
    response
}

fn room_from_query<'a>(
    shared: &'a Shared,
    request: &Request<Incoming>,
) -> Result<&'a RoomRuntime, (StatusCode, &'static str)> {
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
            .map(|room| room.as_ref())
            .ok_or((StatusCode::NOT_FOUND, "no such room")),
        None => match shared.rooms.as_slice() {
            [only] => Ok(only.as_ref()),
            [] => Err((StatusCode::NOT_FOUND, "this gateway has no rooms")),
            _ => Err((
                StatusCode::BAD_REQUEST,
                "several rooms: say which with ?room=NAME",
            )),
        },
    }
}

fn status_body(room: &RoomRuntime, standing: Standing) -> Status<'_> {
    let base = Status {
        room: room.name(),
        state: "none",
        position: None,
        eta_seconds: None,
        refresh_seconds: room.refresh_seconds(None),
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
        Standing::Outside => base,
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
        let lang =
            Lang::from_accept_language(header_str(request.headers(), header::ACCEPT_LANGUAGE));
        let status_url = format!("/_anteroom/status?room={}", room.name());
        let view = WaitingView {
            room: room.name(),
            position: status.position,
            eta_seconds: status.eta_seconds,
            refresh_seconds,
            updated_unix_seconds: shared.clock.now() / 1000,
            status_url: &status_url,
        };
        html_response(code, shared.pages.waiting(lang, &view))
    };
    let headers = response.headers_mut();
    add_cookies(headers, set_cookies);
    no_store(headers);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(refresh_seconds));
    response
}

async fn forward(
    shared: &Shared,
    request: Request<Incoming>,
    peer: SocketAddr,
    set_cookies: Vec<HeaderValue>,
) -> Response<Body> {
    let lang = Lang::from_accept_language(header_str(request.headers(), header::ACCEPT_LANGUAGE));
    match shared
        .proxy
        .forward(request, peer, set_cookies.clone())
        .await
    {
        Ok(response) => response,
        Err(error) => {
            // Logged here, where the error becomes an answer; the visitor sees
            // a friendly page, never the detail.
            tracing::warn!(%error, "upstream request failed");
            let code = match error {
                ProxyError::Unreachable { .. } => StatusCode::BAD_GATEWAY,
                ProxyError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            };
            const RETRY_SECONDS: u64 = 10;
            let mut response =
                html_response(code, shared.pages.upstream_unavailable(lang, RETRY_SECONDS));
            let headers = response.headers_mut();
            add_cookies(headers, set_cookies);
            no_store(headers);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_SECONDS));
            response
        }
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT)
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn add_cookies(headers: &mut HeaderMap, set_cookies: Vec<HeaderValue>) {
    for cookie in set_cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub fn json_response(code: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full_body(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn json_error(code: StatusCode, message: &str) -> Response<Body> {
    json_response(code, &serde_json::json!({ "error": message }))
}

fn html_response(code: StatusCode, html: String) -> Response<Body> {
    let mut response = Response::new(full_body(Bytes::from(html)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
