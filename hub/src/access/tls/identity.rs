//! The identity a certificate carries: one URI SAN `pingan://ROLE/AREA`, e.g.
//! `pingan://node/510722101001`, plus its serial (for revocation).

use std::{fmt, str::FromStr};

use pingan_domain::AreaCode;

/// What a certificate may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    /// An office's node: submits reports for its own area (or a granted subtree).
    Node,
    /// A leader's reader: queries its area's subtree.
    Viewer,
    /// A hub: serves, and forwards rollups to its parent (federation).
    Hub,
}

impl Role {
    /// The role as written in identities.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Viewer => "viewer",
            Role::Hub => "hub",
        }
    }
}

impl FromStr for Role {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Role, IdentityError> {
        match s {
            "node" => Ok(Role::Node),
            "viewer" => Ok(Role::Viewer),
            "hub" => Ok(Role::Hub),
            _ => Err(IdentityError::UnknownRole(s.to_owned())),
        }
    }
}

/// Why a certificate or an identity URI names no pingan identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("unknown role {0:?}: expected node, viewer or hub")]
    UnknownRole(String),
    #[error("{0:?} is not a pingan:// identity")]
    NotPingan(String),
    #[error("{0:?}: expected pingan://ROLE/AREA")]
    Malformed(String),
    #[error("{uri:?}: {reason}")]
    BadArea { uri: String, reason: String },
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    #[error("certificate {serial} carries no pingan identity (no subjectAltName)")]
    NoIdentity { serial: String },
    #[error("certificate {serial} must carry exactly one pingan:// URI, has {count}")]
    Ambiguous { serial: String, count: usize },
}

/// A caller, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub role: Role,
    pub area: AreaCode,
    /// Certificate serial, lowercase hex.
    pub serial: String,
}

impl Identity {
    /// `pingan://ROLE/AREA`.
    pub fn uri(&self) -> String {
        identity_uri(self.role, self.area)
    }

    /// Reads the identity from a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Identity, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
        let serial = hex_serial(cert.tbs_certificate.raw_serial());
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::Unreadable(format!("bad subjectAltName: {e}")))?
            .ok_or_else(|| IdentityError::NoIdentity {
                serial: serial.clone(),
            })?;
        let uris: Vec<&str> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::URI(u) => Some(*u),
                _ => None,
            })
            .filter(|u| u.starts_with("pingan://"))
            .collect();
        let [uri] = uris.as_slice() else {
            return Err(IdentityError::Ambiguous {
                serial,
                count: uris.len(),
            });
        };
        let (role, area) = parse_uri(uri)?;
        Ok(Identity { role, area, serial })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// `pingan://ROLE/AREA`.
pub fn identity_uri(role: Role, area: AreaCode) -> String {
    format!("pingan://{}/{area}", role.as_str())
}

/// Parses `pingan://ROLE/AREA`.
pub fn parse_uri(uri: &str) -> Result<(Role, AreaCode), IdentityError> {
    let rest = uri
        .strip_prefix("pingan://")
        .ok_or_else(|| IdentityError::NotPingan(uri.to_owned()))?;
    let (role, area) = rest
        .split_once('/')
        .ok_or_else(|| IdentityError::Malformed(uri.to_owned()))?;
    let area =
        area.parse().map_err(
            |e: pingan_domain::area::AreaCodeError| IdentityError::BadArea {
                uri: uri.to_owned(),
                reason: e.to_string(),
            },
        )?;
    Ok((role.parse()?, area))
}

/// A serial as lowercase hex, leading zero bytes dropped.
pub fn hex_serial(raw: &[u8]) -> String {
    let trimmed: &[u8] = match raw.iter().position(|b| *b != 0) {
        Some(i) => &raw[i..],
        None => &raw[raw.len().saturating_sub(1)..],
    };
    trimmed.iter().map(|b| format!("{b:02x}")).collect()
}
