//! `pingan-node serve`: the entry page (填报) an office opens in a browser, served by the node
//! itself, so it works with no internet and with the hub unreachable. The page lists the
//! office's forms and periods and where each stands, lets a clerk fill a form in with the
//! previous figures beside each field, checks it on every change with the validator the hub
//! uses (through [`api`], no second copy of the rules in the page), keeps drafts in the node's
//! store, and submits through the outbox, which a background task delivers.
//!
//! - [`entry`]: the page's fields to values, and the check.
//! - [`api`]: the page's JSON API.
//! - [`excel`]: the form as an .xlsx or CSV template, and reading a filled one back.
//! - [`receipt`]: a printable 回执 of a delivered report.
//! - [`auth`], [`tls`]: passwords and HTTPS when the page is served beyond loopback.

pub mod api;
pub mod auth;
pub mod entry;
pub mod excel;
pub mod receipt;
pub mod tls;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use pingan_outbox::{CancellationToken, Outbox};
use tokio::sync::Notify;

use crate::office::Office;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Largest upload (a filled template): a form is a few KB.
pub const MAX_UPLOAD: usize = 1024 * 1024;

/// What the page's handlers share.
#[derive(Debug, Clone)]
pub struct NodeWeb {
    pub office: Arc<Office>,
    /// The page's own connection to the outbox (the deliverer has another).
    pub outbox: Arc<Mutex<Outbox>>,
    /// Wakes the deliverer when a report is written.
    pub send_now: Arc<Notify>,
    /// The node's name for itself, kept with every report (`--reporter`).
    pub reporter: String,
    /// The hub, as the page says where reports go.
    pub hub: String,
    /// Sessions, when the page asks for a password (served beyond loopback).
    pub auth: Option<Arc<auth::PageAuth>>,
    /// Asks the hub where a delivered report's review stands (审核: 退回 with its reason).
    pub review: Option<
        pingan_domain::pb::review_service_client::ReviewServiceClient<tonic::transport::Channel>,
    >,
}

/// An error as the page shows it: a status and a Chinese message.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn bad(message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<pingan_outbox::OutboxError> for PageError {
    fn from(e: pingan_outbox::OutboxError) -> PageError {
        tracing::error!(error = %e, "outbox");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("本机发件箱出错：{e}"),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page's routes.
pub fn router(web: NodeWeb) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/office", get(api::office))
        .route("/api/form", get(api::form))
        .route("/api/check", post(api::check))
        .route("/api/draft", post(api::save_draft))
        .route("/api/submit", post(api::submit))
        .route("/api/template", get(excel::template))
        .route(
            "/api/upload",
            post(excel::upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/receipt/{id}", get(receipt::page))
        .route("/api/sign-in", post(auth::sign_in))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            auth::require_session,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web)
}

/// Same-origin only: no frames, no foreign scripts, no content sniffing.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// How long a TLS handshake and a request's headers may take.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the page on `listener` until `shutdown` is cancelled: HTTPS with `acceptor`, plain
/// HTTP without (loopback).
pub async fn serve(
    listener: tokio::net::TcpListener,
    web: NodeWeb,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = router(web);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "page accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone().layer(axum::Extension(auth::Peer(peer.ip())));
        let (acceptor, stop) = (acceptor.clone(), shutdown.clone());
        connections.spawn(async move {
            match acceptor {
                Some(a) => match tokio::time::timeout(HANDSHAKE, a.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(stream, app, stop).await,
                    _ => tracing::debug!(%peer, "page TLS handshake failed"),
                },
                None => connection(tcp, app, stop).await,
            }
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

async fn connection<S>(io: S, app: Router, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let served = tokio::select! {
        served = conn.as_mut() => served,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "page connection ended with an error");
    }
}
