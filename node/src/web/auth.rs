//! Who may open the page when it is served on the office network: accounts made with
//! `pingan-node users add` (argon2id hashes in the node's store), a session cookie after signing
//! in (`HttpOnly`, `SameSite=Strict`, `Secure`; kept in memory, so a restart signs everyone
//! out), and a pause after repeated wrong passwords from one address. On loopback the page is
//! the office computer's own and asks for nothing.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{NodeWeb, PageError};

/// Session cookie's name.
const COOKIE: &str = "pingan_node_session";
/// How long a session lasts: a working day.
const SESSION_MS: i64 = 10 * 3600 * 1000;
/// Wrong passwords from one address before it must wait, and how long.
const MAX_FAILURES: u32 = 5;
const PAUSE_MS: i64 = 10 * 60 * 1000;

/// The peer of a connection (for the pause after wrong passwords).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

/// Sessions and failures, when the page asks for a password.
#[derive(Debug, Default)]
pub struct PageAuth {
    sessions: Mutex<HashMap<String, (String, i64)>>,
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn token_of(req: &Request) -> Option<String> {
    let cookies = req.headers().get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

impl PageAuth {
    /// The user a request's session belongs to, if it is valid now.
    fn user(&self, req: &Request) -> Option<String> {
        let token = token_of(req)?;
        let mut sessions = self.sessions.lock().expect("not poisoned");
        let now = now_ms();
        sessions.retain(|_, (_, until)| *until > now);
        sessions.get(&token).map(|(name, _)| name.clone())
    }
}

/// Refuses every API call and receipt without a valid session when the page asks for a
/// password (401, which the page answers with its sign-in form).
pub async fn require_session(State(web): State<NodeWeb>, req: Request, next: Next) -> Response {
    let Some(auth) = &web.auth else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    let open =
        !(path.starts_with("/api/") || path.starts_with("/receipt/")) || path == "/api/sign-in";
    if open || auth.user(&req).is_some() {
        return next.run(req).await;
    }
    PageError {
        status: StatusCode::UNAUTHORIZED,
        message: "请先登录".into(),
    }
    .into_response()
}

/// What the sign-in form sends.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    pub name: String,
    pub password: String,
}

/// `POST /api/sign-in`: a session cookie for the right name and password.
pub async fn sign_in(
    State(web): State<NodeWeb>,
    axum::Extension(Peer(ip)): axum::Extension<Peer>,
    Json(form): Json<SignIn>,
) -> Result<Response, PageError> {
    let Some(auth) = web.auth.clone() else {
        return Ok(Json(serde_json::json!({"name": ""})).into_response());
    };
    let now = now_ms();
    if let Some((n, since)) = auth.failures.lock().expect("not poisoned").get(&ip)
        && *n >= MAX_FAILURES
        && now - since < PAUSE_MS
    {
        return Err(PageError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "密码错误次数过多，请 {} 分钟后再试",
                (PAUSE_MS - (now - since)) / 60_000 + 1
            ),
        });
    }
    let outbox = web.outbox.clone();
    let name = form.name.trim().to_owned();
    let checked = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            outbox
                .lock()
                .expect("not poisoned")
                .check_page_user(&name, &form.password)
        })
        .await
        .map_err(|e| PageError::bad(e.to_string()))?
    };
    if !checked.map_err(|e| PageError::bad(e.to_string()))? {
        let mut failures = auth.failures.lock().expect("not poisoned");
        let f = failures.entry(ip).or_insert((0, now));
        *f = (f.0 + 1, now);
        tracing::warn!(%ip, user = %name, "wrong password on the entry page");
        return Err(PageError {
            status: StatusCode::UNAUTHORIZED,
            message: "用户名或密码错误".into(),
        });
    }
    auth.failures.lock().expect("not poisoned").remove(&ip);
    let token: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    auth.sessions
        .lock()
        .expect("not poisoned")
        .insert(token.clone(), (name.clone(), now + SESSION_MS));
    let mut r = Json(serde_json::json!({"name": name})).into_response();
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age={}",
        SESSION_MS / 1000
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Sessions for a page that asks for a password.
pub fn required() -> Option<Arc<PageAuth>> {
    Some(Arc::default())
}
