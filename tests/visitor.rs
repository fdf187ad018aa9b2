//! The visitor: a browser-like HTTP client with its own cookie jar, and
//! helpers for reading what a response says (headers, the cookies it sets,
//! whether it came from the origin).

use std::time::Duration;

/// A client without a cookie jar that follows no redirects: it sends exactly
/// the cookies a test gives it.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A response header as text.
pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// Every `Set-Cookie` line of a response for the cookie called `name`.
pub fn set_cookies(response: &reqwest::Response, name: &str) -> Vec<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter(|cookie| cookie.starts_with(prefix.as_str()))
        .map(str::to_owned)
        .collect()
}

/// The value a response sets for cookie `name` (deletions ignored).
pub fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response, name).iter().find_map(|cookie| {
        let value = cookie.split(';').next()?.split_once('=')?.1;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// A browser-like visitor. Clones share the cookie jar.
#[derive(Clone)]
pub struct Visitor {
    pub client: reqwest::Client,
    base: String,
}

impl Visitor {
    /// A new visitor of the site at `base` (e.g. `http://127.0.0.1:8080`),
    /// with an empty cookie jar, following no redirects.
    pub fn new(base: &str) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The same visitor (same cookies) talking to another gateway.
    pub fn with_base(&self, base: &str) -> Visitor {
        Visitor {
            client: self.client.clone(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The absolute URL of `path` on this visitor's gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// Leaves `room` (`POST /_anteroom/leave`), freeing the slot.
    pub async fn leave(&self, room: &str) {
        let response = self.post(&format!("/_anteroom/leave?room={room}")).await;
        assert_eq!(response.status(), 200, "leaving {room}");
    }

    pub async fn get_json(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .send()
            .await
            .expect("request")
    }

    /// `GET /_anteroom/status?room=NAME` as JSON.
    pub async fn status(&self, room: &str) -> serde_json::Value {
        let response = self.get(&format!("/_anteroom/status?room={room}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("status JSON")
    }

    /// The visitor's place in `room`'s line (1 = next), if waiting.
    pub async fn position(&self, room: &str) -> Option<u64> {
        self.status(room).await["position"].as_u64()
    }

    /// Polls status until the visitor is admitted (or panics after `limit`).
    pub async fn wait_until_admitted(&self, room: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.status(room).await;
            if status["state"] == "admitted" {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not admitted within {limit:?}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Is this response the origin's (rather than the gateway's waiting page)?
/// The origin's `/echo` answers JSON with a `method` field.
pub async fn reached_origin(response: reqwest::Response) -> bool {
    if response.status() != 200 {
        return false;
    }
    match response.json::<serde_json::Value>().await {
        Ok(body) => body.get("method").is_some(),
        Err(_) => false,
    }
}
