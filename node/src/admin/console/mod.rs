//! The web console at `/console/`: one page (HTML, JavaScript and CSS built into the binary,
//! nothing fetched from anywhere else) over the JSON admin API, and the console's own endpoint,
//! moving a message out of a queue (a dead letter back to its original destination).
//!
//! - `/console/`, `/console/console.js`, `/console/console.css` are served without the admin
//!   token: a browser cannot send a header when it navigates. Every API call the page makes
//!   carries `Authorization: Bearer`, entered once (kept in the tab's `sessionStorage`) or
//!   given as `#token=...` in the URL.
//! - `/console` and `/` redirect to `/console/`.
//! - Responses carry a Content-Security-Policy that lets the page load and call only its own
//!   origin.
//! - `POST /api/v1/queues/{name}/messages/{id}/move` (see [`moves`]) needs the token like the
//!   rest of the API.

mod moves;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::AppState;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// The page may load and call only its own origin; no frames, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes: pages without the token, the move endpoint with it.
pub fn routes(state: AppState) -> Router<AppState> {
    let api = Router::new()
        .route(
            &format!(
                "{}/queues/{{name}}/messages/{{id}}/move",
                mq_shared::api::BASE_PATH
            ),
            post(moves::move_message),
        )
        .route_layer(middleware::from_fn_with_state(state, super::auth));
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/console/") }))
        .route(
            "/console",
            get(|| async { Redirect::temporary("/console/") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
        .merge(api)
}

/// One built-in file, with the headers every console response carries.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}
