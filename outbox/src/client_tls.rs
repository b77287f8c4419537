//! The client side of mutual TLS, shared by `pingan-node`, `pingan-hub query` and a hub
//! forwarding to its parent: the deployment's CA, this office's certificate and key, or
//! `--insecure` for plaintext. The files are checked when they are loaded (readable PEM, the key
//! belongs to the certificate), so a wrong setup is said at once instead of being retried as a
//! network failure; and [`describe`] turns a failed connection into what went wrong.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// TLS flags of a node (and of a hub forwarding to its parent).
#[derive(Debug, Clone, Default, Args)]
pub struct ClientTlsArgs {
    /// The deployment's CA certificate (PEM), that the hub's certificate must chain to.
    #[arg(long, env = "PINGAN_CA")]
    pub ca: Option<PathBuf>,
    /// This office's certificate (PEM), from `pingan-hub certs issue`.
    #[arg(long, env = "PINGAN_CERT")]
    pub cert: Option<PathBuf>,
    /// This office's private key (PEM).
    #[arg(long, env = "PINGAN_KEY")]
    pub key: Option<PathBuf>,
    /// Plaintext gRPC (an http:// hub URL) without certificates; only for trusted networks.
    #[arg(long, env = "PINGAN_INSECURE")]
    pub insecure: bool,
}

impl ClientTlsArgs {
    /// The TLS configuration for `hub` (None in insecure mode), with clear errors.
    pub fn config(&self, hub: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
        if self.insecure {
            anyhow::ensure!(
                hub.starts_with("http://"),
                "--insecure 使用明文连接：hub 地址应以 http:// 开头，而不是 {hub}"
            );
            return Ok(None);
        }
        let (Some(ca), Some(cert), Some(key)) = (&self.ca, &self.cert, &self.key) else {
            anyhow::bail!(
                "双向 TLS 需要 --ca、--cert 和 --key（由 `pingan-hub certs issue` 签发），或在可信网络上用 --insecure 明文连接 (mutual TLS needs --ca, --cert and --key)"
            );
        };
        anyhow::ensure!(
            hub.starts_with("https://"),
            "使用 TLS 时 hub 地址应以 https:// 开头，而不是 {hub}"
        );
        Ok(Some(load(ca, cert, key)?))
    }
}

/// Reads and checks a CA, a certificate and its key into a client TLS configuration.
pub fn load(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<ClientTlsConfig> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("读取 {} 失败", p.display()));
    let (ca_pem, cert_pem, key_pem) = (read(ca)?, read(cert)?, read(key)?);
    check(ca, &ca_pem, cert, &cert_pem, key, &key_pem)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(cert_pem, key_pem)))
}

/// The files hold what they should, and the key is the certificate's.
fn check(
    ca: &Path,
    ca_pem: &[u8],
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> anyhow::Result<()> {
    let certs = |path: &Path, pem: &[u8]| -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("{} 不是 PEM 证书：{e}", path.display()))?;
        anyhow::ensure!(!certs.is_empty(), "{} 里没有证书", path.display());
        Ok(certs)
    };
    certs(ca, ca_pem)?;
    let chain = certs(cert, cert_pem)?;
    let private = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| anyhow::anyhow!("{} 不是 PEM 私钥：{e}", key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
        anyhow::anyhow!(
            "证书 {} 与私钥 {} 不匹配（{e}）：请使用同一次 `pingan-hub certs issue` 生成的一对文件 (certificate and key do not match)",
            cert.display(),
            key.display()
        )
    })?;
    Ok(())
}

/// An endpoint for `hub`, with TLS when configured.
pub fn endpoint(hub: &str, tls: Option<&ClientTlsConfig>) -> anyhow::Result<Endpoint> {
    let mut e = Channel::from_shared(hub.to_owned())
        .map_err(|e| anyhow::anyhow!("hub 地址「{hub}」不对：{e}"))?;
    if let Some(tls) = tls {
        e = e.tls_config(tls.clone()).context("TLS 配置")?;
    }
    Ok(e)
}

/// What a failed connection to a hub means, in Chinese, with the underlying causes: a wrong
/// address or port, a hub that is down, a name that does not resolve, or a TLS refusal on
/// either side.
pub fn describe(hub: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = Vec::new();
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(x) = e {
        let text = x.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        e = x.source();
    }
    let chain = causes.join(": ");
    let lower = chain.to_lowercase();
    let meaning = if lower.contains("connection refused") {
        "连接被拒绝：地址或端口不对，或 hub 没有运行"
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "找不到 hub 的主机名：请检查地址"
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "连接超时：网络不通，或 hub 太忙"
    } else if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
        "hub 的证书不是本部署的 CA 签发的：--ca 是否用了本部署的 ca.pem？"
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        "hub 的证书不含这个主机名：用签发时 --host 给出的名字连接"
    } else if lower.contains("expired") {
        "证书已过期：请重新签发"
    } else if lower.contains("alert") || lower.contains("certificate") {
        "TLS 握手失败：hub 不接受本节点的证书（证书被吊销、不是本部署 CA 签发，或 hub 用的是另一套 CA）"
    } else if lower.contains("http2") || lower.contains("frame") || lower.contains("h2 protocol") {
        "对方不是 pingan hub，或协议不对（https:// 与 http:// 是否用反了？）"
    } else {
        "无法连接 hub"
    };
    format!("{meaning} ({hub}: {chain})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_says_so_in_chinese() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let text = describe("https://localhost:1", &io);
        assert!(text.starts_with("连接被拒绝"), "{text}");
        assert!(text.contains("https://localhost:1"), "{text}");
    }
}
