//! 锁定: a form's period closed for an area's subtree. A lock (or an unlock) is a row of `locks`
//! keyed (form, period, root); every change is also appended to `lock_events`, the audit trail.
//! The deepest explicit row over an area decides; without one, the automatic rule (`serve
//! --lock-after-days N`: N days after the form's deadline) does. The writer checks every report
//! against the locks while it holds them, and a lock is written while holding them too, so a
//! lock and a correction arriving together never both half-apply: one of them is first.

use std::collections::HashMap;

use super::db::{Db, DbError, Row, args};
use pingan_domain::{AreaCode, Period, deadline::Deadlines, form::Deadline};

/// One explicit lock or unlock of a form's period for a subtree; or the automatic rule's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub form: String,
    pub period: String,
    /// The subtree's root area code.
    pub root: String,
    pub locked: bool,
    /// Who, as they asked to be named.
    pub by: String,
    /// The certificate (or account) that did it.
    pub identity: String,
    pub at_ms: i64,
    pub reason: String,
}

/// When periods lock by themselves: `after_days` after their form's deadline (0: never).
#[derive(Debug, Clone, Default)]
pub struct LockRule {
    pub after_days: u32,
    pub deadlines: Deadlines,
    /// Each form's own deadline, by id.
    pub forms: HashMap<String, Deadline>,
}

/// The locks in force, as the writer checks them.
#[derive(Debug, Default)]
pub struct Locks {
    records: HashMap<(String, String), Vec<LockRecord>>,
    pub rule: LockRule,
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS locks (
    form      TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    root      TEXT    NOT NULL,
    locked    INTEGER NOT NULL,
    by_name   TEXT    NOT NULL,
    identity  TEXT    NOT NULL,
    at_ms     INTEGER NOT NULL,
    reason    TEXT    NOT NULL,
    PRIMARY KEY (form, period, root)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lock_events (
    at_ms     INTEGER NOT NULL,
    form      TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    root      TEXT    NOT NULL,
    locked    INTEGER NOT NULL,
    by_name   TEXT    NOT NULL,
    identity  TEXT    NOT NULL,
    reason    TEXT    NOT NULL
);
";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The columns [`record`] reads, of `locks` and `lock_events` alike.
pub(super) const COLUMNS: &str = "form, period, root, locked, by_name, identity, at_ms, reason";

/// A row selected with [`COLUMNS`].
pub(super) fn record(r: &Row<'_>) -> Result<LockRecord, DbError> {
    Ok(LockRecord {
        form: r.string(0)?,
        period: r.string(1)?,
        root: r.string(2)?,
        locked: r.flag(3)?,
        by: r.string(4)?,
        identity: r.string(5)?,
        at_ms: r.int(6)?,
        reason: r.string(7)?,
    })
}

impl Locks {
    /// The locks stored.
    pub(super) fn load(db: &Db) -> Result<Locks, DbError> {
        let mut locks = Locks::default();
        db.each(&format!("SELECT {COLUMNS} FROM locks"), &[], |r| {
            locks.put(record(r)?);
            Ok(())
        })?;
        Ok(locks)
    }

    /// Takes a record in (replacing the one of the same form, period and root).
    /// Takes the records of `fresh` (loaded again from the store), keeping the rule.
    pub(super) fn take_records(&mut self, fresh: Locks) {
        self.records = fresh.records;
    }

    pub(super) fn put(&mut self, r: LockRecord) {
        let list = self
            .records
            .entry((r.form.clone(), r.period.clone()))
            .or_default();
        list.retain(|x| x.root != r.root);
        list.push(r);
    }

    /// Writes a record and its audit row in `conn`'s transaction.
    pub(super) fn write(db: &Db, r: &LockRecord) -> Result<(), DbError> {
        const COLUMNS: &str = "form, period, root, locked, by_name, identity, at_ms, reason";
        let values = args![
            &r.form,
            &r.period,
            &r.root,
            r.locked,
            &r.by,
            &r.identity,
            r.at_ms,
            &r.reason
        ];
        db.write(|tx| {
            tx.run(
                &format!(
                    "INSERT INTO locks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (form, period, root) DO UPDATE SET locked = excluded.locked,
                        by_name = excluded.by_name, identity = excluded.identity,
                        at_ms = excluded.at_ms, reason = excluded.reason"
                ),
                values,
            )?;
            tx.run(
                &format!(
                    "INSERT INTO lock_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                values,
            )?;
            Ok(())
        })
    }

    /// The lock that closes `form`'s `period` for `area` at `now_ms`, if any: the deepest
    /// explicit record over the area decides, else the automatic rule.
    pub fn check(
        &self,
        form: &str,
        period: Period,
        area: AreaCode,
        now_ms: i64,
    ) -> Option<LockRecord> {
        let explicit = self
            .records
            .get(&(form.to_owned(), period.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.root.parse::<AreaCode>().ok()?, r)))
            .filter(|(root, _)| area.is_within(*root))
            .max_by_key(|(root, _)| root.level());
        if let Some((_, r)) = explicit {
            return r.locked.then(|| r.clone());
        }
        let rule = &self.rule;
        if rule.after_days == 0 {
            return None;
        }
        let deadline = rule.forms.get(form)?;
        let at = rule.deadlines.due_ms_of(*deadline, period) + i64::from(rule.after_days) * DAY_MS;
        (now_ms > at).then(|| LockRecord {
            form: form.to_owned(),
            period: period.to_string(),
            root: String::new(),
            locked: true,
            by: "自动锁定".into(),
            identity: String::new(),
            at_ms: at,
            reason: format!("截止后 {} 天自动锁定", rule.after_days),
        })
    }

    /// The lock that makes `form`'s `period` final for `area`'s whole subtree at `now_ms`: the
    /// area is locked and no explicit unlock lies below it.
    pub fn final_over(
        &self,
        form: &str,
        period: Period,
        area: AreaCode,
        now_ms: i64,
    ) -> Option<LockRecord> {
        let lock = self.check(form, period, area, now_ms)?;
        let opened_below = self
            .records
            .get(&(form.to_owned(), period.to_string()))
            .into_iter()
            .flatten()
            .filter(|r| !r.locked)
            .filter_map(|r| r.root.parse::<AreaCode>().ok())
            .any(|root| root != area && root.is_within(area));
        (!opened_below).then_some(lock)
    }

    /// Every explicit record, optionally of one period, by form, period and root.
    pub fn list(&self, period: Option<&str>) -> Vec<LockRecord> {
        let mut out: Vec<LockRecord> = self
            .records
            .values()
            .flatten()
            .filter(|r| period.is_none_or(|p| r.period == p))
            .cloned()
            .collect();
        out.sort_by(|a, b| (&a.form, &a.period, &a.root).cmp(&(&b.form, &b.period, &b.root)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(root: &str, locked: bool) -> LockRecord {
        LockRecord {
            form: "zongzhi_monthly".into(),
            period: "2026-10".into(),
            root: root.into(),
            locked,
            by: "县综治中心".into(),
            identity: "pingan://viewer/510722".into(),
            at_ms: 1,
            reason: "月度考核".into(),
        }
    }

    #[test]
    fn the_deepest_record_over_an_area_decides_then_the_automatic_rule() {
        let village: AreaCode = "510722101002".parse().unwrap();
        let other: AreaCode = "510722104001".parse().unwrap();
        let oct: Period = "2026-10".parse().unwrap();
        let mut locks = Locks::default();
        assert_eq!(locks.check("zongzhi_monthly", oct, village, i64::MAX), None);
        locks.put(record("510722", true));
        locks.put(record("510722101", false));
        assert_eq!(
            locks.check("zongzhi_monthly", oct, village, 0),
            None,
            "unlocked for 潼川镇"
        );
        assert!(locks.check("zongzhi_monthly", oct, other, 0).is_some());
        assert_eq!(
            locks.check("disputes_half_monthly", oct, other, 0),
            None,
            "another form"
        );
        locks.rule = LockRule {
            after_days: 10,
            deadlines: Deadlines::default(),
            forms: HashMap::from([("disputes_half_monthly".to_owned(), Deadline::default())]),
        };
        let h2: Period = "2026-10-H2".parse().unwrap();
        let due = Deadlines::default().due_ms_of(Deadline::default(), h2);
        assert_eq!(locks.check("disputes_half_monthly", h2, other, due), None);
        let auto = locks
            .check("disputes_half_monthly", h2, other, due + 11 * DAY_MS)
            .expect("locked by the rule");
        assert_eq!(auto.reason, "截止后 10 天自动锁定");
        assert_eq!(locks.list(Some("2026-10")).len(), 2);
        // the county is locked but 潼川镇 was opened: the county's figures are not final
        let county: AreaCode = "510722".parse().unwrap();
        assert!(locks.check("zongzhi_monthly", oct, county, 0).is_some());
        assert_eq!(locks.final_over("zongzhi_monthly", oct, county, 0), None);
        let other_town: AreaCode = "510722104".parse().unwrap();
        assert!(
            locks
                .final_over("zongzhi_monthly", oct, other_town, 0)
                .is_some()
        );
    }
}
