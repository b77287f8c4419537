//! The page, compiled into the binary: one HTML file, one script, one style sheet, and the
//! charting library (Apache ECharts, `assets/vendor/`, Apache-2.0, its licence beside it).
//! Nothing is fetched from elsewhere, so the dashboard works on a network without internet
//! access.

use axum::{
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
};

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
const ECHARTS: &str = include_str!("assets/vendor/echarts-6.1.0.min.js");

fn with_type(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // a new hub binary brings a new page; never serve a stale one after an upgrade
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /`.
pub(super) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /app.js`.
pub(super) async fn script() -> Response {
    with_type(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /app.css`.
pub(super) async fn style() -> Response {
    with_type(STYLE, "text/css; charset=utf-8")
}

/// `GET /vendor/echarts-6.1.0.min.js`: versioned in its path, so cached for good.
pub(super) async fn echarts() -> Response {
    let mut r = ECHARTS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}
