//! The admin API over HTTP: [`Admin`] (a node's base URL and token) and the free functions
//! [`http`], [`get_json`], [`post_json`] and [`delete_json`] for requests a test spells out.
//! A request that fails at the transport level (nothing listening) panics; HTTP errors are
//! answers ([`HttpReply`]) for the test to check.

use std::panic::Location;
use std::time::Duration;

use mq_shared::api::{BrokerInfo, QueueStats, Role};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An HTTP answer: status and raw body.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl HttpReply {
    /// The body parsed as `T`; panics with the body when it does not parse.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match serde_json::from_str(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "HTTP {} body is not the expected JSON ({e}): {}",
                self.status, self.body
            ),
        }
    }
}

/// Bound on one admin request made by [`http`].
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client for loopback admin APIs: no proxy, each request bounded by `timeout`.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("building an HTTP client")
}

/// One HTTP request; `body` is sent as JSON text as given. Panics if the request fails at the
/// transport level (node not listening).
pub async fn http(
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
    token: Option<&str>,
) -> HttpReply {
    let mut req = http_client(HTTP_TIMEOUT).request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => panic!("{method} {url} failed: {e}"),
    };
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    HttpReply { status, body }
}

/// `GET url`: status and body parsed as `T`.
pub async fn get_json<T: DeserializeOwned>(url: &str, token: Option<&str>) -> (u16, T) {
    let r = http(reqwest::Method::GET, url, None, token).await;
    (r.status, r.json())
}

/// `POST url` with `body` as JSON: status and answer parsed as `T`.
pub async fn post_json<T: DeserializeOwned>(
    url: &str,
    body: &impl Serialize,
    token: Option<&str>,
) -> (u16, T) {
    let text = serde_json::to_string(body).expect("serialising a request body");
    let r = http(reqwest::Method::POST, url, Some(text), token).await;
    (r.status, r.json())
}

/// `DELETE url`: status and answer parsed as `T`.
pub async fn delete_json<T: DeserializeOwned>(url: &str, token: Option<&str>) -> (u16, T) {
    let r = http(reqwest::Method::DELETE, url, None, token).await;
    (r.status, r.json())
}

/// A node's admin API: base URL and bearer token.
#[derive(Debug, Clone)]
pub struct Admin {
    /// `http://HOST:PORT`.
    pub base: String,
    /// Token sent as `Authorization: Bearer`.
    pub token: Option<String>,
}

impl Admin {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `METHOD path` with a raw body (`None`: no body), with the node's token.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> HttpReply {
        let url = self.url(path);
        let body = body.map(str::to_owned);
        http(method, &url, body, self.token.as_deref()).await
    }

    /// `GET path` (e.g. `/api/v1/queues`).
    pub async fn get(&self, path: &str) -> HttpReply {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a raw body (`None`: no body).
    pub async fn post(&self, path: &str, body: Option<&str>) -> HttpReply {
        self.request(reqwest::Method::POST, path, body).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> HttpReply {
        self.request(reqwest::Method::DELETE, path, None).await
    }

    /// `GET path` that must answer 200, parsed as `T`.
    #[track_caller]
    pub fn get_ok<T: DeserializeOwned>(&self, path: &str) -> impl Future<Output = T> {
        let caller = Location::caller();
        async move {
            let r = self.get(path).await;
            assert_eq!(r.status, 200, "GET {path} at {caller}: {}", r.body);
            r.json()
        }
    }

    /// Statistics of queue `name`, `None` when the node does not know it (404).
    pub async fn queue(&self, name: &str) -> Option<QueueStats> {
        let r = self.get(&format!("/api/v1/queues/{name}")).await;
        match r.status {
            200 => Some(r.json()),
            404 => None,
            s => panic!("GET /api/v1/queues/{name}: HTTP {s}: {}", r.body),
        }
    }

    /// Depth of queue `name` (0 when it does not exist).
    pub async fn depth(&self, name: &str) -> u64 {
        self.queue(name).await.map(|q| q.depth).unwrap_or(0)
    }

    /// The node's role according to `GET /api/v1/broker`.
    pub async fn role(&self) -> Role {
        let b: BrokerInfo = self.get_ok("/api/v1/broker").await;
        b.role
    }
}
