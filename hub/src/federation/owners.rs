//! Who owns which subtree (federation). A child hub's first forwarded rollup claims the subtree
//! its certificate names; from then on only that certificate may forward for it, and nodes may
//! not submit under it directly (their forms go to the child hub). Claims are durable (the
//! store's `owners` table) and are released by the operator (`pingan-hub owners release`).

use std::{
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use pingan_domain::AreaCode;

use crate::{
    access::tls::Identity,
    store::{Owner, Store, StoreError},
};

/// How often [`Owners::keep_fresh`] reads the claims again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// A second child hub claiming a subtree that overlaps an owned one.
#[derive(Debug, thiserror::Error)]
#[error(
    "{claimant} (certificate {serial}) cannot forward for {root}: {owned} is already owned by {owner} (certificate {owner_serial}, since {since}); one child hub per subtree: release it first with `pingan-hub owners release {owned}` if that hub was replaced"
)]
pub struct Conflict {
    pub claimant: String,
    pub serial: String,
    pub root: AreaCode,
    pub owned: AreaCode,
    pub owner: String,
    pub owner_serial: String,
    pub since: String,
}

/// Why a write was refused for ownership reasons.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error(transparent)]
    Conflict(Box<Conflict>),
    /// A node submits under a subtree a child hub owns.
    #[error(
        "{area} lies in {root}, which child hub {owner} reports for: submit {area}'s forms to that hub, not to this one"
    )]
    Delegated {
        area: AreaCode,
        root: AreaCode,
        owner: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The subtrees owned by child hubs.
#[derive(Debug, Default)]
pub struct Owners {
    claims: RwLock<Vec<Owner>>,
    /// Claims are made one at a time (check, then insert).
    claiming: Mutex<()>,
}

fn overlaps(a: AreaCode, b: AreaCode) -> bool {
    a.is_within(b) || b.is_within(a)
}

impl Owners {
    /// The claims stored in `store`.
    pub fn load(store: &Store) -> Result<Owners, StoreError> {
        Ok(Owners {
            claims: RwLock::new(store.reader()?.owners()?),
            claiming: Mutex::new(()),
        })
    }

    /// Every claim.
    pub fn list(&self) -> Vec<Owner> {
        self.claims.read().expect("not poisoned").clone()
    }

    /// Lets `hub` forward for its subtree: its own claim, made now if the subtree is free.
    pub fn claim(&self, store: &Store, hub: &Identity, now_ms: i64) -> Result<(), OwnershipError> {
        let check = |claims: &[Owner]| -> Result<bool, OwnershipError> {
            let Some(o) = claims.iter().find(|o| overlaps(o.root, hub.area)) else {
                return Ok(false);
            };
            if o.root == hub.area && o.serial == hub.serial {
                return Ok(true);
            }
            Err(OwnershipError::Conflict(Box::new(Conflict {
                claimant: hub.uri(),
                serial: hub.serial.clone(),
                root: hub.area,
                owned: o.root,
                owner: o.identity.clone(),
                owner_serial: o.serial.clone(),
                since: crate::clock::minute_text(o.since_ms),
            })))
        };
        if check(&self.claims.read().expect("not poisoned"))? {
            return Ok(());
        }
        let _one = self.claiming.lock().expect("not poisoned");
        let owner = Owner {
            root: hub.area,
            identity: hub.uri(),
            serial: hub.serial.clone(),
            since_ms: now_ms,
        };
        // checked again against the store's claims, in the transaction that stores this one:
        // another hub process on the store may have taken the subtree meanwhile
        let (claims, verdict) = store.claim_owner(&owner, check)?;
        *self.claims.write().expect("not poisoned") = claims;
        if verdict? {
            tracing::info!(root = %owner.root, identity = %owner.identity, serial = %owner.serial, "subtree claimed by a child hub");
        }
        Ok(())
    }

    /// Reads the claims again from the store: what other hub processes on it claimed or
    /// released since.
    pub fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let _one = self.claiming.lock().expect("not poisoned");
        let claims = store.reader()?.owners()?;
        *self.claims.write().expect("not poisoned") = claims;
        Ok(())
    }

    /// Refreshes the claims every [`REFRESH_EVERY`] until `shutdown` (several hub processes on
    /// one PostgreSQL store: a node's report into a subtree another process gave to a child hub
    /// is refused here too, within that time).
    pub fn keep_fresh(
        self: Arc<Self>,
        store: Arc<Store>,
        shutdown: pingan_outbox::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                    () = shutdown.cancelled() => return,
                }
                let (owners, store) = (self.clone(), store.clone());
                match tokio::task::spawn_blocking(move || owners.refresh(&store)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "reading the child hubs' claims again")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading the child hubs' claims panicked")
                    }
                }
            }
        })
    }

    /// Releases `root` (its child hub was replaced); true when it was owned.
    pub fn release(&self, store: &Store, root: AreaCode) -> Result<bool, StoreError> {
        let _one = self.claiming.lock().expect("not poisoned");
        let released = store.release_owner(root)?;
        self.claims
            .write()
            .expect("not poisoned")
            .retain(|o| o.root != root);
        Ok(released)
    }

    /// Refuses a node's report for an area inside a subtree a child hub owns.
    pub fn check_submit(&self, area: AreaCode) -> Result<(), OwnershipError> {
        match self
            .claims
            .read()
            .expect("not poisoned")
            .iter()
            .find(|o| area.is_within(o.root))
        {
            Some(o) => Err(OwnershipError::Delegated {
                area,
                root: o.root,
                owner: o.identity.clone(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{access::tls::identity::Role, store::StoreAt};

    use super::*;

    fn hub(area: &str, serial: &str) -> Identity {
        Identity {
            role: Role::Hub,
            area: area.parse().unwrap(),
            department: None,
            serial: serial.into(),
        }
    }

    #[test]
    fn overlapping_claims_through_two_hub_processes_are_decided_by_the_store() {
        let Some(at) = StoreAt::fresh_test_database() else {
            // one process on SQLite: the claim still goes through the store's check
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_at(dir.path(), StoreAt::new(dir.path(), None), None).unwrap();
            let owners = Owners::load(&store).unwrap();
            owners.claim(&store, &hub("510722", "a1"), 1).unwrap();
            let err = owners.claim(&store, &hub("5107", "b2"), 2).unwrap_err();
            assert!(matches!(err, OwnershipError::Conflict(_)), "{err}");
            return;
        };
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Store::open_at(da.path(), at.clone(), None).unwrap();
        let b = Store::open_at(db.path(), at, None).unwrap();
        let (owners_a, owners_b) = (Owners::load(&a).unwrap(), Owners::load(&b).unwrap());
        // a county hub claims its subtree through process a
        owners_a.claim(&a, &hub("510722", "a1"), 1).unwrap();
        // process b has not refreshed yet; a city hub's claim over it is still refused, by the
        // store's own check
        let err = owners_b.claim(&b, &hub("5107", "b2"), 2).unwrap_err();
        let OwnershipError::Conflict(c) = &err else {
            panic!("not a conflict: {err}")
        };
        assert_eq!(c.owned.to_string(), "510722");
        assert_eq!(b.reader().unwrap().owners().unwrap().len(), 1);
        // and process b learnt the claim from it: a node's report under it is refused there
        assert!(
            owners_b
                .check_submit("510722101002".parse().unwrap())
                .is_err()
        );
        // released through a (`owners release` on one process): b sees it after a refresh
        assert!(owners_a.release(&a, "510722".parse().unwrap()).unwrap());
        owners_b.refresh(&b).unwrap();
        assert!(
            owners_b
                .check_submit("510722101002".parse().unwrap())
                .is_ok()
        );
        owners_b.claim(&b, &hub("5107", "b2"), 3).unwrap();
        owners_a.refresh(&a).unwrap();
        assert_eq!(owners_a.list().len(), 1);
        assert_eq!(owners_a.list()[0].serial, "b2");
    }
}
