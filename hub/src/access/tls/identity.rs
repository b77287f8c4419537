//! The identity a certificate carries: one URI SAN `pingan://ROLE/AREA`, e.g.
//! `pingan://node/510722101001`, plus its serial (for revocation). A department's (条) node
//! names its department after its area: `pingan://node/510722/sw-510722` (三台县商务局).

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
    #[error("{0:?}: expected pingan://ROLE/AREA or pingan://node/AREA/DEPARTMENT")]
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
    /// A department's node: the department's id (its area is `area`).
    pub department: Option<String>,
    /// Certificate serial, lowercase hex.
    pub serial: String,
}

impl Identity {
    /// `pingan://ROLE/AREA`.
    pub fn uri(&self) -> String {
        match &self.department {
            Some(d) => department_uri(self.area, d),
            None => identity_uri(self.role, self.area),
        }
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
        let (role, area, department) = parse_identity(uri)?;
        Ok(Identity {
            role,
            area,
            department,
            serial,
        })
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

/// `pingan://node/AREA/DEPARTMENT`: a department's node.
pub fn department_uri(area: AreaCode, department: &str) -> String {
    format!("pingan://{}/{area}/{department}", Role::Node.as_str())
}

/// Parses `pingan://ROLE/AREA`, or a department's `pingan://node/AREA/DEPARTMENT`.
pub fn parse_uri(uri: &str) -> Result<(Role, AreaCode), IdentityError> {
    parse_identity(uri).map(|(role, area, _)| (role, area))
}

/// Parses an identity URI: role, area and, for a department's node, the department's id.
pub fn parse_identity(uri: &str) -> Result<(Role, AreaCode, Option<String>), IdentityError> {
    let rest = uri
        .strip_prefix("pingan://")
        .ok_or_else(|| IdentityError::NotPingan(uri.to_owned()))?;
    let (role, area) = rest
        .split_once('/')
        .ok_or_else(|| IdentityError::Malformed(uri.to_owned()))?;
    let (area, department) = match area.split_once('/') {
        Some((area, d))
            if role == Role::Node.as_str() && pingan_domain::department::valid_id(d) =>
        {
            (area, Some(d.to_owned()))
        }
        Some(_) => return Err(IdentityError::Malformed(uri.to_owned())),
        None => (area, None),
    };
    let area =
        area.parse().map_err(
            |e: pingan_domain::area::AreaCodeError| IdentityError::BadArea {
                uri: uri.to_owned(),
                reason: e.to_string(),
            },
        )?;
    Ok((role.parse()?, area, department))
}

/// A serial as lowercase hex, leading zero bytes dropped.
pub fn hex_serial(raw: &[u8]) -> String {
    let trimmed: &[u8] = match raw.iter().position(|b| *b != 0) {
        Some(i) => &raw[i..],
        None => &raw[raw.len().saturating_sub(1)..],
    };
    trimmed.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_department_node_names_its_department_after_its_area() {
        let (role, area, department) = parse_identity("pingan://node/510722/sw-510722").unwrap();
        assert_eq!((role, area.to_string()), (Role::Node, "510722".to_owned()));
        assert_eq!(department.as_deref(), Some("sw-510722"));
        assert_eq!(
            department_uri(area, "sw-510722"),
            "pingan://node/510722/sw-510722"
        );
        assert_eq!(
            parse_uri("pingan://node/510722/sw-510722").unwrap().0,
            Role::Node
        );
        // only nodes are departments, and an id is never a code
        for bad in [
            "pingan://viewer/510722/sw-510722",
            "pingan://node/510722/510722101",
            "pingan://node/510722/sw/x",
        ] {
            assert!(
                matches!(parse_identity(bad), Err(IdentityError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_identity("pingan://hub/5107").unwrap().2, None);
    }
}
