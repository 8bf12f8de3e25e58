//! The HTTP admin API (axum): JSON under `/api/v1`, health at `/healthz` and `/readyz`,
//! Prometheus text at `/metrics`. Shapes are the types of `mq_shared::api`.
//!
//! Every route but the two health checks (and the console's page and assets) needs
//! `Authorization: Bearer TOKEN`: a node always has a token (`--admin-token-file`, or one it
//! generates into `DATA/admin.token`, mode 0600, named in its ready line), compared in
//! constant time. Against DNS rebinding and cross-site requests, every request whose `Host`
//! is not this listener's address, `localhost` or an `--admin-allowed-hosts` entry is refused,
//! and so is every request whose `Origin` is not the listener's own. Errors are
//! `{"error":{"code","message"}}` with stable codes.

mod console;
mod https;
mod lease;
mod metrics;
mod network;
mod scheduled;
mod subscriptions;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use mq_shared::api::{
    ApiError, BrokerInfo, BrowseResponse, BrowsedMessage, ConnectionList, ErrorBody, PurgeResponse,
    QueueList, SendRequest, SendResponse, StatusResponse, StoreStats, TopicList, codes,
};
use serde::Deserialize;
use tokio::net::TcpListener;

use mq_shared::destination::Destination;

use crate::broker::{Core, DeleteError, Message, now_ms};
use crate::store::StoreError;
use crate::{NodeState, Serving};

/// An admin API error: status, stable code, sentence.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }
    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, what)
    }
    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::UNAVAILABLE,
            "this node is a slave (or stopping): ask the master of its group",
        )
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            e.to_string(),
        )
    }
    fn bad_json(e: JsonRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_JSON, e.body_text())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ApiError {
                error: ErrorBody {
                    code: self.code.to_string(),
                    message: self.message,
                },
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, AdminError>;

/// A `{name}` path segment; a malformed one (e.g. invalid UTF-8) is a JSON 400, not text.
pub struct Name(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Name {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(s)) => Ok(Name(s)),
            Err(e) => Err(AdminError::new(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                e.body_text(),
            )),
        }
    }
}
type AppState = Arc<NodeState>;

/// Serves the admin API on `listener` until the node shuts down.
pub async fn serve(listener: TcpListener, state: Arc<NodeState>) {
    let shutdown = state.shutdown.clone();
    let tls = state.config.admin_tls.clone();
    let app = router(state);
    let r = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await })
                .await
        }
        Some(files) => {
            let acceptor = match mq_shared::tls::server_config(&files, false) {
                Ok(cfg) => mq_shared::tls::TlsAcceptor::from(cfg),
                Err(e) => {
                    tracing::error!(error = %e, "admin API cannot serve HTTPS");
                    return;
                }
            };
            match https::TlsListener::new(listener, acceptor, shutdown.clone()) {
                Ok(l) => {
                    axum::serve(l, app)
                        .with_graceful_shutdown(async move { shutdown.cancelled().await })
                        .await
                }
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = r {
        tracing::error!(error = %e, "admin API stopped");
    }
}

/// The admin router (exposed for tests).
pub fn router(state: Arc<NodeState>) -> Router {
    let lease = lease::LeaseView::new(&state).map(Arc::new);
    let api = Router::new()
        .route("/broker", get(broker_info).layer(Extension(lease)))
        .route("/queues", get(list_queues))
        .route("/queues/{name}", get(get_queue).delete(delete_queue))
        .route("/queues/{name}/messages", post(send_message).get(browse))
        .route("/queues/{name}/purge", post(purge_queue))
        .route("/topics", get(list_topics))
        .route("/connections", get(list_connections))
        .route("/ha/stepdown", post(stepdown))
        .route("/security/reload", post(reload_security))
        .route("/shutdown", post(shutdown))
        .merge(network::routes())
        .merge(scheduled::routes())
        .merge(subscriptions::routes());
    let protected = Router::new()
        .nest(mq_shared::api::BASE_PATH, api)
        .route("/metrics", get(metrics::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .merge(console::routes(state.clone()))
        .fallback(|| async { AdminError::not_found("no such endpoint; see /api/v1") })
        .method_not_allowed_fallback(|| async {
            AdminError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::BAD_REQUEST,
                "this endpoint does not take that method; see docs/admin-api.md",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), same_origin))
        .with_state(state)
}

/// Refuses requests for a `Host` this listener does not answer to (DNS rebinding) and requests
/// from another origin (a web page posting to the admin API).
async fn same_origin(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(h) = host
        && !allowed_host(&state, h)
    {
        return AdminError::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            format!("Host '{h}' is not this admin listener's address; add it with --admin-allowed-hosts if it should be"),
        )
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = host.map(|h| format!("{}://{h}", state.admin_scheme()));
        if origin.to_str().ok() != own.as_deref() {
            return AdminError::new(
                StatusCode::FORBIDDEN,
                codes::FORBIDDEN,
                "requests from another origin are refused",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Whether the admin API answers to `Host: h` (a port, if any, is ignored): the listener's own
/// address (any IP literal when it listens on all addresses: an address cannot be rebound),
/// `localhost`, or an allowed name.
fn allowed_host(state: &NodeState, h: &str) -> bool {
    let name = match h.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => h,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.eq_ignore_ascii_case("localhost")
        || state
            .config
            .admin_allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(h))
    {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            let bound = state.config.admin.ip();
            ip == bound || bound.is_unspecified() || (ip.is_loopback() && bound.is_loopback())
        }
        Err(_) => false,
    }
}

async fn auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.config.admin_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| crate::security::secret::token_eq(g, token)) {
            return AdminError::new(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "missing or wrong bearer token: send Authorization: Bearer TOKEN from the node's --admin-token-file",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn healthz() -> Json<StatusResponse> {
    Json(StatusResponse {
        status: "ok".into(),
    })
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.serving() {
        Some(_) => Json(StatusResponse {
            status: "ready".into(),
        })
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusResponse {
                status: state.role().to_string(),
            }),
        )
            .into_response(),
    }
}

fn serving(state: &NodeState) -> Result<Serving, AdminError> {
    state.serving().ok_or_else(AdminError::unavailable)
}

async fn broker_info(
    State(state): State<AppState>,
    Extension(lease): Extension<Option<Arc<lease::LeaseView>>>,
) -> ApiResult<BrokerInfo> {
    let s = state.serving();
    let store = match &s {
        Some(sv) => {
            let (messages, bytes) = sv.core.totals();
            StoreStats {
                messages,
                bytes,
                file_bytes: sv.core.store().map(|s| s.file_bytes()).unwrap_or(0),
                commits: sv.core.store().map(|s| s.commits()).unwrap_or(0),
            }
        }
        None => StoreStats::default(),
    };
    let usage = s
        .as_ref()
        .map(|sv| sv.core.usage().report())
        .unwrap_or_default();
    Ok(Json(BrokerInfo {
        name: state.config.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        role: state.role(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
        transports: s.map(|s| s.transports).unwrap_or_default(),
        admin: state.admin_url.clone(),
        data_dir: state.config.data_dir.display().to_string(),
        persistent: state.config.persistent,
        pid: std::process::id(),
        store,
        usage,
        replication: state.replication.info(),
        lease: match lease {
            Some(view) => view.read().await,
            None => None,
        },
    }))
}

async fn list_queues(State(state): State<AppState>) -> ApiResult<QueueList> {
    let s = serving(&state)?;
    Ok(Json(QueueList {
        queues: s.core.queue_stats(),
    }))
}

async fn get_queue(
    State(state): State<AppState>,
    Name(name): Name,
) -> ApiResult<mq_shared::api::QueueStats> {
    let s = serving(&state)?;
    let q = s
        .core
        .find_queue(&name)
        .ok_or_else(|| AdminError::not_found(format!("no queue named '{name}'")))?;
    Ok(Json(q.stats()))
}

fn check_queue_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() || name.len() > 1024 || name.contains('/') {
        return Err(AdminError::new(
            StatusCode::BAD_REQUEST,
            codes::BAD_REQUEST,
            format!("'{name}' is not a queue name (no '/', 1 to 1024 bytes)"),
        ));
    }
    Ok(())
}

async fn send_message(
    State(state): State<AppState>,
    Name(name): Name,
    body: Result<Json<SendRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<SendResponse>), AdminError> {
    let Json(req) = body.map_err(AdminError::bad_json)?;
    check_queue_name(&name)?;
    let s = serving(&state)?;
    let persistent = req.persistent.unwrap_or(true);
    let id = s.core.new_message_id();
    let mut headers: Vec<(String, String)> = req
        .headers
        .into_iter()
        .filter(|(k, _)| k != "persistent")
        .collect();
    if persistent {
        headers.push(("persistent".into(), "true".into()));
    }
    let msg = Message::from_headers(
        Arc::from(id.as_str()),
        Destination::queue(&name),
        headers,
        Bytes::from(req.body),
        now_ms(),
    )
    .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, e))?;
    publish_confirmed(&s.core, msg)
        .await
        .map_err(|e| not_stored("", e))?;
    Ok((
        StatusCode::CREATED,
        Json(SendResponse {
            message_id: id,
            queue: name,
            persistent: persistent && s.core.store().is_some(),
        }),
    ))
}

/// Publishes `msg` as the admin API does (from no connection, unordered, no dedup) and waits
/// until it is in its destination (stored first when persistent): the store's error, or
/// `None` when the store stopped before confirming.
async fn publish_confirmed(core: &Core, msg: Message) -> Result<(), Option<StoreError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    core.publish(
        msg,
        None,
        false,
        false,
        Some(Box::new(move |r| {
            let _ = tx.send(r);
        })),
    );
    match rx.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

/// The 500 of a message [`publish_confirmed`] did not get stored (`place`: " in DEST", or
/// empty).
fn not_stored(place: &str, e: Option<StoreError>) -> AdminError {
    AdminError::internal(match e {
        Some(e) => format!("message not stored{place}: {e}"),
        None => "the store stopped before confirming".to_string(),
    })
}

#[derive(Deserialize)]
struct BrowseQuery {
    limit: Option<String>,
}

async fn browse(
    State(state): State<AppState>,
    Name(name): Name,
    query: Result<Query<BrowseQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<BrowseResponse> {
    let Query(q) = query
        .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, e.body_text()))?;
    let limit = match q.limit {
        None => 100,
        Some(l) => l.parse::<usize>().map_err(|_| {
            AdminError::new(
                StatusCode::BAD_REQUEST,
                codes::BAD_REQUEST,
                format!("limit '{l}' is not a whole number"),
            )
        })?,
    };
    let s = serving(&state)?;
    let queue = s
        .core
        .find_queue(&name)
        .ok_or_else(|| AdminError::not_found(format!("no queue named '{name}'")))?;
    let messages = s
        .core
        .browse(&queue.name, limit)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(e, inflight)| {
            let mut headers: std::collections::BTreeMap<String, String> = Default::default();
            for (k, v) in &e.msg.headers {
                headers.entry(k.clone()).or_insert_with(|| v.clone());
            }
            headers.insert("destination".into(), e.msg.destination.to_string());
            headers.insert("message-id".into(), e.msg.id.to_string());
            BrowsedMessage {
                message_id: e.msg.id.to_string(),
                headers,
                body: String::from_utf8_lossy(&e.msg.body).into_owned(),
                size: e.msg.body.len() as u64,
                persistent: e.msg.persistent,
                redeliveries: e.redeliveries,
                inflight,
            }
        })
        .collect();
    Ok(Json(BrowseResponse {
        queue: name,
        messages,
    }))
}

async fn purge_queue(State(state): State<AppState>, Name(name): Name) -> ApiResult<PurgeResponse> {
    let s = serving(&state)?;
    match s.core.purge(&name).await {
        Ok(Some(n)) => Ok(Json(PurgeResponse {
            queue: name,
            removed: n,
        })),
        Ok(None) => Err(AdminError::not_found(format!("no queue named '{name}'"))),
        Err(e) => Err(AdminError::internal(e)),
    }
}

async fn delete_queue(State(state): State<AppState>, Name(name): Name) -> ApiResult<PurgeResponse> {
    let s = serving(&state)?;
    match s.core.delete_queue(&name).await {
        Ok(Some(n)) => Ok(Json(PurgeResponse {
            queue: name,
            removed: n,
        })),
        Ok(None) => Err(AdminError::not_found(format!("no queue named '{name}'"))),
        Err(DeleteError::HasConsumers(n)) => Err(AdminError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            format!("queue '{name}' has {n} consumer(s); stop them before deleting it"),
        )),
        Err(DeleteError::Store(e)) => Err(AdminError::internal(e)),
    }
}

async fn list_topics(State(state): State<AppState>) -> ApiResult<TopicList> {
    let s = serving(&state)?;
    Ok(Json(TopicList {
        topics: s.core.topic_stats(),
    }))
}

async fn list_connections(State(state): State<AppState>) -> ApiResult<ConnectionList> {
    let s = serving(&state)?;
    Ok(Json(ConnectionList {
        connections: s.core.connections(),
    }))
}

async fn stepdown(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<StatusResponse>), AdminError> {
    if state.request_stepdown() {
        Ok((
            StatusCode::ACCEPTED,
            Json(StatusResponse {
                status: "stepping_down".into(),
            }),
        ))
    } else {
        Err(AdminError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            format!(
                "this node is {}, not master: only a master can step down",
                state.role()
            ),
        ))
    }
}

async fn reload_security(State(state): State<AppState>) -> ApiResult<StatusResponse> {
    match state.config.security.reload() {
        Ok(()) => {
            tracing::info!("security file reloaded");
            Ok(Json(StatusResponse {
                status: "reloaded".into(),
            }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "security file not reloaded; the old rules stay");
            Err(AdminError::new(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                e.to_string(),
            ))
        }
    }
}

async fn shutdown(State(state): State<AppState>) -> (StatusCode, Json<StatusResponse>) {
    state.shutdown.cancel();
    (
        StatusCode::ACCEPTED,
        Json(StatusResponse {
            status: "shutting_down".into(),
        }),
    )
}
