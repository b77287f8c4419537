//! `pingan-hub certs init|issue`: a small CA for one deployment. `init` writes `ca.pem` and
//! `ca.key`; `issue` writes `ROLE-AREA.pem` and `ROLE-AREA.key`, a certificate whose one URI SAN
//! (`pingan://ROLE/AREA`) is the identity the hub authorizes on. Hub certificates also carry the
//! host names clients connect to.

use std::path::{Path, PathBuf};

use pingan_domain::AreaCode;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::identity::{Role, department_uri, hex_serial, identity_uri};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}：{source} (reading or writing failed)", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    #[error("生成证书失败 (certificate)：{0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{} 已存在，不会覆盖；要重新签发请先移走它 (exists already; refusing to overwrite it)", .0.display())]
    Exists(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

/// A certificate to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub role: Role,
    pub area: AreaCode,
    /// A department's node (role node): the department's id, in the URI after the area.
    pub department: Option<String>,
    /// DNS names and IP addresses clients use to reach a hub (hub certificates only).
    pub hosts: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl IssueRequest {
    /// Valid from now for `days`.
    pub fn valid_for_days(role: Role, area: AreaCode, days: i64) -> IssueRequest {
        let now = OffsetDateTime::now_utc();
        IssueRequest {
            role,
            area,
            department: None,
            hosts: if role == Role::Hub {
                vec!["localhost".into(), "127.0.0.1".into()]
            } else {
                Vec::new()
            },
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(days),
        }
    }

    /// File stem of the issued files: `node-510722101001`, or `node-sw-510722` for a
    /// department's node.
    pub fn stem(&self) -> String {
        match &self.department {
            Some(d) => format!("{}-{d}", self.role.as_str()),
            None => format!("{}-{}", self.role.as_str(), self.area),
        }
    }

    /// The identity URI the certificate carries.
    pub fn uri(&self) -> String {
        match &self.department {
            Some(d) => department_uri(self.area, d),
            None => identity_uri(self.role, self.area),
        }
    }
}

/// An issued certificate, PEM encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// Serial, lowercase hex (what a deny list names).
    pub serial: String,
}

/// A new CA: (certificate PEM, key PEM).
pub fn new_ca(name: &str) -> Result<(String, String), CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "pingan");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Issues a certificate signed by the CA given as PEM.
pub fn issue_with(ca_pem: &str, ca_key_pem: &str, req: &IssueRequest) -> Result<Issued, CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.uri());
    dn.push(DnType::OrganizationName, "pingan");
    params.distinguished_name = dn;
    let mut san = vec![SanType::URI(req.uri().try_into()?)];
    for h in &req.hosts {
        san.push(match h.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(h.clone().try_into()?),
        });
    }
    params.subject_alt_names = san;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = match req.role {
        Role::Hub => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        _ => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    let serial: [u8; 16] = rand::random();
    let mut serial = serial.to_vec();
    serial[0] &= 0x7f; // a positive INTEGER
    serial[0] |= 0x01; // and no leading zero byte to trim
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = req.not_before;
    params.not_after = req.not_after;
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial: hex_serial(&serial),
    })
}

fn write_new(path: &Path, text: &str) -> Result<(), CertError> {
    if path.exists() {
        return Err(CertError::Exists(path.to_owned()));
    }
    std::fs::write(path, text).map_err(|e| CertError::Io(path.to_owned(), e))?;
    #[cfg(unix)]
    if path.extension().is_some_and(|e| e == "key") {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CertError::Io(path.to_owned(), e))?;
    }
    Ok(())
}

/// `certs init`: writes `ca.pem` and `ca.key` in `dir`.
pub fn init(dir: &Path) -> Result<(PathBuf, PathBuf), CertError> {
    std::fs::create_dir_all(dir).map_err(|e| CertError::Io(dir.to_owned(), e))?;
    let (cert, key) = new_ca("pingan CA")?;
    let (c, k) = (dir.join("ca.pem"), dir.join("ca.key"));
    write_new(&c, &cert)?;
    write_new(&k, &key)?;
    Ok((c, k))
}

/// `certs issue`: writes `ROLE-AREA.pem` and `.key` in `dir`, signed by `dir/ca.pem`.
pub fn issue(dir: &Path, req: &IssueRequest) -> Result<(PathBuf, PathBuf, Issued), CertError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| CertError::Io(p, e))
    };
    let issued = issue_with(&read("ca.pem")?, &read("ca.key")?, req)?;
    let (c, k) = (
        dir.join(format!("{}.pem", req.stem())),
        dir.join(format!("{}.key", req.stem())),
    );
    write_new(&c, &issued.cert_pem)?;
    write_new(&k, &issued.key_pem)?;
    Ok((c, k, issued))
}
