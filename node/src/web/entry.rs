//! The page's fields turned into a report's values: every number parsed as a clerk types it
//! (full-width digits, thousands separators), a field that is not a number named, and then the
//! one validator the hub uses, whose findings name the field and the rule in Chinese.

use std::collections::BTreeMap;

use pingan_domain::{Period, ValidReport, pb};
use serde::{Deserialize, Serialize};

use crate::office::{Entry, Office, Reporter};

/// One metric's fields as typed: its total, or its parts by category.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Field {
    #[serde(default)]
    pub total: String,
    #[serde(default)]
    pub parts: BTreeMap<String, String>,
}

/// What the page sends: the form's fields, a zero report, notes, and for a correction its
/// reason; `accept_warnings` once the office has read the soft-rule warnings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Fields {
    pub key: String,
    pub period: String,
    pub form: String,
    #[serde(default)]
    pub fields: BTreeMap<String, Field>,
    #[serde(default)]
    pub zero: bool,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub accept_warnings: bool,
}

/// One finding, by field (`values[disputes.resolved]`, `values[m].parts[p]`, `notes`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub reason: String,
}

/// What a check found: problems (the report cannot go) and warnings (it can, once read).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checked {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
}

/// Parses the fields into values; a field that is not a whole number is a problem.
pub fn values(fields: &BTreeMap<String, Field>) -> (Vec<pb::MetricValue>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (metric, f) in fields {
        let mut parse = |field: String, s: &str| -> Option<i64> {
            if s.trim().is_empty() {
                return None;
            }
            match crate::form::number(&field, s) {
                Ok(n) => Some(n),
                Err(_) => {
                    let reason = if s
                        .trim()
                        .trim_start_matches('-')
                        .chars()
                        .all(|c| c.is_ascii_digit())
                    {
                        format!("「{}」太大，不是一个可能的数值", s.trim())
                    } else {
                        format!("「{}」不是整数", s.trim())
                    };
                    bad.push(Problem { field, reason });
                    None
                }
            }
        };
        let total = parse(format!("values[{metric}]"), &f.total);
        let parts: BTreeMap<String, i64> = f
            .parts
            .iter()
            .filter_map(|(p, s)| {
                Some((p.clone(), parse(format!("values[{metric}].parts[{p}]"), s)?))
            })
            .collect();
        if total.is_none() && parts.is_empty() {
            continue;
        }
        out.push(pb::MetricValue {
            metric: metric.clone(),
            total,
            parts: parts.into_iter().collect(),
        });
    }
    (out, bad)
}

/// Checks the fields as the hub will: the report (when it is valid) and what was found.
pub fn check(
    office: &Office,
    r: &Reporter,
    fields: &Fields,
    reporter_name: &str,
    today: chrono::NaiveDate,
) -> (Option<ValidReport>, Checked) {
    let mut checked = Checked::default();
    let Some(form) = office.form_of(r, &fields.form) else {
        checked.problems.push(Problem {
            field: "form".into(),
            reason: format!("{} 不填报「{}」", r.name, fields.form),
        });
        return (None, checked);
    };
    let period: Period = match fields.period.parse() {
        Ok(p) => p,
        Err(e) => {
            checked.problems.push(Problem {
                field: "period".into(),
                reason: format!("{e}"),
            });
            return (None, checked);
        }
    };
    let (values, bad) = values(&fields.fields);
    checked.problems.extend(bad);
    let entry = Entry {
        values: if fields.zero { Vec::new() } else { values },
        zero: fields.zero,
        notes: fields.notes.trim().to_owned(),
        reporter: reporter_name.to_owned(),
    };
    let wire = office.wire(r, form, period, &entry);
    match office.validator(today).validate(&wire) {
        Ok(v) => {
            checked.warnings = v.warnings.clone();
            let ok = checked.problems.is_empty();
            (ok.then_some(v), checked)
        }
        Err(violations) => {
            checked
                .problems
                .extend(violations.0.into_iter().map(|v| Problem {
                    field: v.field,
                    reason: v.reason,
                }));
            (None, checked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(total: &str) -> Field {
        Field {
            total: total.into(),
            parts: BTreeMap::new(),
        }
    }

    #[test]
    fn numbers_as_typed_and_what_is_not_one_named() {
        let fields = BTreeMap::from([
            ("a".to_owned(), field("１,２00")),
            ("b".to_owned(), field("abc")),
            ("c".to_owned(), field("99999999999999999999999")),
            ("d".to_owned(), field("  ")),
            (
                "e".to_owned(),
                Field {
                    total: String::new(),
                    parts: BTreeMap::from([("专职".to_owned(), "2".to_owned())]),
                },
            ),
        ]);
        let (values, bad) = values(&fields);
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].total, Some(1200));
        assert_eq!(values[1].parts["专职"], 2);
        assert_eq!(
            bad,
            [
                Problem {
                    field: "values[b]".into(),
                    reason: "「abc」不是整数".into()
                },
                Problem {
                    field: "values[c]".into(),
                    reason: "「99999999999999999999999」太大，不是一个可能的数值".into()
                },
            ]
        );
    }
}
