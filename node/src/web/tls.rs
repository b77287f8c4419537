//! HTTPS for the page on the office network: the certificate given (`--page-cert`,
//! `--page-key`), or one the node makes for itself once (self-signed, kept beside its outbox)
//! whose SHA-256 fingerprint it prints, so a clerk can check what the phone's browser shows.

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use sha2::{Digest as _, Sha256};

/// File names of the node's own page certificate, in the outbox directory.
pub const CERT_FILE: &str = "page-cert.pem";
pub const KEY_FILE: &str = "page-key.pem";

/// A certificate's SHA-256 fingerprint as browsers show it: `AB:CD:...`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes the node's own certificate for `hosts` (names and addresses) unless one is kept.
pub fn own_certificate(
    dir: &Path,
    hosts: &[String],
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (cert, key) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pingan-node 填报页面");
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    let key_pair = rcgen::KeyPair::generate()?;
    let issued = params.self_signed(&key_pair)?;
    std::fs::write(&cert, issued.pem()).with_context(|| format!("writing {}", cert.display()))?;
    std::fs::write(&key, key_pair.serialize_pem())
        .with_context(|| format!("writing {}", key.display()))?;
    Ok((cert, key))
}

/// The TLS acceptor for the page, and the certificate's fingerprint.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<(tokio_rustls::TlsAcceptor, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {}", cert.display()))?;
    let first = certs.first().context("no certificate in the file")?;
    let print = fingerprint(first);
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), print))
}
