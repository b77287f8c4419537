//! Who owns which subtree (federation). A child hub's first forwarded rollup claims the subtree
//! its certificate names; from then on only that certificate may forward for it, and nodes may
//! not submit under it directly (their forms go to the child hub). Claims are durable (the
//! store's `owners` table) and are released by the operator (`pingan-hub owners release`).

use std::sync::{Mutex, RwLock};

use pingan_domain::AreaCode;

use crate::{
    access::tls::Identity,
    store::{Owner, Store, StoreError},
};

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
        if check(&self.claims.read().expect("not poisoned"))? {
            return Ok(());
        }
        let owner = Owner {
            root: hub.area,
            identity: hub.uri(),
            serial: hub.serial.clone(),
            since_ms: now_ms,
        };
        store.claim_owner(&owner)?;
        tracing::info!(root = %owner.root, identity = %owner.identity, serial = %owner.serial, "subtree claimed by a child hub");
        self.claims.write().expect("not poisoned").push(owner);
        Ok(())
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
