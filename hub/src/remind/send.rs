//! One HTTP POST of a JSON body to a webhook (a 企业微信 or 钉钉 group robot, or any JSON
//! endpoint), over TLS with the system's root certificates for `https://`, within a timeout.

use std::{sync::Arc, time::Duration};

use http_body_util::{BodyExt as _, Full};
use hyper::{Request, body::Bytes};
use hyper_util::rt::TokioIo;

/// The answer of a webhook: its HTTP status and (the start of) its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// 2xx, and for the robots an `errcode` of 0 when the body says one.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
            && serde_json::from_str::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|v| v.get("errcode").and_then(serde_json::Value::as_i64))
                .is_none_or(|c| c == 0)
    }
}

fn tls() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn exchange<S>(io: S, req: Request<Full<Bytes>>) -> Result<Answer, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text: String = String::from_utf8_lossy(&body).chars().take(500).collect();
    Ok(Answer { status, body: text })
}

/// POSTs `body` to `url`; the webhook's answer, or why there is none.
pub async fn post_json(
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Answer, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{url}: 只支持 http:// 或 https://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("{url}: 没有主机名"))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let req = Request::post(path)
        .header(hyper::header::HOST, &host)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .header(hyper::header::USER_AGENT, "pingan-hub reminders")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("连接 {host}:{port} 失败：{e}"))?;
        if https {
            let name =
                rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let stream = tls()?.connect(name, tcp).await.map_err(|e| e.to_string())?;
            exchange(stream, req).await
        } else {
            exchange(tcp, req).await
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{url} 在 {timeout:?} 内没有应答"))?
}
