//! The hub's TLS: client certificates required and verified against the deployment's CA, serials
//! on the deny list refused, and the hub's certificate, key, CA and deny list reloaded when their
//! files change, without a restart and without dropping connections already open (they keep the
//! configuration they were accepted with; a revoked serial is also refused on every request).

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, Error as TlsError, RootCertStore, ServerConfig,
    SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject as _},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use super::identity::hex_serial;

/// The files of the hub's TLS configuration.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA certificate(s) that client certificates must chain to (PEM).
    pub ca: PathBuf,
    /// The hub's certificate chain (PEM).
    pub cert: PathBuf,
    /// The hub's private key (PEM).
    pub key: PathBuf,
    /// Revoked serials, one hex serial a line, `#` comments; optional.
    pub deny_list: Option<PathBuf>,
}

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    #[error("TLS configuration: {0}")]
    Tls(String),
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

/// The live TLS configuration.
#[derive(Debug)]
pub struct ServerTls {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
    /// The dashboard's configuration: the same certificate, no client certificate (browsers
    /// sign in with a password), HTTP/1.1.
    web: RwLock<Arc<ServerConfig>>,
    deny: Arc<RwLock<HashSet<String>>>,
    stamp: Mutex<Stamp>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|e| TlsSetupError::Io(path.to_owned(), e))
}

fn read_deny_list(path: &Path) -> Result<HashSet<String>, TlsSetupError> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    Ok(text
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
                .replace(':', "")
        })
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim_start_matches("0x")
                .trim_start_matches('0')
                .to_owned()
        })
        .collect())
}

/// Serial of a DER certificate, lowercase hex without leading zeros.
fn serial_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(
        hex_serial(cert.tbs_certificate.raw_serial())
            .trim_start_matches('0')
            .to_owned(),
    )
}

/// WebPKI client verification plus the deny list.
#[derive(Debug)]
struct DenyListVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    deny: Arc<RwLock<HashSet<String>>>,
}

impl ClientCertVerifier for DenyListVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if let Some(serial) = serial_of(end_entity)
            && self.deny.read().expect("not poisoned").contains(&serial)
        {
            tracing::warn!(%serial, "revoked client certificate refused");
            return Err(TlsError::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ServerTls {
    /// Loads the configuration; fails with the file that is wrong.
    pub fn load(files: TlsFiles) -> Result<Arc<ServerTls>, TlsSetupError> {
        let deny = Arc::new(RwLock::new(match &files.deny_list {
            Some(p) if p.exists() => read_deny_list(p)?,
            _ => HashSet::new(),
        }));
        let (config, web) = build(&files, deny.clone())?;
        let stamp = stamp(&files);
        Ok(Arc::new(ServerTls {
            files,
            config: RwLock::new(Arc::new(config)),
            web: RwLock::new(Arc::new(web)),
            deny,
            stamp: Mutex::new(stamp),
        }))
    }

    /// Whether a serial (hex) is revoked.
    pub fn is_denied(&self, serial: &str) -> bool {
        self.deny
            .read()
            .expect("not poisoned")
            .contains(serial.trim_start_matches('0'))
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().expect("not poisoned").clone())
    }

    /// An acceptor for the web dashboard with the current certificate.
    pub fn web_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.web.read().expect("not poisoned").clone())
    }

    /// Reloads whatever changed on disk. A file that fails to load leaves the previous
    /// configuration in force (and is retried at the next change). Returns whether it reloaded.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.files);
        let mut last = self.stamp.lock().expect("not poisoned");
        if *last == now {
            return false;
        }
        *last = now;
        let mut ok = true;
        // the deny list applies even if a certificate file is broken mid-rotation
        match &self.files.deny_list {
            Some(p) if p.exists() => match read_deny_list(p) {
                Ok(d) => *self.deny.write().expect("not poisoned") = d,
                Err(e) => {
                    tracing::error!(error = %e, "deny list does not load; keeping the previous one");
                    ok = false;
                }
            },
            _ => self.deny.write().expect("not poisoned").clear(),
        }
        match build(&self.files, self.deny.clone()) {
            Ok((config, web)) => {
                *self.config.write().expect("not poisoned") = Arc::new(config);
                *self.web.write().expect("not poisoned") = Arc::new(web);
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but do not load; keeping the previous configuration");
                ok = false;
            }
        }
        if ok {
            tracing::info!("TLS configuration reloaded (certificate, CA, deny list)");
        }
        ok
    }

    /// Checks the files every `every` until the returned task is aborted.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let tls = tls.clone();
                let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            }
        })
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [
        Some(&files.ca),
        Some(&files.cert),
        Some(&files.key),
        files.deny_list.as_ref(),
    ]
    .into_iter()
    .map(|p| {
        let m = std::fs::metadata(p?).ok()?;
        Some((m.modified().ok()?, m.len()))
    })
    .collect()
}

/// The gRPC configuration (client certificates required) and the dashboard's (none asked).
fn build(
    files: &TlsFiles,
    deny: Arc<RwLock<HashSet<String>>>,
) -> Result<(ServerConfig, ServerConfig), TlsSetupError> {
    let provider = Arc::new(ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(&files.ca)?) {
        let cert = cert.map_err(|e| TlsSetupError::Pem(files.ca.clone(), e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| TlsSetupError::Pem(files.ca.clone(), e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::Pem(
            files.ca.clone(),
            "no CA certificate in the file".into(),
        ));
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsSetupError::Tls(e.to_string()))?;
    let verifier = Arc::new(DenyListVerifier { inner, deny });
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsSetupError::Pem(files.cert.clone(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsSetupError::Pem(
            files.cert.clone(),
            "no certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?)
        .map_err(|e| TlsSetupError::Pem(files.key.clone(), e.to_string()))?;
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut web = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsSetupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| TlsSetupError::Tls(e.to_string()))?;
    web.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsSetupError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsSetupError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((config, web))
}

/// Most TLS handshakes in progress at once on the gRPC port.
pub const MAX_HANDSHAKES: usize = 1024;

/// Accepts TCP connections and completes TLS handshakes off the accept loop; yields the streams
/// that pass. Failed handshakes (no certificate, wrong CA, expired, revoked, not TLS at all) are
/// logged and dropped: the hub keeps serving.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
) -> (
    tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    // handshakes in progress at once: a flood of connections that never say hello is shed at
    // the door instead of holding a task and a file descriptor each for the handshake timeout
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // tonic sets TCP_NODELAY only on listeners it binds itself; without it a small reply
            // waits for the client's delayed ACK (~40 ms)
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "TLS handshake refused: {MAX_HANDSHAKES} in progress");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (tls.acceptor(), tx.clone());
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                drop(permit);
                match handshake {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}
