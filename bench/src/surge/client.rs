//! The visitors' HTTP side: one shared, bounded set of connections, and a
//! cookie jar per visitor.
//!
//! A real crowd opens a connection per browser; 200,000 of them do not fit
//! in one process's file descriptors. So visitors share at most
//! `connections` requests in flight (each a keep-alive connection of a
//! pool), and a visitor waiting for one is, to the site, a browser still
//! connecting. The wait counts in the visitor's request timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Larger answers are not what a booking site sends a visitor; reading
/// stops there and the request counts as failed.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// One answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// `Retry-After` in seconds, when present and numeric.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A request that got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the visitor's patience (or before the run's end).
    Timeout,
    /// The connection was refused or broke.
    Connection,
}

/// What a visitor sends, beyond method and path.
pub struct Outgoing<'a> {
    pub method: Method,
    pub path: &'a str,
    pub accept: &'static str,
    pub body: Option<(&'static str, Bytes)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl<'a> Outgoing<'a> {
    pub fn get(path: &'a str, accept: &'static str) -> Outgoing<'a> {
        Outgoing {
            method: Method::GET,
            path,
            accept,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn post(path: &'a str, content_type: &'static str, body: Bytes) -> Outgoing<'a> {
        Outgoing {
            method: Method::POST,
            path,
            accept: "application/json",
            body: Some((content_type, body)),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Outgoing<'a> {
        self.headers.push((name, value));
        self
    }
}

/// The crowd's shared connections to the target site.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl Client {
    /// `target` is the site's base URL (`http://host:port`); at most
    /// `connections` requests are in flight at once; each waits at most
    /// `timeout` for its answer, its wait for a connection included.
    pub fn new(target: &Uri, connections: usize, timeout: Duration) -> Result<Client, String> {
        let scheme = target.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP);
        if scheme != http::uri::Scheme::HTTP {
            return Err(format!("{target}: only http:// targets are supported"));
        }
        let authority = target
            .authority()
            .cloned()
            .ok_or_else(|| format!("{target}: the target needs a host"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            http,
            scheme,
            authority,
            in_flight: Arc::new(Semaphore::new(connections.max(1))),
            timeout,
        })
    }

    /// Sends one request with the visitor's cookies and stores the cookies
    /// the answer sets. Gives up at `deadline` at the latest.
    pub async fn send(
        &self,
        jar: &mut Jar,
        outgoing: Outgoing<'_>,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let until = deadline.min(Instant::now() + self.timeout);
        match tokio::time::timeout_at(until, self.exchange(jar, outgoing)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn exchange(&self, jar: &mut Jar, outgoing: Outgoing<'_>) -> Result<Answer, Failure> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| Failure::Connection)?;
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(outgoing.path)
            .build()
            .map_err(|_| Failure::Connection)?;
        let mut builder = Request::builder()
            .method(outgoing.method)
            .uri(uri)
            .header(header::ACCEPT, outgoing.accept)
            .header(header::ACCEPT_LANGUAGE, "it-IT,it;q=0.9,en;q=0.5")
            .header(header::USER_AGENT, "anteroom-bench surge");
        if let Some(cookies) = jar.header() {
            builder = builder.header(header::COOKIE, cookies);
        }
        for (name, value) in outgoing.headers {
            builder = builder.header(name, value);
        }
        let body = match outgoing.body {
            Some((content_type, body)) => {
                builder = builder.header(header::CONTENT_TYPE, content_type);
                body
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|_| Failure::Connection)?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|_| Failure::Connection)?;
        let (parts, body) = response.into_parts();
        jar.store(&parts.headers);
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| Failure::Connection)?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// One visitor's cookies: name and value, as a browser would send them
/// back to the one site it talks to.
#[derive(Debug, Default)]
pub struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    /// The `Cookie` header to send, if there is anything to send.
    pub fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let line = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&line).ok()
    }

    /// Keeps what the answer's `Set-Cookie` headers set, and forgets what
    /// they expire.
    pub fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Ok(cookie) = cookie::Cookie::parse(text) else {
                continue;
            };
            let expired = cookie
                .max_age()
                .is_some_and(|age| age <= cookie::time::Duration::ZERO)
                || cookie.value().is_empty();
            self.cookies.retain(|(name, _)| name != cookie.name());
            if !expired {
                self.cookies
                    .push((cookie.name().to_owned(), cookie.value().to_owned()));
            }
        }
    }

    /// The value of the cookie called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(cookie, _)| cookie == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether any cookie's name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.cookies
            .iter()
            .any(|(name, _)| name.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_keeps_sets_and_forgets_expired_cookies() {
        let mut jar = Jar::default();
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("anteroom_ticket_v=abc; Path=/; HttpOnly; SameSite=Lax"),
        );
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("site=1; Path=/"),
        );
        jar.store(&headers);
        assert_eq!(jar.get("anteroom_ticket_v"), Some("abc"));
        assert_eq!(
            jar.header().unwrap(),
            HeaderValue::from_static("anteroom_ticket_v=abc; site=1")
        );
        let mut cleared = HeaderMap::new();
        cleared.append(
            header::SET_COOKIE,
            HeaderValue::from_static("anteroom_ticket_v=; Path=/; Max-Age=0"),
        );
        cleared.append(
            header::SET_COOKIE,
            HeaderValue::from_static("site=2; Path=/"),
        );
        jar.store(&cleared);
        assert_eq!(jar.get("anteroom_ticket_v"), None);
        assert_eq!(jar.header().unwrap(), HeaderValue::from_static("site=2"));
        assert!(jar.has_prefix("si"));
    }
}
