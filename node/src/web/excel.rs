//! The Excel path: a form downloaded as an .xlsx template (which form, reporter and period at
//! the top; one row per metric and part with Chinese labels; only the value cells editable)
//! or as CSV, filled in Excel or WPS, and uploaded back into the page's fields. A template of
//! another form, reporter or period is refused, and a bad value is named by its cell (`E7`).

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use pingan_domain::pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    NodeWeb, PageError,
    api::{Which, resolve},
};
use crate::office::period_label;

/// Rows above the header: 报表, 填报单位, 期间 (the template's identity).
const META_ROWS: u32 = 3;
/// The header row (0-based), after a blank row.
const HEADER_ROW: u32 = META_ROWS + 1;
const HEADERS: [&str; 5] = ["指标代码", "指标名称", "类别", "单位", "数值"];

/// Which form, and as what.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateQuery {
    pub key: String,
    pub period: String,
    pub form: String,
    #[serde(default)]
    pub format: String,
}

/// Each row of a template: (metric id, name, part, unit).
fn rows(web: &NodeWeb, w: &Which) -> Result<Vec<(String, String, String, String)>, PageError> {
    let (r, form, _) = resolve(&web.office, w)?;
    let c = &web.office.catalogue;
    let mut out = Vec::new();
    for m in web.office.metrics_of(r, form) {
        let def = c.metric(m);
        match c.category_of(m) {
            Some(cat) => {
                for v in &cat.values {
                    out.push((m.to_string(), def.zh.clone(), v.clone(), def.unit.clone()));
                }
            }
            None => out.push((
                m.to_string(),
                def.zh.clone(),
                String::new(),
                def.unit.clone(),
            )),
        }
    }
    Ok(out)
}

fn download(body: Vec<u8>, content_type: &'static str, file: &str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // RFC 5987: a Chinese file name, percent-encoded
    let encoded: String = file
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"form.{}\"; filename*=UTF-8''{encoded}",
        file.rsplit('.').next().unwrap_or("xlsx")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /api/template?key=&period=&form=[&format=csv]`.
pub async fn template(
    State(web): State<NodeWeb>,
    Query(q): Query<TemplateQuery>,
) -> Result<Response, PageError> {
    let w = Which {
        key: q.key.clone(),
        period: q.period.clone(),
        form: q.form.clone(),
    };
    let (r, form, period) = resolve(&web.office, &w)?;
    let rows = rows(&web, &w)?;
    let name = format!("{}-{}-{}", r.name, form.zh, period_label(period));
    if q.format == "csv" {
        let mut out = String::from("\u{feff}");
        out.push_str(&HEADERS.join(","));
        out.push('\n');
        for (id, zh, part, unit) in rows {
            out.push_str(&format!("{id},{zh},{part},{unit},\n"));
        }
        return Ok(download(
            out.into_bytes(),
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
        ));
    }
    let meta = [
        ("报表", form.id.clone(), form.zh.clone()),
        ("填报单位", r.key.clone(), r.name.clone()),
        ("期间", period.to_string(), period_label(period)),
    ];
    let bytes = xlsx(&meta, &rows).map_err(|e| PageError {
        status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("生成模板失败：{e}"),
    })?;
    Ok(download(
        bytes,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &format!("{name}.xlsx"),
    ))
}

type Meta = [(&'static str, String, String); 3];

fn xlsx(
    meta: &Meta,
    rows: &[(String, String, String, String)],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("填报")?;
    let bold = Format::new().set_bold();
    let editable = Format::new().set_unlocked().set_background_color("#FFF7D6");
    for (i, (label, id, zh)) in meta.iter().enumerate() {
        sheet.write_string_with_format(i as u32, 0, *label, &bold)?;
        sheet.write_string(i as u32, 1, id)?;
        sheet.write_string(i as u32, 2, zh)?;
    }
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string_with_format(HEADER_ROW, c as u16, *h, &bold)?;
    }
    for (i, (id, zh, part, unit)) in rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + i as u32;
        sheet.write_string(row, 0, id)?;
        sheet.write_string(row, 1, zh)?;
        sheet.write_string(row, 2, part)?;
        sheet.write_string(row, 3, unit)?;
        sheet.write_blank(row, 4, &editable)?;
    }
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(1, 26)?;
    sheet.set_column_width(2, 12)?;
    sheet.set_column_width(4, 12)?;
    // labels cannot be changed by mistake; only the value cells take input
    sheet.protect();
    book.save_to_buffer()
}

/// The identity a template names (报表, 填报单位, 期间), from its first rows.
fn template_identity(bytes: &[u8]) -> Result<[String; 3], PageError> {
    use calamine::{Data, Reader as _};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| PageError::bad(format!("不是可读的 .xlsx 文件（{e}）")))?;
    let sheet = book
        .worksheet_range_at(0)
        .ok_or_else(|| PageError::bad("工作簿没有工作表"))?
        .map_err(|e| PageError::bad(e.to_string()))?;
    let cell = |r: u32| match sheet.get_value((r, 1)) {
        Some(Data::String(s)) => s.trim().to_owned(),
        Some(Data::Empty) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Ok([cell(0), cell(1), cell(2)])
}

/// `POST /api/upload?key=&period=&form=` with a filled template (.xlsx or CSV) as the body:
/// its values as the page's fields (nothing is submitted; the page checks them).
pub async fn upload(
    State(web): State<NodeWeb>,
    Query(w): Query<Which>,
    body: Bytes,
) -> Result<axum::Json<Value>, PageError> {
    let (r, form, period) = resolve(&web.office, &w)?;
    if body.is_empty() {
        return Err(PageError::bad("上传的文件是空的"));
    }
    let values = if body.starts_with(b"PK") {
        let [f, key, p] = template_identity(&body)?;
        let expected = [form.id.clone(), r.key.clone(), period.to_string()];
        if [&f, &key, &p] != [&expected[0], &expected[1], &expected[2]] {
            return Err(PageError::bad(format!(
                "这是「{f} {key} {p}」的模板，不是本表（{} {} {}）的：请下载本表的模板填写",
                expected[0], expected[1], expected[2]
            )));
        }
        crate::form::from_xlsx(&body).map_err(|e| PageError::bad(e.to_string()))?
    } else {
        let (text, _) =
            pingan_domain::text::decode(&body).map_err(|e| PageError::bad(e.to_string()))?;
        crate::form::from_csv(&text).map_err(|e| PageError::bad(e.to_string()))?
    };
    Ok(axum::Json(json!({ "fields": fields(&web, &values)? })))
}

/// Values as the page's fields, each metric by its id (a file may name it in Chinese); a metric
/// the catalogue does not know is refused with a suggestion.
fn fields(web: &NodeWeb, values: &[pb::MetricValue]) -> Result<Value, PageError> {
    let c = &web.office.catalogue;
    let mut out = serde_json::Map::new();
    for v in values {
        let id = c.metric_id(&v.metric).ok_or_else(|| {
            let hint = c
                .suggest(&v.metric)
                .map(|s| format!("，是否是 {s}？"))
                .unwrap_or_default();
            PageError::bad(format!("未知指标「{}」{hint}", v.metric))
        })?;
        let parts: serde_json::Map<String, Value> = v
            .parts
            .iter()
            .map(|(k, n)| (k.clone(), Value::String(n.to_string())))
            .collect();
        let total = match (v.total, parts.is_empty()) {
            (Some(t), true) => t.to_string(),
            _ => String::new(),
        };
        out.insert(id.to_string(), json!({"total": total, "parts": parts}));
    }
    Ok(Value::Object(out))
}
