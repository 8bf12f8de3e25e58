//! `/api/v1/subscriptions`: the node's durable topic subscriptions.
//!
//! - `GET /subscriptions` → [`SubscriptionList`] (client id, name, topic, selector, whether a
//!   connection consumes it, its backlog and counters).
//! - `DELETE /subscriptions/{client_id}/{name}` → [`SubscriptionRemoved`] (the subscription and
//!   its backlog are gone); 404 when there is none, 409 `conflict` while a connection
//!   consumes it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use mq_shared::api::{SubscriptionList, SubscriptionRemoved, codes};

use super::{AdminError, ApiResult, AppState, serving};
use crate::broker::durable::RemoveError;

/// Routes of the subscription endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscriptions", get(list))
        .route("/subscriptions/{client_id}/{name}", delete(remove))
}

async fn list(State(state): State<AppState>) -> ApiResult<SubscriptionList> {
    let s = serving(&state)?;
    Ok(Json(SubscriptionList {
        subscriptions: s.core.durable_stats(),
    }))
}

async fn remove(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> ApiResult<SubscriptionRemoved> {
    let Path((client_id, name)) = path
        .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, e.body_text()))?;
    let s = serving(&state)?;
    match s.core.remove_durable(&client_id, &name) {
        Ok(Some((dropped, ops))) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.core.persist(
                ops,
                Some(Box::new(move |r| {
                    let _ = tx.send(r);
                })),
            );
            rx.await
                .unwrap_or(Err(crate::store::StoreError::Closed))
                .map_err(AdminError::internal)?;
            Ok(Json(SubscriptionRemoved {
                client_id,
                name,
                dropped,
            }))
        }
        Ok(None) => Err(AdminError::not_found(format!(
            "no durable subscription '{name}' of client-id '{client_id}'"
        ))),
        Err(e @ RemoveError::Active(..)) => Err(AdminError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            e.to_string(),
        )),
    }
}
