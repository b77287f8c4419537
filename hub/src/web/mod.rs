//! The leaders' dashboard: HTTPS on its own port (the hub's certificate, no client certificate),
//! password sign-in to a session cookie, JSON for the page, and every table as .xlsx and CSV.
//!
//! - [`session`]: sign-in, sign-out and the session cookie; a user acts as a viewer of its area.
//! - [`api`]: the JSON and download endpoints, each checked by the same [`crate::access::authz`] rules
//!   as gRPC and answered by the same engine.
//! - [`assets`]: the page itself (HTML, JS, CSS compiled into the binary: no CDN, works offline).
//! - [`throttle`]: sign-in throttling per account and per address.
//!
//! A peer gets bounded resources: at most [`MAX_CONNECTIONS`] connections at once
//! ([`MAX_CONNECTIONS_PER_ADDRESS`] from one address), 10 s to complete a TLS handshake and to
//! send a request's headers, and [`MAX_CONNECTION_TIME`] per connection, so a flood of
//! half-open connections cannot exhaust the process's file descriptors (which the gRPC port
//! shares).

pub mod api;
mod assets;
pub mod boundaries;
mod brief;
mod headline;
pub mod session;
pub mod throttle;

use std::{
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

use pingan_outbox::CancellationToken;

use crate::{
    access::{tls::ServerTls, users::Users},
    state::HubState,
};

/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Most dashboard connections open at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Most dashboard connections open at once from one address.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
/// Longest a dashboard connection stays open (a page's requests take milliseconds).
pub const MAX_CONNECTION_TIME: Duration = Duration::from_secs(300);
/// Time to complete a TLS handshake, and to send a request's headers.
pub const HANDSHAKE_AND_HEADERS: Duration = Duration::from_secs(10);

/// What the dashboard's handlers share.
#[derive(Debug, Clone)]
pub struct Web {
    pub hub: HubState,
    pub users: Arc<Mutex<Users>>,
    /// Served over TLS: cookies are marked `Secure`.
    pub secure: bool,
    /// Wrong-password counts.
    pub throttle: Arc<throttle::Throttle>,
}

impl Web {
    /// The dashboard of `hub` with these accounts.
    pub fn new(hub: HubState, users: Users, secure: bool) -> Web {
        Web {
            hub,
            users: Arc::new(Mutex::new(users)),
            secure,
            throttle: Arc::default(),
        }
    }
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
    let secure = web.secure;
    let app = Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/vendor/echarts-6.1.0.min.js", get(assets::echarts))
        .route("/api/sign-in", post(session::sign_in))
        .route("/api/sign-out", post(session::sign_out))
        .route("/api/me", get(api::me))
        .route("/api/area", get(api::area))
        .route("/api/catalogue", get(api::catalogue))
        .route("/api/table", get(api::table))
        .route("/api/remind", post(api::remind))
        .route(
            "/api/review",
            get(api::review_list).post(api::review_decide),
        )
        .route("/api/review/history", get(api::review_history))
        .route("/api/bulletin", get(api::bulletin))
        .route("/api/headline", get(api::headline))
        .route("/api/boundaries", get(api::boundaries))
        .route("/api/parts", get(api::parts))
        .route("/api/locks", get(api::locks_list).post(api::locks_set))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web);
    if secure {
        app.layer(axum::middleware::map_response(strict_transport))
    } else {
        app
    }
}

/// Same-origin only: no frames, no foreign scripts, no content sniffing. A response that set
/// a stricter policy of its own (the bulletin's print view: no script at all) keeps it.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                // inline styles: the charts' tooltips colour their markers with style attributes
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Over HTTPS: browsers keep to HTTPS for this host for a year.
async fn strict_transport(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

/// Serves the dashboard on `listener` until `shutdown` resolves: HTTPS with the hub's own
/// certificate when the hub serves TLS, plain HTTP otherwise (`--insecure`).
pub async fn serve(
    listener: TcpListener,
    web: Web,
    tls: Option<Arc<ServerTls>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let app = router(web);
    match &tls {
        Some(_) => tracing::info!(%addr, "dashboard serving HTTPS"),
        None => tracing::warn!(%addr, "dashboard serving PLAINTEXT HTTP (--insecure)"),
    }
    let mut connections = tokio::task::JoinSet::new();
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_address: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
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
            () = shutdown.cancelled() => break,
        };
        // finished connections are reaped as new ones come
        while connections.try_join_next().is_some() {}
        // over the caps the connection is closed at once: the others are served
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "dashboard connection refused: {MAX_CONNECTIONS} open");
            continue;
        };
        let Some(slot) = AddressSlot::take(&per_address, peer.ip()) else {
            tracing::debug!(%peer, "dashboard connection refused: too many from this address");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone().layer(axum::Extension(session::Peer(peer)));
        let acceptor = tls.as_ref().map(|t| t.web_acceptor());
        connections.spawn(serve_one(
            tcp,
            peer,
            acceptor,
            app,
            shutdown.clone(),
            (permit, slot),
        ));
    }
    // open connections finish the request they are serving and close; whatever is still open
    // after the drain time is cut
    let drained = tokio::time::timeout(crate::grpc::server::DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "dashboard connections still open after the drain time: closed"
        );
        connections.abort_all();
    }
    tracing::info!(%addr, "dashboard stopped");
    Ok(())
}

/// One accepted connection: its TLS handshake (when serving HTTPS) and its requests, for at most
/// [`MAX_CONNECTION_TIME`]. `held` (its place under the caps) is given back when it ends.
async fn serve_one(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    stop: CancellationToken,
    held: (tokio::sync::OwnedSemaphorePermit, AddressSlot),
) {
    let _held = held;
    let served = tokio::time::timeout(MAX_CONNECTION_TIME, async move {
        match acceptor {
            Some(acceptor) => {
                match tokio::time::timeout(HANDSHAKE_AND_HEADERS, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => connection(stream, app, stop).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "dashboard TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%peer, "dashboard TLS handshake timed out"),
                }
            }
            None => connection(tcp, app, stop).await,
        }
    })
    .await;
    if served.is_err() {
        tracing::debug!(%peer, "dashboard connection closed after {MAX_CONNECTION_TIME:?}");
    }
}

/// One of the connections an address holds; given back when dropped.
struct AddressSlot {
    counts: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    fn take(
        counts: &Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
    ) -> Option<AddressSlot> {
        let mut c = counts.lock().expect("not poisoned");
        let n = c.entry(ip).or_default();
        if *n >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().expect("not poisoned");
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

/// One HTTP/1.1 connection: its request headers must arrive within
/// [`HANDSHAKE_AND_HEADERS`]; on shutdown it finishes the request in flight and closes.
async fn connection<S>(io: S, app: Router, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_AND_HEADERS)
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
        tracing::debug!(error = %e, "dashboard connection ended with an error");
    }
}
