//! The client side of mutual TLS, shared by `pingan-node` and `pingan-hub query`: the
//! deployment's CA, this office's certificate and key, or `--insecure` for plaintext.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// TLS flags of a client.
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
                "--insecure talks plaintext: use an http:// hub URL, not {hub}"
            );
            return Ok(None);
        }
        let (Some(ca), Some(cert), Some(key)) = (&self.ca, &self.cert, &self.key) else {
            anyhow::bail!(
                "mutual TLS needs --ca, --cert and --key (from `pingan-hub certs issue`), or --insecure for plaintext on a trusted network"
            );
        };
        anyhow::ensure!(
            hub.starts_with("https://"),
            "with TLS the hub URL starts with https://, not {hub}"
        );
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        Ok(Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca)?))
                .identity(Identity::from_pem(read(cert)?, read(key)?)),
        ))
    }
}

/// An endpoint for `hub`, with TLS when configured.
pub fn endpoint(hub: &str, tls: Option<&ClientTlsConfig>) -> anyhow::Result<Endpoint> {
    let mut e = Channel::from_shared(hub.to_owned())
        .map_err(|e| anyhow::anyhow!("bad hub address {hub:?}: {e}"))?;
    if let Some(tls) = tls {
        e = e.tls_config(tls.clone()).context("TLS configuration")?;
    }
    Ok(e)
}
