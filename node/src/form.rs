//! Building a report's values from what an office types or saves: `--set metric=value` (with
//! `metric[part]=value` for a breakdown), a CSV form (`metric,value` or `metric,part,value`, or
//! the Chinese headers `指标,数值` / `指标,类别,数值`; UTF-8 or GBK as Excel and WPS save it), an
//! Excel workbook (.xlsx, the same columns on its first sheet) or a JSON form
//! (`{"metric": 3, "other": {"total": 5, "parts": {"劳动争议": 2, ...}}}`). Metrics may be
//! named by id or by their Chinese name; the validator checks them. Messages are Chinese: a
//! clerk reads them.

use std::{collections::BTreeMap, path::Path};

use pingan_domain::{pb, text::TextEncoding};

/// Why a form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("--set「{0}」格式不对：应为 指标=数值 或 指标[类别]=数值，如 调处矛盾纠纷=5")]
    BadSet(String),
    #[error("{what}：「{value}」不是整数")]
    NotANumber { what: String, value: String },
    #[error("CSV 表单第 {line} 行：{reason}")]
    Csv { line: u64, reason: String },
    #[error("Excel 表单：{0}")]
    Xlsx(String),
    #[error("JSON 表单：{0}")]
    Json(String),
    #[error("{0} 填了两次")]
    Twice(String),
    #[error(transparent)]
    Text(#[from] pingan_domain::text::TextError),
    #[error("读取 {path} 失败：{reason}")]
    Io { path: String, reason: String },
    #[error("{0}：表单文件应为 .csv、.xlsx 或 .json")]
    UnknownKind(String),
}

/// Column headers a form may use, English or Chinese.
const METRIC_HEADERS: [&str; 5] = ["metric", "指标", "指标名称", "指标代码", "项目"];
const PART_HEADERS: [&str; 4] = ["part", "类别", "分类", "分项"];
const VALUE_HEADERS: [&str; 5] = ["value", "数值", "数量", "值", "数据"];

fn is_header(cell: &str, names: &[&str]) -> bool {
    let cell = cell.trim().trim_start_matches('\u{feff}');
    names.iter().any(|n| cell.eq_ignore_ascii_case(n))
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

    fn put(&mut self, metric: &str, part: Option<&str>, n: i64) -> Result<(), FormError> {
        match part {
            Some(part) => self.part(metric, part, n),
            None => self.total(metric, n),
        }
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

/// A whole number as typed: spaces, thousands separators and full-width digits allowed.
pub fn number(what: &str, s: &str) -> Result<i64, FormError> {
    let cleaned: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | ' '))
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '－' => '-',
            c => c,
        })
        .collect();
    cleaned.parse().map_err(|_| FormError::NotANumber {
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
            .or_else(|| s.split_once('＝'))
            .ok_or_else(|| FormError::BadSet(s.clone()))?;
        let key = key.trim();
        let n = number(key, value)?;
        match key.split_once(['[', '［']) {
            Some((metric, rest)) => {
                let part = rest
                    .strip_suffix(']')
                    .or_else(|| rest.strip_suffix('］'))
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| FormError::BadSet(s.clone()))?;
                b.part(metric.trim(), part.trim(), n)?;
            }
            None if key.is_empty() => return Err(FormError::BadSet(s.clone())),
            None => b.total(key, n)?,
        }
    }
    Ok(b.finish())
}

/// Reads a form file by its extension: .csv (UTF-8 or GBK), .xlsx or .json. Says which text
/// encoding a CSV or JSON file was read in.
pub fn from_file(path: &Path) -> Result<(Vec<pb::MetricValue>, TextEncoding), FormError> {
    let bytes = std::fs::read(path).map_err(|e| FormError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("xlsx") => Ok((from_xlsx(&bytes)?, TextEncoding::Utf8)),
        Some("csv") => {
            let (text, enc) = pingan_domain::text::decode(&bytes)?;
            Ok((from_csv(&text)?, enc))
        }
        Some("json") => {
            let (text, enc) = pingan_domain::text::decode(&bytes)?;
            Ok((from_json(&text)?, enc))
        }
        _ => Err(FormError::UnknownKind(path.display().to_string())),
    }
}

/// The columns of a form's header row: (metric, part, value).
fn columns<'a>(headers: impl Iterator<Item = &'a str>) -> Option<(usize, Option<usize>, usize)> {
    let headers: Vec<&str> = headers.collect();
    let find = |names: &[&str]| headers.iter().position(|h| is_header(h, names));
    Some((
        find(&METRIC_HEADERS)?,
        find(&PART_HEADERS),
        find(&VALUE_HEADERS)?,
    ))
}

const NO_HEADER: &str =
    "第一行应是表头：metric,value（或 metric,part,value），也可写 指标,数值 或 指标,类别,数值";

/// Reads a CSV form: header `metric,value` or `metric,part,value` (or `指标,数值`,
/// `指标,类别,数值`); a row with an empty part is the total; a row with an empty value is a
/// figure not given.
pub fn from_csv(text: &str) -> Result<Vec<pb::MetricValue>, FormError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = csv
        .headers()
        .map_err(|e| FormError::Csv {
            line: 1,
            reason: e.to_string(),
        })?
        .clone();
    let Some((m, p, v)) = columns(headers.iter()) else {
        return Err(FormError::Csv {
            line: 1,
            reason: NO_HEADER.into(),
        });
    };
    let mut b = Builder::default();
    for rec in csv.records() {
        let rec = rec.map_err(|e| FormError::Csv {
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != headers.len() {
            return Err(FormError::Csv {
                line,
                reason: format!("有 {} 列，表头有 {} 列", rec.len(), headers.len()),
            });
        }
        let metric = &rec[m];
        if metric.is_empty() {
            return Err(FormError::Csv {
                line,
                reason: "指标为空".into(),
            });
        }
        if rec[v].is_empty() {
            continue;
        }
        let n = number(&format!("第 {line} 行 {metric}"), &rec[v]).map_err(|e| FormError::Csv {
            line,
            reason: e.to_string(),
        })?;
        let part = p.map(|p| &rec[p]).filter(|p| !p.is_empty());
        b.put(metric, part, n).map_err(|e| FormError::Csv {
            line,
            reason: e.to_string(),
        })?;
    }
    Ok(b.finish())
}

/// A spreadsheet cell's name, e.g. `C7` for row 6, column 2 (0-based).
pub fn cell_name(row: u32, col: u32) -> String {
    let mut letters = String::new();
    let mut c = col + 1;
    while c > 0 {
        letters.insert(0, char::from(b'A' + ((c - 1) % 26) as u8));
        c = (c - 1) / 26;
    }
    format!("{letters}{}", row + 1)
}

/// Reads an Excel form: on its first sheet, a header row naming the metric and value columns
/// (and optionally the part column) as a CSV form does, then one row per metric and part.
/// Errors name the cell, e.g. `C7`.
pub fn from_xlsx(bytes: &[u8]) -> Result<Vec<pb::MetricValue>, FormError> {
    use calamine::{Data, Reader as _};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| FormError::Xlsx(format!("不是可读的 .xlsx 文件（{e}）")))?;
    let sheet = book
        .worksheet_range_at(0)
        .ok_or_else(|| FormError::Xlsx("工作簿没有工作表".into()))?
        .map_err(|e| FormError::Xlsx(e.to_string()))?;
    let (top, left) = sheet.start().unwrap_or((0, 0));
    let text = |d: &Data| match d {
        Data::String(s) => s.trim().to_owned(),
        Data::Empty => String::new(),
        other => other.to_string(),
    };
    let mut rows = sheet.rows().enumerate();
    let (m, p, v) = loop {
        let Some((_, row)) = rows.next() else {
            return Err(FormError::Xlsx(NO_HEADER.into()));
        };
        let cells: Vec<String> = row.iter().map(text).collect();
        if let Some(cols) = columns(cells.iter().map(String::as_str)) {
            break cols;
        }
    };
    let mut b = Builder::default();
    for (i, row) in rows {
        let at = |col: usize| cell_name(top + i as u32, left + col as u32);
        let get = |col: usize| row.get(col).unwrap_or(&Data::Empty);
        let metric = text(get(m));
        let value = get(v);
        if metric.is_empty() && matches!(value, Data::Empty) {
            continue;
        }
        if metric.is_empty() {
            return Err(FormError::Xlsx(format!("{}：指标为空", at(m))));
        }
        let n = match value {
            Data::Empty => continue,
            Data::Int(n) => *n,
            Data::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => *x as i64,
            Data::String(s) if s.trim().is_empty() => continue,
            Data::String(s) => number(&at(v), s).map_err(|e| FormError::Xlsx(e.to_string()))?,
            other => {
                return Err(FormError::Xlsx(format!(
                    "{}（{metric}）：「{other}」不是整数",
                    at(v)
                )));
            }
        };
        let part = p.map(|p| text(get(p))).filter(|s| !s.is_empty());
        b.put(&metric, part.as_deref(), n)
            .map_err(|e| FormError::Xlsx(format!("{}：{e}", at(m))))?;
    }
    Ok(b.finish())
}

/// A JSON value like `serde_json::Value`, except that an object naming a key twice is refused
/// (serde_json would keep the last one silently: a form with 调处成功 twice is a mistake).
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                Ok(Strict(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(serde_json::Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut out = Vec::new();
                while let Some(Strict(v)) = a.next_element()? {
                    out.push(v);
                }
                Ok(Strict(out.into()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some((k, Strict(v))) = a.next_entry::<String, Strict>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("「{k}」填了两次")));
                    }
                    out.insert(k, v);
                }
                Ok(Strict(out.into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a JSON form: an object from metric to a number or to `{"total": n, "parts": {...}}`.
/// A key given twice is refused.
pub fn from_json(text: &str) -> Result<Vec<pb::MetricValue>, FormError> {
    let Strict(json) = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| FormError::Json(e.to_string()))?;
    let obj = json
        .as_object()
        .ok_or_else(|| FormError::Json("应是从指标到数值的对象".into()))?;
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
                        "{metric}：未知的键「{k}」（应为 total 和 parts）"
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
                            "{metric}.parts 应是对象，而不是 {other}"
                        )));
                    }
                }
                if o.is_empty() {
                    return Err(FormError::Json(format!(
                        "{metric}：既没有 total 也没有 parts"
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
            "巡逻次数＝１２".into(),
        ])
        .unwrap();
        assert_eq!(find(&v, "disputes.mediated").total, Some(5));
        assert_eq!(find(&v, "disputes.mediated").parts["劳动争议"], 2);
        assert_eq!(find(&v, "调处成功").total, Some(4));
        assert_eq!(find(&v, "巡逻次数").total, Some(12));
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
        assert!(e.to_string().contains("第 2 行"), "{e}");
        assert!(from_csv("name,count\n").is_err());
        let ragged = from_csv("metric,value\ncases.fraud,1,2\n").unwrap_err();
        assert!(ragged.to_string().contains("有 3 列"), "{ragged}");
    }

    #[test]
    fn chinese_headers_blank_values_and_gbk_as_excel_saves_them() {
        let text = "指标,类别,数值\n排查矛盾纠纷,,3\n排查矛盾纠纷,劳动争议,\"1\"\n巡逻次数,,\n电信网络诈骗案件,,\"1,200\"\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        let dir = std::env::temp_dir().join(format!("pingan-form-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("表单.CSV");
        std::fs::write(&path, &gbk).unwrap();
        let (v, enc) = from_file(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(enc, TextEncoding::Gb18030);
        assert_eq!(find(&v, "排查矛盾纠纷").total, Some(3));
        assert_eq!(find(&v, "排查矛盾纠纷").parts["劳动争议"], 1);
        assert_eq!(find(&v, "电信网络诈骗案件").total, Some(1200));
        assert!(v.iter().all(|x| x.metric != "巡逻次数"), "blank: not given");
    }

    #[test]
    fn cells_are_named_like_excel() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(6, 2), "C7");
        assert_eq!(cell_name(0, 25), "Z1");
        assert_eq!(cell_name(9, 26), "AA10");
    }

    #[test]
    fn xlsx_form_and_its_bad_cell_named() {
        let book = |value: &str| {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let s = wb.add_worksheet();
            s.write(0, 0, "三台县 综治工作月报").unwrap();
            for (c, h) in ["指标", "类别", "数值"].into_iter().enumerate() {
                s.write(1, c as u16, h).unwrap();
            }
            s.write(2, 0, "调处矛盾纠纷").unwrap();
            s.write(2, 2, 5).unwrap();
            s.write(3, 0, "排查矛盾纠纷").unwrap();
            s.write(3, 1, "医患").unwrap();
            s.write(3, 2, value).unwrap();
            wb.save_to_buffer().unwrap()
        };
        let v = from_xlsx(&book("2")).unwrap();
        assert_eq!(find(&v, "调处矛盾纠纷").total, Some(5));
        assert_eq!(find(&v, "排查矛盾纠纷").parts["医患"], 2);
        let e = from_xlsx(&book("两件")).unwrap_err();
        assert!(e.to_string().contains("C4"), "{e}");
        assert!(from_xlsx(b"not a workbook").is_err());
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
            r#"{"调处成功": 3, "调处成功": 4}"#,
            r#"{"a": {"total": 3, "parts": {"医患": 1, "医患": 2}}}"#,
        ] {
            assert!(from_json(bad).is_err(), "{bad}");
        }
        let twice = from_json(r#"{"调处成功": 3, "调处成功": 4}"#).unwrap_err();
        assert!(
            twice.to_string().contains("「调处成功」填了两次"),
            "{twice}"
        );
    }
}
