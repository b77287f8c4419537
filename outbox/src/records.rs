//! Keyed records in the outbox: what a hub forwards to its parent is one record per (area,
//! period), recomputed whenever reports under it change. Each change is written as the record's
//! next generation (a new submission, so the parent stores it as the next revision); a newer
//! generation supersedes the one still waiting, so the backlog stays one entry per record however
//! long the parent is away. What was last written (generation and digest) is kept beside the
//! outbox and committed with the entry, so an unchanged record is never written again.
//!
//! The tables (`forward_meta`, `forward_state`) keep the names they had when the hub kept them
//! itself: existing outboxes open unchanged.

use pingan_domain::pb;
use rusqlite::{OptionalExtension as _, params};

use crate::outbox::{Outbox, OutboxError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS forward_meta (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forward_state (
    area    TEXT    NOT NULL,
    period  TEXT    NOT NULL,
    generation     INTEGER NOT NULL,
    digest  BLOB    NOT NULL,
    PRIMARY KEY (area, period)
) WITHOUT ROWID;
";

/// What was last written for one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastWritten {
    /// 0: never written.
    pub generation: u32,
    pub digest: Option<Vec<u8>>,
}

/// A record's next generation, ready to be written.
#[derive(Debug, Clone)]
pub struct NextRecord {
    /// The report; its reporter (area, or department) and period are the record's key.
    pub report: pb::Report,
    pub generation: u32,
    pub digest: Vec<u8>,
}

/// An outbox of keyed records.
#[derive(Debug)]
pub struct Records {
    outbox: Outbox,
    instance: String,
}

impl Records {
    /// Opens the records kept in `outbox`, creating their bookkeeping if needed.
    pub fn open(outbox: Outbox) -> Result<Records, OutboxError> {
        let conn = outbox.conn();
        conn.execute_batch(SCHEMA)?;
        let instance: Option<String> = conn
            .query_row(
                "SELECT value FROM forward_meta WHERE key = 'instance'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let instance = match instance {
            Some(i) => i,
            None => {
                let i = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                conn.execute(
                    "INSERT INTO forward_meta (key, value) VALUES ('instance', ?1)",
                    [&i],
                )?;
                i
            }
        };
        Ok(Records { outbox, instance })
    }

    /// Random per outbox database: submission ids built with it never repeat, even after a
    /// reinstall.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// What was last written for the record (`area`, `period`).
    pub fn last(&self, area: &str, period: &str) -> Result<LastWritten, OutboxError> {
        Ok(self
            .outbox
            .conn()
            .query_row(
                "SELECT generation, digest FROM forward_state WHERE area = ?1 AND period = ?2",
                [area, period],
                |r| {
                    Ok(LastWritten {
                        generation: r.get(0)?,
                        digest: Some(r.get(1)?),
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Writes these records' next generations as pending, all or none; an older generation of
    /// the same record still waiting (or delivered) is removed in the same transaction.
    pub fn write(&mut self, next: &[NextRecord]) -> Result<(), OutboxError> {
        self.outbox.enqueue_with(next.iter().map(|n| &n.report), |tx| {
            let mut drop_old = tx.prepare_cached(
                "DELETE FROM outbox WHERE area = ?1 AND period = ?2 AND state IN ('pending', 'delivered')",
            )?;
            let mut remember = tx.prepare_cached(
                "INSERT OR REPLACE INTO forward_state (area, period, generation, digest) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for n in next {
                let (a, p) = (crate::outbox::reporter_key(&n.report), &n.report.period);
                drop_old.execute(params![a, p])?;
                remember.execute(params![a, p, n.generation, n.digest])?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(area: &str, period: &str, generation: u32, value: i64) -> NextRecord {
        NextRecord {
            report: pb::Report {
                submission_id: format!("fwd-{area}-{period}-{generation}"),
                area: area.into(),
                period: period.into(),
                values: vec![pb::MetricValue {
                    metric: "grid.visits".into(),
                    total: Some(value),
                    ..Default::default()
                }],
                ..Default::default()
            },
            generation,
            digest: vec![generation as u8],
        }
    }

    #[test]
    fn a_newer_generation_supersedes_the_one_waiting_and_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Records::open(Outbox::open(dir.path()).unwrap()).unwrap();
        let instance = records.instance().to_owned();
        assert_eq!(
            records.last("510722", "2026-10").unwrap(),
            LastWritten::default()
        );

        records
            .write(&[
                record("510722", "2026-10", 1, 5),
                record("510722", "2026-09", 1, 7),
            ])
            .unwrap();
        records.write(&[record("510722", "2026-10", 2, 6)]).unwrap();
        assert_eq!(
            records.last("510722", "2026-10").unwrap(),
            LastWritten {
                generation: 2,
                digest: Some(vec![2])
            }
        );
        // one entry per record waits: the first generation of 2026-10 is gone
        let waiting: Vec<String> = records
            .outbox
            .list()
            .unwrap()
            .into_iter()
            .map(|e| e.submission_id)
            .collect();
        assert_eq!(waiting, ["fwd-510722-2026-09-1", "fwd-510722-2026-10-2"]);

        // the instance is the outbox's, kept across openings
        drop(records);
        let again = Records::open(Outbox::open(dir.path()).unwrap()).unwrap();
        assert_eq!(again.instance(), instance);
    }

    #[test]
    fn a_departments_report_is_its_own_record_beside_its_areas() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = Records::open(Outbox::open(dir.path()).unwrap()).unwrap();
        let department = |id: &str, generation: u32| {
            let mut r = record("510722", "2026-10", generation, 1);
            r.report.department = id.into();
            r.report.submission_id = format!("fwd-{id}-2026-10-{generation}");
            r
        };
        records
            .write(&[
                record("510722", "2026-10", 1, 5),
                department("sw-510722", 1),
                department("gzw-510722", 1),
            ])
            .unwrap();
        records.write(&[department("sw-510722", 2)]).unwrap();
        assert_eq!(records.last("sw-510722", "2026-10").unwrap().generation, 2);
        assert_eq!(records.last("510722", "2026-10").unwrap().generation, 1);
        let waiting: Vec<(String, String)> = records
            .outbox
            .list()
            .unwrap()
            .into_iter()
            .map(|e| (e.area, e.submission_id))
            .collect();
        assert_eq!(
            waiting,
            [
                ("510722".into(), "fwd-510722-2026-10-1".into()),
                ("gzw-510722".into(), "fwd-gzw-510722-2026-10-1".into()),
                ("sw-510722".into(), "fwd-sw-510722-2026-10-2".into()),
            ]
        );
    }
}
