//! The writer thread: concurrent submissions committed together (group commit), each group
//! handed to the commit hook before any of its receipts is sent.

use std::collections::HashMap;

use pingan_domain::{ValidReport, pb};
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{CommitHook, Committed, MAX_REVISIONS, Prior, StoreError, reader::decode_values};

/// Most submissions committed in one transaction.
pub(super) const MAX_GROUP: usize = 2048;

pub(super) struct Job {
    pub(super) report: ValidReport,
    pub(super) sender: String,
    pub(super) now_ms: i64,
    pub(super) reply: oneshot::Sender<Result<pb::Receipt, StoreError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("submission_id", &self.report.submission_id)
            .finish()
    }
}

pub(super) fn run_writer(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    hook: Option<CommitHook>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        match write_group(&mut conn, &group) {
            Ok((results, committed)) => {
                if let Some(hook) = &hook {
                    hook(&committed);
                }
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, reports = group.len(), "group commit failed, nothing of it stored");
                let message = e.to_string();
                for job in group {
                    let err = match &e {
                        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
                        _ => StoreError::Corrupt {
                            area: job.report.area.to_string(),
                            period: job.report.period.to_string(),
                            reason: format!("not stored: {message}"),
                        },
                    };
                    let _ = job.reply.send(Err(err));
                }
            }
        }
    }
}

/// Writes a group in one transaction. The outer error fails the whole group (nothing of it is
/// stored); inner errors concern one submission only.
type GroupOutcome = (Vec<Result<pb::Receipt, StoreError>>, Vec<Committed>);

fn write_group(conn: &mut Connection, group: &[Job]) -> Result<GroupOutcome, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from_sqlite)?;
    let mut results = Vec::with_capacity(group.len());
    let mut committed = Vec::with_capacity(group.len());
    {
        let mut find = tx
            .prepare_cached("SELECT area, period, revision, digest, received_at_ms, warnings FROM revisions WHERE submission_id = ?1")
            .map_err(StoreError::from_sqlite)?;
        let mut latest = tx
            .prepare_cached(
                "SELECT revision, zero_report, vals, (SELECT received_at_ms FROM revisions WHERE area = ?1 AND period = ?2 AND revision = 1)
                 FROM revisions WHERE area = ?1 AND period = ?2 ORDER BY revision DESC LIMIT 1",
            )
            .map_err(StoreError::from_sqlite)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO revisions (area, period, revision, submission_id, digest, received_at_ms, sender, reporter, zero_report, notes, warnings, vals)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(StoreError::from_sqlite)?;
        let mut added: HashMap<String, i64> = HashMap::new();
        for job in group {
            let r = &job.report;
            let digest = r.digest();
            let found = find
                .query_row([&r.submission_id], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u32>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })
                .optional()
                .map_err(StoreError::from_sqlite)?;
            if let Some((area, period, revision, stored_digest, received_at_ms, warnings)) = found {
                if stored_digest != digest {
                    results.push(Err(StoreError::IdReused(r.submission_id.clone())));
                    continue;
                }
                results.push(Ok(pb::Receipt {
                    submission_id: r.submission_id.clone(),
                    area,
                    period,
                    revision,
                    accepted_at_ms: received_at_ms,
                    warnings: serde_json::from_str(&warnings).unwrap_or_default(),
                    duplicate: true,
                }));
                continue;
            }
            let (area, period) = (r.area.to_string(), r.period.to_string());
            let previous = latest
                .query_row([&area, &period], |row| {
                    Ok((
                        row.get::<_, u32>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()
                .map_err(StoreError::from_sqlite)?;
            let revision = previous.as_ref().map_or(1, |p| p.0 + 1);
            if revision > MAX_REVISIONS {
                results.push(Err(StoreError::TooManyRevisions {
                    area: area.clone(),
                    period: period.clone(),
                }));
                continue;
            }
            let first_received_at_ms = previous.as_ref().map_or(job.now_ms, |p| p.3);
            let previous = match previous {
                Some((_, zero, vals, _)) => {
                    let stored = decode_values(&vals).map_err(|e| StoreError::Corrupt {
                        area: area.clone(),
                        period: period.clone(),
                        reason: e.to_string(),
                    })?;
                    Some(Prior {
                        zero_report: zero,
                        values: stored.values,
                        rollup: stored.rollup,
                    })
                }
                None => None,
            };
            let vals = pb::StoredValues {
                values: r.wire_values(),
                rollup: r.rollup.clone(),
            }
            .encode_to_vec();
            let warnings = serde_json::to_string(&r.warnings).expect("strings serialise");
            insert
                .execute(params![
                    area,
                    period,
                    revision,
                    r.submission_id,
                    &digest[..],
                    job.now_ms,
                    job.sender,
                    r.reporter,
                    r.zero_report,
                    r.notes,
                    warnings,
                    vals
                ])
                .map_err(StoreError::from_sqlite)?;
            *added.entry(period.clone()).or_default() += 1;
            committed.push(Committed {
                area: r.area,
                period: r.period,
                revision,
                received_at_ms: job.now_ms,
                first_received_at_ms,
                zero_report: r.zero_report,
                values: r.wire_values(),
                rollup: r.rollup.clone(),
                previous,
            });
            results.push(Ok(pb::Receipt {
                submission_id: r.submission_id.clone(),
                area,
                period,
                revision,
                accepted_at_ms: job.now_ms,
                warnings: r.warnings.clone(),
                duplicate: false,
            }));
        }
        let mut count = tx
            .prepare_cached(
                "INSERT INTO period_revisions (period, revisions) VALUES (?1, ?2)
                 ON CONFLICT (period) DO UPDATE SET revisions = revisions + excluded.revisions",
            )
            .map_err(StoreError::from_sqlite)?;
        for (period, n) in added {
            count
                .execute(params![period, n])
                .map_err(StoreError::from_sqlite)?;
        }
    }
    tx.commit().map_err(StoreError::from_sqlite)?;
    Ok((results, committed))
}
