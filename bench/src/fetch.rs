//! A small HTTP client for setting up and checking a run: taking places,
//! reading figures such as the origin's `/_stats`. (The load itself comes
//! from wrk or the surge's own client.)

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The value a `Set-Cookie` of this answer gives cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|line| line.split(';').next()?.split_once('='))
            .find(|(key, value)| key.trim() == name && !value.is_empty())
            .map(|(_, value)| value.to_owned())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|error| format!("not JSON ({error}): {}", self.text()))
    }
}

pub struct Client {
    inner: HyperClient<HttpConnector, Empty<Bytes>>,
}

impl Client {
    pub fn new() -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET url` with the given request headers.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        let mut request = Request::get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Empty::new())
            .map_err(|error| format!("GET {url}: {error}"))?;
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|error| format!("GET {url}: {error}"))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|error| format!("GET {url}: body: {error}"))?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| format!("GET {url}: no answer within 10 s"))?
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}
