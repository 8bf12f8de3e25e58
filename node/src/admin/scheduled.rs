//! `/api/v1/scheduled`: the scheduled messages (ActiveMQ's scheduler jobs).
//!
//! - `GET /scheduled[?limit=N]` → [`ScheduledList`], next to fire first (1000 unless `limit`
//!   says otherwise; `truncated` when there are more).
//! - `DELETE /scheduled/{id}` → [`UnscheduleResponse`]: the job never fires again; 404 for an
//!   unknown id.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use mq_shared::api::{ScheduledList, UnscheduleResponse, codes};
use serde::Deserialize;

use super::{AdminError, ApiResult, AppState, Name, serving};

/// Routes of the scheduler endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/scheduled", get(list))
        .route("/scheduled/{id}", delete(remove))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ScheduledList> {
    let bad = |m: String| AdminError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, m);
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let limit = match q.limit {
        None => mq_shared::defaults::SCHEDULED_LIST_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| bad(format!("limit '{l}' is not a whole number")))?,
    };
    let s = serving(&state)?;
    let (scheduled, truncated) = s.core.scheduled(limit).await.map_err(|e| {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            e.to_string(),
        )
    })?;
    Ok(Json(ScheduledList {
        scheduled,
        truncated,
    }))
}

async fn remove(State(state): State<AppState>, Name(id): Name) -> ApiResult<UnscheduleResponse> {
    let s = serving(&state)?;
    match s.core.unschedule(&id).await {
        Ok(true) => Ok(Json(UnscheduleResponse { id })),
        Ok(false) => Err(AdminError::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("no scheduled message with id '{id}'"),
        )),
        Err(e) => Err(AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            e.to_string(),
        )),
    }
}
