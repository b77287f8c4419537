//! Authorization, from the client certificate and never from the payload: a node submits for
//! its own area (or a subtree the hub's grants file gives it), a viewer reads its area's subtree,
//! a hub identity is for federation. Every refusal is PERMISSION_DENIED naming the identity and
//! the area, and is recorded in the store's audit trail.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use pingan_domain::AreaCode;
use serde::Deserialize;
use tonic::{Request, Status};

use crate::{
    access::tls::{Identity, Role, ServerTls, identity::parse_uri},
    store::Store,
};

/// Why a caller may not do what it asked: the reason, naming the identity and the area.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// What a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submit,
    /// A child hub's rollup (federation).
    Forward,
    Read,
    /// Locking or unlocking a period (锁定): a leader of the subtree.
    Lock,
    /// Approving or returning a report (审核): a leader of an area above it.
    Review,
}

impl Action {
    /// The action as the audit trail names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::Forward => "forward",
            Action::Read => "read",
            Action::Lock => "lock",
            Action::Review => "review",
        }
    }
}

/// A subtree granted to an identity beyond its own area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub identity: String,
    pub subtree: AreaCode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    #[serde(default)]
    grant: Vec<GrantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantEntry {
    identity: String,
    subtree: String,
}

/// Reads a grants file:
/// ```toml
/// [[grant]]
/// identity = "pingan://node/510722101"   # 潼川镇 enters its villages' paper forms
/// subtree = "510722101"
/// ```
pub fn load_grants(path: &Path) -> anyhow::Result<Vec<Grant>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let file: GrantsFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    file.grant
        .into_iter()
        .map(|g| {
            parse_uri(&g.identity).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let subtree = g
                .subtree
                .parse()
                .map_err(|e| anyhow::anyhow!("{}: grant of {}: {e}", path.display(), g.identity))?;
            Ok(Grant {
                identity: g.identity,
                subtree,
            })
        })
        .collect()
}

/// The hub's access rules.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    /// `None`: plaintext, no identities (`--insecure`), everything allowed.
    tls: Option<Arc<ServerTls>>,
    grants: Vec<Grant>,
    /// Identities already read, by their certificate's DER: a connection sends the same
    /// certificate with every request, and parsing it was 5% of a unary `Submit`.
    read: Arc<Mutex<HashMap<Vec<u8>, Identity, foldhash::fast::RandomState>>>,
}

/// Certificates remembered by [`Authorizer::identity`] before the memory is emptied (a hub sees
/// one per node and leader, far fewer than this).
const IDENTITIES_KEPT: usize = 4096;

impl Authorizer {
    /// No TLS, no identities: everything is allowed (`--insecure`).
    pub fn insecure() -> Authorizer {
        Authorizer::default()
    }

    /// Mutual TLS with these grants.
    pub fn mtls(tls: Arc<ServerTls>, grants: Vec<Grant>) -> Authorizer {
        Authorizer {
            tls: Some(tls),
            grants,
            read: Arc::default(),
        }
    }

    /// The TLS configuration, when serving TLS.
    pub fn tls(&self) -> Option<&Arc<ServerTls>> {
        self.tls.as_ref()
    }

    /// Who is calling: `Ok(None)` in insecure mode; refused when the certificate is missing,
    /// carries no pingan identity or has been revoked since the connection opened (that refusal
    /// is recorded in the audit trail like any other).
    pub fn identity<T>(&self, store: &Store, req: &Request<T>) -> Result<Option<Identity>, Status> {
        let Some(_) = &self.tls else {
            return Ok(None);
        };
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let id = self.read_identity(leaf.as_ref())?;
        self.not_revoked(store, &id)?;
        Ok(Some(id))
    }

    /// The identity a certificate carries, read once per certificate.
    fn read_identity(&self, der: &[u8]) -> Result<Identity, Status> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = read.get(der) {
            return Ok(id.clone());
        }
        let id = Identity::from_der(der).map_err(|e| Status::permission_denied(e.to_string()))?;
        if read.len() >= IDENTITIES_KEPT {
            read.clear();
        }
        read.insert(der.to_vec(), id.clone());
        Ok(id)
    }

    /// Refuses (and records) a certificate on the deny list. Checked for every request, and
    /// for every report of a stream: a serial denied while a stream is open stops it there.
    pub fn not_revoked(&self, store: &Store, id: &Identity) -> Result<(), Status> {
        match &self.tls {
            Some(tls) if tls.is_denied(&id.serial) => {
                let reason = format!("{id}: certificate {} has been revoked", id.serial);
                let who = id.uri();
                tracing::warn!(identity = %who, %reason, "refused");
                if let Err(e) = store.record_refusal(&who, "connect", &id.area.to_string(), &reason)
                {
                    tracing::error!(error = %e, "could not record a refusal in the audit trail");
                }
                Err(Status::permission_denied(reason))
            }
            _ => Ok(()),
        }
    }

    /// Whether `id` may do `action` on `area`; the refusal names both.
    pub fn check(
        &self,
        id: Option<&Identity>,
        action: Action,
        area: AreaCode,
    ) -> Result<(), Denied> {
        let Some(id) = id else { return Ok(()) };
        let granted = || {
            let uri = id.uri();
            self.grants
                .iter()
                .any(|g| g.identity == uri && area.is_within(g.subtree))
        };
        if let Some(d) = &id.department {
            return Err(Denied(format!(
                "{id} 是部门 {d} 的证书，只能报送该部门的报表，不能报送区划 {area} 的报表 (a department's certificate submits its department's form only)"
            )));
        }
        let refusal = match (action, id.role) {
            (Action::Submit, Role::Node) if area == id.area || granted() => None,
            (Action::Submit, Role::Node) => Some(format!(
                "{id} may submit only for its own area {} (and granted subtrees), not for {area}",
                id.area
            )),
            (Action::Forward, Role::Hub) if area.is_within(id.area) => None,
            (Action::Forward, Role::Hub) => Some(format!(
                "{id} may forward rollups only within {}, not for {area}",
                id.area
            )),
            (Action::Forward, role) => Some(format!(
                "{id} is a {} certificate; only a hub certificate may forward rollups (for {area})",
                role.as_str()
            )),
            (Action::Read, Role::Viewer) if area.is_within(id.area) || granted() => None,
            (Action::Read, Role::Viewer) => {
                Some(format!("{id} may read only within {}, not {area}", id.area))
            }
            (Action::Submit, Role::Hub) => Some(format!(
                "{id} is a hub certificate: a hub forwards rollups, it does not submit forms (for {area})"
            )),
            (Action::Submit, role) => Some(format!(
                "{id} is a {} certificate and may not submit reports (for {area})",
                role.as_str()
            )),
            (Action::Review, Role::Viewer)
                if (area.is_within(id.area) && area != id.area) || granted() =>
            {
                None
            }
            (Action::Review, role) => Some(format!(
                "{id} may not review {area}: a report is reviewed by a leader's viewer certificate of an area above it ({})",
                role.as_str()
            )),
            (Action::Lock, Role::Viewer) if area.is_within(id.area) || granted() => None,
            (Action::Lock, Role::Viewer) => Some(format!(
                "{id} may lock or unlock only within {}, not {area}",
                id.area
            )),
            (Action::Lock, role) => Some(format!(
                "{id} is a {} certificate: only a leader's viewer certificate for the area locks or unlocks its periods ({area})",
                role.as_str()
            )),
            (Action::Read, role) => Some(format!(
                "{id} is a {} certificate and may not read (area {area}); use a viewer certificate",
                role.as_str()
            )),
        };
        refusal.map_or(Ok(()), |reason| Err(Denied(reason)))
    }

    /// Whether `id` may submit the report of department `department` (belonging to `area`): only
    /// that department's own node certificate may.
    pub fn check_department(
        &self,
        id: Option<&Identity>,
        department: &str,
        area: AreaCode,
    ) -> Result<(), Denied> {
        let Some(id) = id else { return Ok(()) };
        match (&id.department, id.role) {
            (Some(d), Role::Node) if d == department && id.area == area => Ok(()),
            // a child hub forwards the reports of the departments within its area
            (None, Role::Hub) if area.is_within(id.area) => Ok(()),
            (Some(d), Role::Node) if d == department => Err(Denied(format!(
                "{id} 的证书写的所属区划是 {}，部门名录里 {department} 属于 {area}：请按名录重新签发证书",
                id.area
            ))),
            _ => Err(Denied(format!(
                "{id} 不能报送部门 {department} 的报表：部门的报表只由该部门自己的 node 证书（pingan://node/{area}/{department}）报送"
            ))),
        }
    }

    /// [`Authorizer::check_department`], recorded and turned into PERMISSION_DENIED like
    /// [`Authorizer::require`].
    pub fn require_department(
        &self,
        store: &Store,
        id: Option<&Identity>,
        department: &str,
        area: AreaCode,
    ) -> Result<(), Status> {
        self.check_department(id, department, area)
            .map_err(|Denied(reason)| {
                record_refusal(store, id, Action::Submit, area, &reason);
                Status::permission_denied(reason)
            })
    }

    /// [`Authorizer::check`], with the refusal recorded in the audit trail and turned into
    /// PERMISSION_DENIED.
    pub fn require(
        &self,
        store: &Store,
        id: Option<&Identity>,
        action: Action,
        area: AreaCode,
    ) -> Result<(), Status> {
        self.check(id, action, area).map_err(|Denied(reason)| {
            record_refusal(store, id, action, area, &reason);
            Status::permission_denied(reason)
        })
    }
}

impl Authorizer {
    /// Whether `id` may ask about the whole registry ([`crate::query::engine::NATION`]).
    /// Certificates name one area, and no area is the nation, so only a hub serving without
    /// mutual TLS answers national questions; with mutual TLS they are refused and recorded.
    pub fn require_nation(
        &self,
        store: &Store,
        id: Option<&Identity>,
        action: Action,
    ) -> Result<(), Status> {
        if self.tls.is_none() {
            return Ok(());
        }
        let who = id.map(Identity::uri).unwrap_or_default();
        let reason = format!(
            "{who} may not read the whole registry: certificates name one area, and none is the nation"
        );
        tracing::warn!(identity = %who, area = crate::query::engine::NATION, action = action.as_str(), %reason, "refused");
        if let Err(e) =
            store.record_refusal(&who, action.as_str(), crate::query::engine::NATION, &reason)
        {
            tracing::error!(error = %e, "could not record a refusal in the audit trail");
        }
        Err(Status::permission_denied(reason))
    }
}

/// Logs a refused write or read and records it in the store's audit trail (a failure to record
/// is logged, never turned into a different answer).
pub fn record_refusal(
    store: &Store,
    id: Option<&Identity>,
    action: Action,
    area: AreaCode,
    reason: &str,
) {
    let who = id.map(Identity::uri).unwrap_or_default();
    tracing::warn!(identity = %who, %area, action = action.as_str(), %reason, "refused");
    if let Err(e) = store.record_refusal(&who, action.as_str(), &area.to_string(), reason) {
        tracing::error!(error = %e, "could not record a refusal in the audit trail");
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};

    use super::*;
    use crate::access::tls::certs::{IssueRequest, issue_with, new_ca};

    #[test]
    fn a_certificate_is_read_once_and_its_identity_given_again() {
        let (ca, ca_key) = new_ca("test CA").unwrap();
        let area: AreaCode = "510722101001".parse().unwrap();
        let issued = issue_with(
            &ca,
            &ca_key,
            &IssueRequest::valid_for_days(Role::Node, area, 1),
        )
        .unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let auth = Authorizer::insecure();
        let first = auth.read_identity(der.as_ref()).unwrap();
        assert_eq!((first.role, first.area), (Role::Node, area));
        assert_eq!(first.serial, issued.serial);
        assert_eq!(auth.read.lock().unwrap().len(), 1);
        assert_eq!(auth.read_identity(der.as_ref()).unwrap(), first);
        assert_eq!(auth.read.lock().unwrap().len(), 1);
        // what is not a certificate is refused every time and never remembered
        let refused = auth.read_identity(b"not a certificate").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(auth.read.lock().unwrap().len(), 1);
    }
}
