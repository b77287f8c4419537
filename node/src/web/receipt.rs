//! A printable 回执 of a delivered report: who it is for, the period, every figure with its
//! Chinese name and unit, the revision, when the hub accepted it and who sent it.

use axum::{
    extract::{Path, State},
    response::Html,
};
use pingan_outbox::EntryState;

use super::{NodeWeb, PageError};
use crate::office::{minute_text, period_label};

/// Text made safe inside HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /receipt/{submission_id}`.
pub async fn page(
    State(web): State<NodeWeb>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let outbox = web.outbox.lock().expect("not poisoned");
    let entry = outbox
        .get(&id)?
        .ok_or_else(|| PageError::bad(format!("本机发件箱里没有提交编号 {id}")))?;
    if entry.state != EntryState::Delivered {
        return Err(PageError::bad(format!(
            "{id} 的状态是「{}」：上报成功后才有回执",
            entry.state.zh()
        )));
    }
    let report = outbox
        .history(&entry.area, &entry.period)?
        .into_iter()
        .find(|(e, _)| e.submission_id == id)
        .map(|(_, r)| r)
        .unwrap_or_default();
    drop(outbox);
    let c = &web.office.catalogue;
    let who = web
        .office
        .reporter(&entry.area)
        .map_or_else(|| entry.area.clone(), |r| format!("{} {}", r.key, r.name));
    let period = entry
        .period
        .parse()
        .map(period_label)
        .unwrap_or_else(|_| entry.period.clone());
    let mut rows = String::new();
    for v in &report.values {
        let (zh, unit) = c
            .metric_id(&v.metric)
            .map(|m| (c.metric(&m).zh.clone(), c.metric(&m).unit.clone()))
            .unwrap_or_else(|| (v.metric.clone(), String::new()));
        let parts: Vec<String> = v.parts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=num>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&zh),
            v.total.unwrap_or_else(|| v.parts.values().sum()),
            escape(&unit),
            escape(&parts.join("，"))
        ));
    }
    if report.zero_report {
        rows.push_str("<tr><td colspan=4>零报告：本期无上述事项发生</td></tr>");
    }
    Ok(Html(format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>上报回执 {id}</title><link rel="stylesheet" href="/app.css"></head>
<body class="receipt"><h1>平安建设统计 上报回执</h1>
<table class="meta"><tr><th>填报单位</th><td>{who}</td></tr><tr><th>期间</th><td>{period}（{p}）</td></tr>
<tr><th>报表</th><td>{form}</td></tr><tr><th>版本</th><td>第 {rev} 版</td></tr>
<tr><th>上级平台收到时间</th><td>{at}（北京时间）</td></tr><tr><th>报送人</th><td>{sender}</td></tr>
<tr><th>提交编号</th><td>{id}</td></tr><tr><th>备注</th><td>{notes}</td></tr></table>
<table class="figures"><thead><tr><th>指标</th><th>数值</th><th>单位</th><th>分类</th></tr></thead><tbody>{rows}</tbody></table>
<p class="noprint"><a href="/">返回填报</a>　打印：Ctrl+P</p></body></html>"#,
        id = escape(&id),
        who = escape(&who),
        period = escape(&period),
        p = escape(&entry.period),
        form = escape(
            &c.form(&report.form)
                .map_or(report.form.clone(), |f| f.label())
        ),
        rev = entry.revision.unwrap_or_default(),
        at = minute_text(entry.updated_at_ms),
        sender = escape(&report.reporter),
        notes = escape(&report.notes),
    )))
}
