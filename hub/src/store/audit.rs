//! The audit trail beside the revisions: subtrees owned by child hubs, and refused requests
//! (a flood counted, not mirrored). Written on a side connection: rare, small writes.

use super::db::{Db, args};
use pingan_domain::AreaCode;

use super::{Store, StoreError, schema::configure};

/// How long repeated refusals of one identity, action and area are counted rather than written
/// one row each.
const REFUSALS_WINDOW_MS: i64 = 60_000;

/// Refusals of one identity, action and area within a window, after the first was written.
#[derive(Debug)]
pub(super) struct Repeated {
    since_ms: i64,
    count: u64,
    reason: String,
}

/// A child hub that owns a subtree of this hub's registry (federation): only it may forward
/// rollups for the subtree, and nodes may not submit under it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub root: pingan_domain::AreaCode,
    /// `pingan://hub/AREA`.
    pub identity: String,
    /// The serial of the certificate that claimed the subtree.
    pub serial: String,
    pub since_ms: i64,
}

/// A refused request, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at_ms: i64,
    pub identity: String,
    pub action: String,
    pub area: String,
    pub reason: String,
}

impl Store {
    /// Runs `f` on the side connection (refusals, ownership: rare, small writes).
    fn with_audit<R>(&self, f: impl FnOnce(&Db) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let mut guard = self.audit.lock().expect("not poisoned");
        if guard.is_none() {
            let conn = Db::open(&self.at)?;
            configure(&conn)?;
            *guard = Some(conn);
        }
        let out = f(guard.as_ref().expect("just opened"));
        if out.as_ref().is_err_and(StoreError::is_connection_lost) {
            // a new connection next time (the database failed over, say)
            guard.take();
        }
        out
    }

    /// Records that `owner` owns its subtree, durably, unless `check` refuses: `check` is given
    /// every claim stored, read in the same transaction, and claims (from any hub process on
    /// the store) are made one at a time, so two overlapping claims can never both be stored.
    /// `check` answers true when the claim is there already. Returns every claim after, and
    /// `check`'s refusal or whether this claim was stored now.
    pub fn claim_owner<E>(
        &self,
        owner: &Owner,
        check: impl FnOnce(&[Owner]) -> Result<bool, E>,
    ) -> Result<(Vec<Owner>, Result<bool, E>), StoreError> {
        let mut check = Some(check);
        self.with_audit(|conn| {
            conn.write(|tx| {
                if matches!(tx, Db::Postgres(_)) {
                    tx.batch("SELECT pg_advisory_xact_lock(7231005)")?;
                }
                let mut claims = owners_in(tx)?;
                let check = check.take().expect("called once");
                let verdict = match check(&claims) {
                    Ok(false) => {
                        tx.run(
                            "INSERT INTO owners (root, identity, serial, since_ms) VALUES (?1, ?2, ?3, ?4)",
                            args![
                                &owner.root.to_string(),
                                &owner.identity,
                                &owner.serial,
                                owner.since_ms
                            ],
                        )?;
                        claims.push(owner.clone());
                        claims.sort_by_key(|o| o.root.to_string());
                        Ok(true)
                    }
                    Ok(true) => Ok(false),
                    Err(e) => Err(e),
                };
                Ok((claims, verdict))
            })
        })
    }

    /// Forgets the owner of `root` (a replaced child hub); true when there was one.
    pub fn release_owner(&self, root: AreaCode) -> Result<bool, StoreError> {
        self.with_audit(|conn| {
            Ok(conn.run(
                "DELETE FROM owners WHERE root = ?1",
                args![&root.to_string()],
            )? > 0)
        })
    }

    /// Records a refused request in the audit trail, durably. A flood is recorded, not
    /// mirrored: the first refusal of an identity, action and area is written at once, the
    /// ones after it within a minute are counted and written as one row ("×N") when the minute
    /// is over (on the next refusal, or when the store closes).
    pub fn record_refusal(
        &self,
        identity: &str,
        action: &str,
        area: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.flush_repeated(now);
        let key = (identity.to_owned(), action.to_owned(), area.to_owned());
        {
            let mut repeated = self.repeated.lock().expect("not poisoned");
            if let Some(r) = repeated.get_mut(&key) {
                r.count += 1;
                reason.clone_into(&mut r.reason);
                return Ok(());
            }
            repeated.insert(
                key,
                Repeated {
                    since_ms: now,
                    count: 0,
                    reason: reason.to_owned(),
                },
            );
        }
        self.insert_refusal(now, identity, action, area, reason)
    }

    /// Writes the counted refusals whose minute is over by `now_ms`.
    pub(super) fn flush_repeated(&self, now_ms: i64) {
        let due: Vec<((String, String, String), Repeated)> = {
            let mut repeated = self.repeated.lock().expect("not poisoned");
            let keys: Vec<_> = repeated
                .iter()
                .filter(|(_, r)| now_ms.saturating_sub(r.since_ms) >= REFUSALS_WINDOW_MS)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| repeated.remove_entry(&k))
                .collect()
        };
        for ((identity, action, area), r) in due.into_iter().filter(|(_, r)| r.count > 0) {
            let reason = format!(
                "×{} more since {} (the last: {})",
                r.count,
                crate::clock::minute_text(r.since_ms),
                r.reason
            );
            let at = now_ms.min(chrono::Utc::now().timestamp_millis());
            if let Err(e) = self.insert_refusal(at, &identity, &action, &area, &reason) {
                tracing::error!(error = %e, "could not record repeated refusals");
            }
        }
    }

    fn insert_refusal(
        &self,
        at_ms: i64,
        identity: &str,
        action: &str,
        area: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.with_audit(|conn| {
            conn.run(
                "INSERT INTO refusals (at_ms, identity, action, area, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                args![at_ms, identity, action, area, reason],
            )?;
            Ok(())
        })
    }
}

/// Every claim stored, by root.
pub(super) fn owners_in(db: &Db) -> Result<Vec<Owner>, StoreError> {
    let rows = db.all(
        "SELECT root, identity, serial, since_ms FROM owners ORDER BY root",
        &[],
        |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?, r.int(3)?)),
    )?;
    let mut out = Vec::new();
    for (root, identity, serial, since_ms) in rows {
        let root = root.parse().map_err(|e| StoreError::Corrupt {
            area: root.clone(),
            period: String::new(),
            reason: format!("owner of a bad area code: {e}"),
        })?;
        out.push(Owner {
            root,
            identity,
            serial,
            since_ms,
        });
    }
    Ok(out)
}
