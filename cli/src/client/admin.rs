//! A client of one node's HTTP admin API (docs/admin-api.md), typed with `mq_shared::api`.
//!
//! Every failure becomes a [`CliError`] that names the node: unreachable (with a hint on how to
//! start it), token refused, or the node's own `{"error":{"code","message"}}`.

use std::time::Duration;

use mq_shared::api::{
    self, AddNetworkConnector, ApiError, BrokerInfo, BrowseResponse, MoveRequest, MoveResponse,
    NetworkConnectorList, PurgeResponse, QueueList, SendRequest, SendResponse,
};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CliError, Result};

/// Who a client talks to and what to tell the user when that fails.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Node name shown in messages and tables (`node2`, or `HOST:PORT` for `--url`).
    pub label: String,
    /// Admin base URL, `http://HOST:PORT`.
    pub url: String,
    /// Bearer token, if the node requires one.
    pub token: Option<String>,
    /// What to do when the node does not answer.
    pub unreachable_hint: String,
    /// What to do when the node refuses the token.
    pub auth_hint: String,
}

/// How a `POST /api/v1/network-connectors` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorOutcome {
    /// The node created the connector.
    Created,
    /// The node already has a connector of that name (409).
    AlreadyExists,
    /// The node has no network connector endpoint (404): it does not support them.
    Unsupported,
}

/// A client of one node's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    endpoint: Endpoint,
    timeout: Duration,
}

impl AdminClient {
    /// A client for `endpoint` whose calls give up after `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Result<Self> {
        let base = Url::parse(&endpoint.url)
            .ok()
            .filter(|u| u.scheme() == "http" && u.host().is_some() && !u.cannot_be_a_base())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "`{}` is not an admin URL; expected http://HOST:PORT",
                    endpoint.url
                ))
            })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| CliError::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(AdminClient {
            http,
            base,
            endpoint,
            timeout,
        })
    }

    /// The host of the admin URL.
    pub fn host(&self) -> &str {
        self.base.host_str().unwrap_or("127.0.0.1")
    }

    /// The node label used in messages.
    pub fn label(&self) -> &str {
        &self.endpoint.label
    }

    /// `GET /healthz`: `Ok(true)` on 200.
    pub async fn healthz(&self) -> Result<bool> {
        let resp = self
            .send(Method::GET, &["healthz"], None, None::<&()>)
            .await?;
        Ok(resp.status() == StatusCode::OK)
    }

    /// `GET /readyz`: `Ok(true)` on 200 (master or standalone), `Ok(false)` on 503 (slave).
    pub async fn readyz(&self) -> Result<bool> {
        let resp = self
            .send(Method::GET, &["readyz"], None, None::<&()>)
            .await?;
        Ok(resp.status() == StatusCode::OK)
    }

    /// `GET /api/v1/broker`.
    pub async fn broker(&self) -> Result<BrokerInfo> {
        self.json(Method::GET, &["broker"], None, None::<&()>).await
    }

    /// `GET /api/v1/queues`.
    pub async fn queues(&self) -> Result<QueueList> {
        self.json(Method::GET, &["queues"], None, None::<&()>).await
    }

    /// `GET /api/v1/queues/{queue}`.
    pub async fn queue(&self, queue: &str) -> Result<api::QueueStats> {
        self.json(Method::GET, &["queues", queue], None, None::<&()>)
            .await
    }

    /// `POST /api/v1/queues/{queue}/messages`.
    pub async fn send_message(&self, queue: &str, request: &SendRequest) -> Result<SendResponse> {
        self.json(
            Method::POST,
            &["queues", queue, "messages"],
            None,
            Some(request),
        )
        .await
    }

    /// `GET /api/v1/queues/{queue}/messages?limit=N`.
    pub async fn browse(&self, queue: &str, limit: usize) -> Result<BrowseResponse> {
        self.json(
            Method::GET,
            &["queues", queue, "messages"],
            Some(("limit", limit.to_string())),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/queues/{queue}/messages/{id}/move`.
    pub async fn move_message(
        &self,
        queue: &str,
        id: &str,
        request: &MoveRequest,
    ) -> Result<MoveResponse> {
        let path = ["queues", queue, "messages", id, "move"];
        self.json(Method::POST, &path, None, Some(request)).await
    }

    /// `POST /api/v1/queues/{queue}/purge`.
    pub async fn purge(&self, queue: &str) -> Result<PurgeResponse> {
        self.json(Method::POST, &["queues", queue, "purge"], None, None::<&()>)
            .await
    }

    /// `DELETE /api/v1/queues/{queue}`.
    pub async fn delete_queue(&self, queue: &str) -> Result<PurgeResponse> {
        self.json(Method::DELETE, &["queues", queue], None, None::<&()>)
            .await
    }

    /// `GET /api/v1/topics`.
    pub async fn topics(&self) -> Result<api::TopicList> {
        self.json(Method::GET, &["topics"], None, None::<&()>).await
    }

    /// `GET /api/v1/subscriptions`.
    pub async fn subscriptions(&self) -> Result<api::SubscriptionList> {
        self.json(Method::GET, &["subscriptions"], None, None::<&()>)
            .await
    }

    /// `DELETE /api/v1/subscriptions/{client_id}/{name}`.
    pub async fn remove_subscription(
        &self,
        client_id: &str,
        name: &str,
    ) -> Result<api::SubscriptionRemoved> {
        self.json(
            Method::DELETE,
            &["subscriptions", client_id, name],
            None,
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/connections`.
    pub async fn connections(&self) -> Result<api::ConnectionList> {
        self.json(Method::GET, &["connections"], None, None::<&()>)
            .await
    }

    /// `GET /api/v1/network-connectors`; `None` when the node has no such endpoint (404).
    pub async fn connectors(&self) -> Result<Option<NetworkConnectorList>> {
        let path = ["network-connectors"];
        let resp = self
            .send(Method::GET, &self.api(&path), None, None::<&()>)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.decode(&describe(&Method::GET, &path), resp)
            .await
            .map(Some)
    }

    /// `POST /api/v1/network-connectors`. A 404 means the node does not support network
    /// connectors; a 409 that it already has one of that name. A 400 (bad URI) is an error.
    pub async fn add_connector(&self, request: &AddNetworkConnector) -> Result<ConnectorOutcome> {
        let path = ["network-connectors"];
        let resp = self
            .send(Method::POST, &self.api(&path), None, Some(request))
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                Ok(ConnectorOutcome::Unsupported)
            }
            StatusCode::CONFLICT => Ok(ConnectorOutcome::AlreadyExists),
            s if s.is_success() => Ok(ConnectorOutcome::Created),
            _ => Err(self.failure(&describe(&Method::POST, &path), resp).await),
        }
    }

    /// `DELETE /api/v1/network-connectors/{name}`; `Ok(false)` when the node has no such
    /// connector (or no such endpoint).
    pub async fn delete_connector(&self, name: &str) -> Result<bool> {
        let path = ["network-connectors", name];
        let resp = self
            .send(Method::DELETE, &self.api(&path), None, None::<&()>)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self.failure(&describe(&Method::DELETE, &path), resp).await),
        }
    }

    /// `GET /api/v1/scheduled?limit=N`.
    pub async fn scheduled(&self, limit: usize) -> Result<api::ScheduledList> {
        self.json(
            Method::GET,
            &["scheduled"],
            Some(("limit", limit.to_string())),
            None::<&()>,
        )
        .await
    }

    /// `DELETE /api/v1/scheduled/{id}`.
    pub async fn unschedule(&self, id: &str) -> Result<api::UnscheduleResponse> {
        self.json(Method::DELETE, &["scheduled", id], None, None::<&()>)
            .await
    }

    /// `POST /api/v1/ha/stepdown`: the master lets go of the store (202); a node that is not
    /// master answers 409, an error here.
    pub async fn stepdown(&self) -> Result<()> {
        let path = ["ha", "stepdown"];
        let resp = self
            .send(Method::POST, &self.api(&path), None, None::<&()>)
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.failure(&describe(&Method::POST, &path), resp).await)
        }
    }

    /// `["api", "v1", ...path]`.
    fn api<'a>(&self, path: &[&'a str]) -> Vec<&'a str> {
        let mut segments = vec!["api", "v1"];
        segments.extend_from_slice(path);
        segments
    }

    /// A call under `/api/v1` whose 2xx answer is `T`.
    async fn json<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &[&str],
        query: Option<(&str, String)>,
        body: Option<&B>,
    ) -> Result<T> {
        let what = describe(&method, path);
        let resp = self.send(method, &self.api(path), query, body).await?;
        self.decode(&what, resp).await
    }

    /// Decodes a 2xx answer, or turns any other into an error.
    async fn decode<T: DeserializeOwned>(&self, what: &str, resp: reqwest::Response) -> Result<T> {
        if !resp.status().is_success() {
            return Err(self.failure(what, resp).await);
        }
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| CliError::BadAnswer {
            node: self.endpoint.label.clone(),
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    /// The error for a non-2xx answer.
    async fn failure(&self, what: &str, resp: reqwest::Response) -> CliError {
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return CliError::Unauthorized {
                node: self.endpoint.label.clone(),
                url: self.endpoint.url.clone(),
                hint: self.endpoint.auth_hint.clone(),
            };
        }
        let body = resp.bytes().await.unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<ApiError>(&body) {
            Ok(e) => (e.error.code, e.error.message),
            Err(_) => (
                status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_lowercase()
                    .replace(' ', "_"),
                String::from_utf8_lossy(&body).trim().to_string(),
            ),
        };
        let message = if message.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            message
        };
        let hint = if code == api::codes::UNAVAILABLE {
            "; the node is a slave or shutting down: address its group's master".to_string()
        } else if status == StatusCode::NOT_FOUND && code != api::codes::NOT_FOUND {
            "; this mqnode does not have that endpoint: is it the same version as mqctl?"
                .to_string()
        } else {
            String::new()
        };
        CliError::Api {
            node: self.endpoint.label.clone(),
            what: what.to_string(),
            status: status.as_u16(),
            code,
            message,
            hint,
        }
    }

    /// Sends one request; transport failures become [`CliError::Unreachable`].
    async fn send<B: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<(&str, String)>,
        body: Option<&B>,
    ) -> Result<reqwest::Response> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if let Some((key, value)) = query {
            url.query_pairs_mut().append_pair(key, &value);
        }
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.endpoint.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, error: reqwest::Error) -> CliError {
        CliError::Unreachable {
            node: self.endpoint.label.clone(),
            url: self.endpoint.url.clone(),
            reason: reason(&error, self.timeout),
            hint: self.endpoint.unreachable_hint.clone(),
            timed_out: error.is_timeout(),
        }
    }
}

/// `GET /api/v1/queues`, for messages.
fn describe(method: &Method, path: &[&str]) -> String {
    format!("{method} {}/{}", api::BASE_PATH, path.join("/"))
}

/// A short reason for a transport failure: "connection refused", "no answer within 2 s".
fn reason(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    // The innermost cause is the useful one ("Connection refused (os error 111)").
    let mut source: Option<&dyn std::error::Error> = Some(error);
    let mut last = error.to_string();
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    match last.find(" (os error") {
        Some(i) => last[..i].to_lowercase(),
        None => last,
    }
}
