//! `POST /api/v1/queues/{name}/messages/{id}/move`: takes one waiting message out of a queue
//! and sends it to another destination, by default the one in its `original-destination`
//! header, which every dead-lettered message carries (ActiveMQ's "retry" of a DLQ message).
//!
//! - Body [`MoveRequest`] `{"to": "/queue/NAME"}`, optional; an empty body is `{}`.
//! - 200 [`MoveResponse`] `{"message_id", "from", "to"}` once the message is in its new
//!   destination (stored first when persistent) and gone from the old one.
//! - 404 for an unknown queue or message id; 409 when the message is in flight to a consumer
//!   of the queue; 400 without a destination (no `to`, no `original-destination`), with a
//!   malformed one, or with the queue itself.
//! - The message keeps its id, headers and body; `original-destination` is dropped, and its
//!   delivery count starts again. The new copy is committed before the old one is deleted: a
//!   crash in between leaves the message in both places, never in neither.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mq_shared::api::{MoveRequest, MoveResponse, codes};
use mq_shared::destination::Destination;

use super::super::{AdminError, ApiResult, AppState, not_stored, publish_confirmed, serving};
use crate::broker::queue::Effects;

/// The header a dead-lettered message keeps its first destination in.
const ORIGINAL_DESTINATION: &str = "original-destination";

pub(super) async fn move_message(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    body: Bytes,
) -> ApiResult<MoveResponse> {
    let Path((name, id)) = path.map_err(|e| bad_request(e.body_text()))?;
    let req: MoveRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MoveRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            AdminError::new(
                StatusCode::BAD_REQUEST,
                codes::BAD_JSON,
                format!("the body is not a move request ({{\"to\": \"/queue/NAME\"}}): {e}"),
            )
        })?
    };
    let s = serving(&state)?;
    let queue = s
        .core
        .find_queue(&name)
        .ok_or_else(|| AdminError::not_found(format!("no queue named '{name}'")))?;
    let Some(entry) = s.core.take_message(&queue, &id).await else {
        let inflight = queue
            .browse(usize::MAX)
            .iter()
            .any(|(e, inflight)| *inflight && *e.msg.id == *id);
        return Err(if inflight {
            AdminError::new(
                StatusCode::CONFLICT,
                codes::CONFLICT,
                format!(
                    "message '{id}' is in flight to a consumer of '{name}'; move it once it is back"
                ),
            )
        } else {
            AdminError::not_found(format!("no message '{id}' in queue '{name}'"))
        });
    };
    let from = format!("/queue/{name}");
    let target = match target_of(&req, &entry.msg.headers, &from) {
        Ok(t) => t,
        Err(e) => {
            queue.put_back([entry]);
            return Err(e);
        }
    };
    let mut msg = (*entry.msg).clone();
    msg.destination = target.clone();
    msg.headers.retain(|(k, _)| k != ORIGINAL_DESTINATION);
    if let Err(e) = publish_confirmed(&s.core, msg).await {
        // Not sent: it stays where it was.
        queue.put_back([entry]);
        return Err(not_stored(&format!(" in {target}"), e));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    s.core.apply(
        Effects {
            delete: vec![entry],
            dead: Vec::new(),
        },
        Some(Box::new(move |r| {
            let _ = tx.send(r.is_ok());
        })),
    );
    if !matches!(rx.await, Ok(true)) {
        return Err(AdminError::internal(format!(
            "message '{id}' is in {target} now, but its record in '{name}' could not be \
             deleted: it comes back there when the node restarts"
        )));
    }
    tracing::info!(%id, %from, to = %target, "message moved");
    Ok(Json(MoveResponse {
        message_id: id,
        from,
        to: target.to_string(),
    }))
}

/// Where the message goes: `to`, else its `original-destination`; never back to `from`.
fn target_of(
    req: &MoveRequest,
    headers: &[(String, String)],
    from: &str,
) -> Result<Destination, AdminError> {
    let text = match &req.to {
        Some(to) => to.clone(),
        None => headers
            .iter()
            .find(|(k, _)| k == ORIGINAL_DESTINATION)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                bad_request(format!(
                    "the message has no {ORIGINAL_DESTINATION} header; say where it goes with {{\"to\": \"/queue/NAME\"}}"
                ))
            })?,
    };
    let dest = Destination::parse(&text)
        .map_err(|e| bad_request(format!("'{text}' is not a destination: {e}")))?;
    if dest.as_str() == from {
        return Err(bad_request(format!(
            "the message is in {from} already; name another destination"
        )));
    }
    Ok(dest)
}

fn bad_request(message: impl Into<String>) -> AdminError {
    AdminError::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(original: Option<&str>) -> Vec<(String, String)> {
        original
            .map(|o| vec![(ORIGINAL_DESTINATION.to_string(), o.to_string())])
            .unwrap_or_default()
    }

    #[test]
    fn the_target_is_to_else_the_original_destination() {
        let none = MoveRequest::default();
        let to = MoveRequest {
            to: Some("/topic/t".into()),
        };
        let dlq = "/queue/DLQ";
        let t = target_of(&none, &headers(Some("/queue/orders")), dlq).ok();
        assert_eq!(t.map(|d| d.to_string()), Some("/queue/orders".into()));
        let t = target_of(&to, &headers(Some("/queue/orders")), dlq).ok();
        assert_eq!(t.map(|d| d.to_string()), Some("/topic/t".into()));
        assert!(target_of(&none, &headers(None), dlq).is_err());
        assert!(target_of(&none, &headers(Some("/queue/DLQ")), dlq).is_err());
        let bad = MoveRequest {
            to: Some("/nowhere/x".into()),
        };
        assert!(target_of(&bad, &[], dlq).is_err());
    }
}
