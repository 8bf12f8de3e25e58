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

use std::sync::LazyLock;

use axum::Router;
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mq_shared::console;

use super::AppState;

/// The page: the head both consoles share, then this body.
static INDEX_HTML: LazyLock<String> = LazyLock::new(|| {
    console::page(
        "mq console",
        "console.css",
        "console.js",
        include_str!("assets/body.html"),
    )
});
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

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
            get(|| async { asset(&INDEX_HTML, console::HTML) }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(CONSOLE_JS, console::JAVASCRIPT) }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, console::CSS) }),
        )
        .merge(api)
}

/// One built-in file, with the headers both consoles give theirs.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    (console::headers(content_type), body).into_response()
}
