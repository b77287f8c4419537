//! Sign-in and the session cookie. The cookie holds a random token whose SHA-256 alone is stored
//! ([`crate::access::users`]); it is `HttpOnly`, `SameSite=Strict` and, over HTTPS, `Secure`.

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{ApiError, SESSION_TTL, Web};
use crate::access::users::{User, UserError};

/// The session cookie's name.
pub const COOKIE: &str = "pingan_session";

/// What the sign-in form sends.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    pub name: String,
    pub password: String,
}

fn users_failed(e: UserError) -> ApiError {
    match e {
        UserError::SignIn => ApiError::new(StatusCode::UNAUTHORIZED, "用户名或密码错误"),
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Runs an accounts operation off the async threads (argon2 takes tens of milliseconds).
async fn with_users<T: Send + 'static>(
    web: &Web,
    f: impl FnOnce(&crate::access::users::Users) -> Result<T, UserError> + Send + 'static,
) -> Result<T, ApiError> {
    let users = web.users.clone();
    tokio::task::spawn_blocking(move || f(&users.lock().expect("not poisoned")))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(users_failed)
}

fn cookie(web: &Web, value: &str, max_age_s: u64) -> HeaderValue {
    let secure = if web.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("a cookie of hex digits is a valid header")
}

/// `POST /api/sign-in`: checks the password and starts a session, unless the account or the
/// address has sent too many wrong passwords lately (429, recorded).
pub async fn sign_in(
    State(web): State<Web>,
    Extension(Peer(peer)): Extension<Peer>,
    Json(form): Json<SignIn>,
) -> Response {
    use super::throttle::{ACCOUNT_FAILURES, ADDRESS_FAILURES};
    let now = web.hub.clock.now_ms();
    let ttl = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    let name = form.name.trim().to_owned();
    let (account, address) = (
        format!("user:{}", name.to_lowercase()),
        format!("addr:{}", peer.ip()),
    );
    let locked = web
        .throttle
        .check(&account, now)
        .and_then(|()| web.throttle.check(&address, now));
    if let Err(wait_ms) = locked {
        let reason = format!("too many wrong passwords for {name} or from {}", peer.ip());
        if let Err(e) = web.hub.store.record_refusal(
            &format!("web:{name}@{}", peer.ip()),
            "sign-in",
            "-",
            &reason,
        ) {
            tracing::error!(error = %e, "could not record a refusal in the audit trail");
        }
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "密码错误次数过多，请 {} 分钟后再试 (too many attempts)",
                wait_ms / 60_000 + 1
            ),
        )
        .into_response();
    }
    let signed = {
        let name = name.clone();
        with_users(&web, move |u| u.sign_in(&name, &form.password, now, ttl)).await
    };
    match signed {
        Ok((token, user)) => {
            web.throttle.succeeded(&account);
            tracing::info!(user = %user.name, area = %user.area, "dashboard sign-in");
            let mut response = Json(super::brief::me_json(&web, &user)).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&web, &token, SESSION_TTL.as_secs()),
            );
            response
        }
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                web.throttle.failed(&account, ACCOUNT_FAILURES, now);
                web.throttle.failed(&address, ADDRESS_FAILURES, now);
            }
            tracing::warn!(user = %name, peer = %peer, "dashboard sign-in refused");
            e.into_response()
        }
    }
}

/// The address a dashboard request came from (set on each connection).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// `POST /api/sign-out`: ends the session.
pub async fn sign_out(State(web): State<Web>, headers: HeaderMap) -> Response {
    if let Some(token) = token(&headers) {
        let _ = with_users(&web, move |u| u.sign_out(&token)).await;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&web, "", 0));
    response
}

/// The session token in the request's cookies.
fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The signed-in user, or 401 (no cookie, unknown or expired session).
pub async fn user(web: &Web, headers: &HeaderMap) -> Result<User, ApiError> {
    let unauthenticated = || ApiError::new(StatusCode::UNAUTHORIZED, "请先登录 (not signed in)");
    let token = token(headers).ok_or_else(unauthenticated)?;
    let now = web.hub.clock.now_ms();
    with_users(web, move |u| u.session(&token, now))
        .await?
        .ok_or_else(unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pingan_session=abc; b=2"),
        );
        assert_eq!(token(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("pingan_sessionx=1"),
        );
        assert_eq!(token(&h), None);
    }
}
