//! Building a report's values from what an office types: `--set metric=value` (with
//! `metric[part]=value` for a breakdown), a CSV form (`metric,value` or `metric,part,value`) or a
//! JSON form (`{"metric": 3, "other": {"total": 5, "parts": {"劳动争议": 2, ...}}}`). Metrics
//! may be named by id or by their Chinese name; the validator checks them.

use std::collections::BTreeMap;

use pingan_proto::pb;

/// Why a form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("--set {0:?}: expected metric=value or metric[part]=value")]
    BadSet(String),
    #[error("{what}: {value:?} is not a whole number")]
    NotANumber { what: String, value: String },
    #[error("CSV form, line {line}: {reason}")]
    Csv { line: u64, reason: String },
    #[error("JSON form: {0}")]
    Json(String),
    #[error("{0} is given twice")]
    Twice(String),
}

#[derive(Default)]
struct Builder {
    values: BTreeMap<String, (Option<i64>, BTreeMap<String, i64>)>,
}

impl Builder {
    fn total(&mut self, metric: &str, n: i64) -> Result<(), FormError> {
        let slot = &mut self.values.entry(metric.to_owned()).or_default().0;
        if slot.replace(n).is_some() {
            return Err(FormError::Twice(metric.to_owned()));
        }
        Ok(())
    }

    fn part(&mut self, metric: &str, part: &str, n: i64) -> Result<(), FormError> {
        let parts = &mut self.values.entry(metric.to_owned()).or_default().1;
        if parts.insert(part.to_owned(), n).is_some() {
            return Err(FormError::Twice(format!("{metric}[{part}]")));
        }
        Ok(())
    }

    fn finish(self) -> Vec<pb::MetricValue> {
        self.values
            .into_iter()
            .map(|(metric, (total, parts))| pb::MetricValue {
                metric,
                total,
                parts: parts.into_iter().collect(),
            })
            .collect()
    }
}

fn number(what: &str, s: &str) -> Result<i64, FormError> {
    s.trim().parse().map_err(|_| FormError::NotANumber {
        what: what.to_owned(),
        value: s.to_owned(),
    })
}

/// Reads `--set` arguments.
pub fn from_sets(sets: &[String]) -> Result<Vec<pb::MetricValue>, FormError> {
    let mut b = Builder::default();
    for s in sets {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| FormError::BadSet(s.clone()))?;
        let key = key.trim();
        let n = number(key, value)?;
        match key.split_once('[') {
            Some((metric, rest)) => {
                let part = rest
                    .strip_suffix(']')
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| FormError::BadSet(s.clone()))?;
                b.part(metric.trim(), part.trim(), n)?;
            }
            None if key.is_empty() => return Err(FormError::BadSet(s.clone())),
            None => b.total(key, n)?,
        }
    }
    Ok(b.finish())
}

/// Reads a CSV form: header `metric,value` or `metric,part,value` (UTF-8, BOM allowed); a row
/// with an empty part is the total.
pub fn from_csv(text: &str) -> Result<Vec<pb::MetricValue>, FormError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = csv
        .headers()
        .map_err(|e| FormError::Csv {
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(m), Some(v)) = (col("metric"), col("value")) else {
        return Err(FormError::Csv {
            line: 1,
            reason: "the header must name the columns metric and value (and optionally part)"
                .into(),
        });
    };
    let p = col("part");
    let mut b = Builder::default();
    for rec in csv.records() {
        let rec = rec.map_err(|e| FormError::Csv {
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let metric = &rec[m];
        if metric.is_empty() {
            return Err(FormError::Csv {
                line,
                reason: "empty metric".into(),
            });
        }
        let n = number(&format!("line {line}"), &rec[v])?;
        match p.map(|p| &rec[p]).filter(|p| !p.is_empty()) {
            Some(part) => b.part(metric, part, n),
            None => b.total(metric, n),
        }
        .map_err(|e| FormError::Csv {
            line,
            reason: e.to_string(),
        })?;
    }
    Ok(b.finish())
}

/// Reads a JSON form: an object from metric to a number or to `{"total": n, "parts": {...}}`.
pub fn from_json(text: &str) -> Result<Vec<pb::MetricValue>, FormError> {
    let json: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| FormError::Json(e.to_string()))?;
    let obj = json
        .as_object()
        .ok_or_else(|| FormError::Json("expected an object from metric to value".into()))?;
    let int = |what: &str, v: &serde_json::Value| {
        v.as_i64().ok_or_else(|| FormError::NotANumber {
            what: what.to_owned(),
            value: v.to_string(),
        })
    };
    let mut b = Builder::default();
    for (metric, v) in obj {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| *k != "total" && *k != "parts") {
                    return Err(FormError::Json(format!(
                        "{metric}: unknown key {k:?} (expected total and parts)"
                    )));
                }
                if let Some(t) = o.get("total") {
                    b.total(metric, int(metric, t)?)?;
                }
                match o.get("parts") {
                    None => {}
                    Some(serde_json::Value::Object(parts)) => {
                        for (part, n) in parts {
                            b.part(metric, part, int(&format!("{metric}[{part}]"), n)?)?;
                        }
                    }
                    Some(other) => {
                        return Err(FormError::Json(format!(
                            "{metric}.parts: expected an object, got {other}"
                        )));
                    }
                }
                if o.is_empty() {
                    return Err(FormError::Json(format!(
                        "{metric}: neither total nor parts"
                    )));
                }
            }
            other => b.total(metric, int(metric, other)?)?,
        }
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(v: &'a [pb::MetricValue], m: &str) -> &'a pb::MetricValue {
        v.iter().find(|x| x.metric == m).unwrap()
    }

    #[test]
    fn sets_with_parts() {
        let v = from_sets(&[
            "disputes.mediated=5".into(),
            "disputes.mediated[劳动争议]=2".into(),
            "调处成功 = 4".into(),
        ])
        .unwrap();
        assert_eq!(find(&v, "disputes.mediated").total, Some(5));
        assert_eq!(find(&v, "disputes.mediated").parts["劳动争议"], 2);
        assert_eq!(find(&v, "调处成功").total, Some(4));
        assert!(matches!(
            from_sets(&["x".into()]),
            Err(FormError::BadSet(_))
        ));
        assert!(matches!(
            from_sets(&["x=1.5".into()]),
            Err(FormError::NotANumber { .. })
        ));
        assert!(matches!(
            from_sets(&["x=1".into(), "x=2".into()]),
            Err(FormError::Twice(_))
        ));
        assert!(matches!(
            from_sets(&["x[]=2".into()]),
            Err(FormError::BadSet(_))
        ));
    }

    #[test]
    fn csv_form_with_bom_and_parts() {
        let v = from_csv("\u{feff}metric,part,value\ndisputes.identified,,7\ndisputes.identified,医患,7\ncases.fraud,,1\n").unwrap();
        assert_eq!(find(&v, "disputes.identified").total, Some(7));
        assert_eq!(find(&v, "disputes.identified").parts["医患"], 7);
        let e = from_csv("metric,value\ncases.fraud,abc\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(from_csv("name,count\n").is_err());
        assert!(from_csv("metric,value\ncases.fraud,1,2\n").is_err());
    }

    #[test]
    fn json_form() {
        let v = from_json(
            r#"{"cases.fraud": 2, "disputes.mediated": {"total": 3, "parts": {"医患": 3}}}"#,
        )
        .unwrap();
        assert_eq!(find(&v, "cases.fraud").total, Some(2));
        assert_eq!(find(&v, "disputes.mediated").parts["医患"], 3);
        for bad in [
            r#"[1]"#,
            r#"{"a": "x"}"#,
            r#"{"a": {"sum": 1}}"#,
            r#"{"a": {}}"#,
            r#"{"a": 1.5}"#,
            "{",
        ] {
            assert!(from_json(bad).is_err(), "{bad}");
        }
    }
}
