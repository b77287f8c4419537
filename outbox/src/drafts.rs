//! Drafts (草稿) of the node's forms: what an office typed and has not submitted yet, kept in
//! the outbox's database (`synchronous=FULL`), so a draft survives a restart or a power cut.
//! One draft per reporter (area code or department id), period and form; submitting removes it.

use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use crate::{Outbox, OutboxError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS drafts (
    area           TEXT    NOT NULL,
    period         TEXT    NOT NULL,
    form           TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (area, period, form)
) WITHOUT ROWID;
";

/// A saved draft: the fields as typed (JSON the page understands) and when it was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub area: String,
    pub period: String,
    pub form: String,
    pub body: String,
    pub updated_at_ms: i64,
}

impl Outbox {
    fn drafts_ready(&self) -> Result<(), OutboxError> {
        self.conn().execute_batch(SCHEMA)?;
        Ok(())
    }

    /// Saves (replaces) the draft of (`area`, `period`, `form`).
    pub fn save_draft(&self, draft: &Draft) -> Result<(), OutboxError> {
        self.drafts_ready()?;
        self.conn().execute(
            "INSERT OR REPLACE INTO drafts (area, period, form, body, updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![draft.area, draft.period, draft.form, draft.body, draft.updated_at_ms],
        )?;
        Ok(())
    }

    /// The draft of (`area`, `period`, `form`), if one is saved.
    pub fn draft(
        &self,
        area: &str,
        period: &str,
        form: &str,
    ) -> Result<Option<Draft>, OutboxError> {
        self.drafts_ready()?;
        Ok(self
            .conn()
            .query_row(
                "SELECT area, period, form, body, updated_at_ms FROM drafts WHERE area = ?1 AND period = ?2 AND form = ?3",
                [area, period, form],
                |r| {
                    Ok(Draft {
                        area: r.get(0)?,
                        period: r.get(1)?,
                        form: r.get(2)?,
                        body: r.get(3)?,
                        updated_at_ms: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Removes the draft of (`area`, `period`, `form`) (once it is submitted).
    pub fn discard_draft(&self, area: &str, period: &str, form: &str) -> Result<(), OutboxError> {
        self.drafts_ready()?;
        self.conn().execute(
            "DELETE FROM drafts WHERE area = ?1 AND period = ?2 AND form = ?3",
            [area, period, form],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_is_kept_across_openings_until_it_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let draft = Draft {
            area: "510722101002".into(),
            period: "2026-10".into(),
            form: "zongzhi_monthly".into(),
            body: r#"{"disputes.identified":"3"}"#.into(),
            updated_at_ms: 1,
        };
        Outbox::open(dir.path())
            .unwrap()
            .save_draft(&draft)
            .unwrap();
        let again = Outbox::open(dir.path()).unwrap();
        assert_eq!(
            again
                .draft("510722101002", "2026-10", "zongzhi_monthly")
                .unwrap(),
            Some(draft)
        );
        assert_eq!(
            again
                .draft("510722101002", "2026-09", "zongzhi_monthly")
                .unwrap(),
            None
        );
        again
            .discard_draft("510722101002", "2026-10", "zongzhi_monthly")
            .unwrap();
        assert_eq!(
            again
                .draft("510722101002", "2026-10", "zongzhi_monthly")
                .unwrap(),
            None
        );
    }
}
