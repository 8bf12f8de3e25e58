//! `/api/v1/network-connectors`: list, add and remove network connectors at run time.

use axum::Router;

use super::AppState;

/// Routes of the network-connector endpoints.
pub fn routes() -> Router<AppState> {
    Router::new()
}
