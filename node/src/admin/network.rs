//! `/api/v1/network-connectors`: list, add and remove network connectors at run time.
//!
//! - `GET /network-connectors` → [`NetworkConnectorList`] (each connector's URI, options and
//!   per-peer state: `connected`, `connecting`, `backoff`, attempts, next retry, forwarded).
//! - `POST /network-connectors` with [`AddNetworkConnector`] → 201 and the
//!   [`NetworkConnectorInfo`]; 400 `bad_uri` names the offending part of the URI, 400
//!   `bad_request` for an unusable name or an `ssl://` peer on a node without `--tls-ca`, 409
//!   `conflict` for a name in use.
//! - `DELETE /network-connectors/{name}` → 200 `{"status":"removed"}`; 404 for an unknown name.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use mq_shared::api::{
    AddNetworkConnector, NetworkConnectorInfo, NetworkConnectorList, StatusResponse, codes,
};

use super::{AdminError, ApiResult, AppState, Name};
use crate::network::NetworkError;

/// Routes of the network-connector endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/network-connectors", get(list).post(add))
        .route("/network-connectors/{name}", delete(remove))
}

fn to_admin(e: NetworkError) -> AdminError {
    let (status, code) = match &e {
        NetworkError::BadUri(_) => (StatusCode::BAD_REQUEST, codes::BAD_URI),
        NetworkError::BadName(_) | NetworkError::NameMismatch { .. } | NetworkError::NeedsCa => {
            (StatusCode::BAD_REQUEST, codes::BAD_REQUEST)
        }
        NetworkError::Duplicate(_) => (StatusCode::CONFLICT, codes::CONFLICT),
        NetworkError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
    };
    AdminError::new(status, code, e.to_string())
}

async fn list(State(state): State<AppState>) -> ApiResult<NetworkConnectorList> {
    Ok(Json(state.network.list()))
}

async fn add(
    State(state): State<AppState>,
    body: Result<Json<AddNetworkConnector>, JsonRejection>,
) -> Result<(StatusCode, Json<NetworkConnectorInfo>), AdminError> {
    let Json(req) = body.map_err(AdminError::bad_json)?;
    // Only the master changes connectors: they are kept in the store directory it owns.
    if state.serving().is_none() {
        return Err(AdminError::unavailable());
    }
    let info = state.network.add(req.name, &req.uri).map_err(to_admin)?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn remove(State(state): State<AppState>, Name(name): Name) -> ApiResult<StatusResponse> {
    if state.serving().is_none() {
        return Err(AdminError::unavailable());
    }
    state.network.remove(&name).await.map_err(to_admin)?;
    Ok(Json(StatusResponse {
        status: "removed".into(),
    }))
}
