//! The leaders' dashboard: HTTPS on its own port (the hub's certificate, no client certificate),
//! password sign-in to a session cookie, JSON for the page, and every table as .xlsx and CSV.
//!
//! - [`session`]: sign-in, sign-out and the session cookie; a user acts as a viewer of its area.
//! - [`api`]: the JSON and download endpoints, each checked by the same [`crate::authz`] rules
//!   as gRPC and answered by the same engine.
//! - [`assets`]: the page itself (HTML, JS, CSS compiled into the binary: no CDN, works offline).

pub mod api;
mod assets;
pub mod session;

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
};

use crate::{state::HubState, tls::ServerTls, users::Users};

/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// What the dashboard's handlers share.
#[derive(Debug, Clone)]
pub struct Web {
    pub hub: HubState,
    pub users: Arc<Mutex<Users>>,
    /// Served over TLS: cookies are marked `Secure`.
    pub secure: bool,
}

/// An error as the page receives it: an HTTP status and a message in JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> ApiError {
        let status = StatusCode::from_u16(crate::error::http_status(s.code()))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, s.message())
    }
}

impl From<crate::error::HubError> for ApiError {
    fn from(e: crate::error::HubError) -> ApiError {
        tonic::Status::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, message = %self.message, "dashboard request failed");
        }
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// The dashboard's routes.
pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/api/sign-in", post(session::sign_in))
        .route("/api/sign-out", post(session::sign_out))
        .route("/api/me", get(api::me))
        .route("/api/area", get(api::area))
        .route("/api/catalogue", get(api::catalogue))
        .route("/api/table", get(api::table))
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
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Serves the dashboard on `listener` until `shutdown` resolves: HTTPS with the hub's own
/// certificate when the hub serves TLS, plain HTTP otherwise (`--insecure`).
pub async fn serve(
    listener: TcpListener,
    web: Web,
    tls: Option<Arc<ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let app = router(web);
    match &tls {
        Some(_) => tracing::info!(%addr, "dashboard serving HTTPS"),
        None => tracing::warn!(%addr, "dashboard serving PLAINTEXT HTTP (--insecure)"),
    }
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = tls.as_ref().map(|t| t.web_acceptor());
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => connection(stream, app).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "dashboard TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "dashboard TLS handshake timed out"),
                    }
                }
                None => connection(tcp, app).await,
            }
        });
    }
    tracing::info!(%addr, "dashboard stopped");
    Ok(())
}

/// One HTTP/1.1 connection.
async fn connection<S>(io: S, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await
    {
        tracing::debug!(error = %e, "dashboard connection ended with an error");
    }
}
