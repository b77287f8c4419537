//! The dashboard's first screen: a card per headline figure of the catalogue (`headline =
//! true`), with its value, 同比 and 环比 judged by which way the figure is better (`better`),
//! the period's completeness and when the latest report arrived. Every number is a rollup's,
//! as in every other table.

use pingan_domain::{AreaCode, Catalogue, Span, catalogue::Better};
use serde_json::{Value, json};

use crate::query::{Engine, Figures, QueryError, RollupQuery};

/// A change and whether it is good news: "good", "bad", or "" (no direction said, no change,
/// nothing to compare).
fn judged(now: Option<f64>, base: Option<f64>, percent: bool, better: Option<Better>) -> Value {
    let (Some(n), Some(b)) = (now, base) else {
        return json!({"change": null, "pct": null, "points": null, "judgement": ""});
    };
    let change = n - b;
    let judgement = match better {
        _ if change.abs() < 1e-9 => "",
        Some(Better::Higher) if change > 0.0 => "good",
        Some(Better::Lower) if change < 0.0 => "good",
        Some(_) => "bad",
        None => "",
    };
    json!({
        "change": change,
        "pct": (!percent && b != 0.0).then(|| change / b * 100.0),
        "points": percent.then_some(change),
        "judgement": judgement,
    })
}

/// The cards of `area` for `span`, current or approved figures.
pub(super) fn cards(
    engine: &Engine,
    catalogue: &Catalogue,
    area: AreaCode,
    span: Span,
    figures: Figures,
    latest_ms: Option<i64>,
) -> Result<Value, QueryError> {
    let rollup = |s: Span| {
        engine.rollup(&RollupQuery {
            area,
            span: s,
            metrics: Vec::new(),
            by_category: false,
            figures,
        })
    };
    let (now, year, prev) = (
        rollup(span)?,
        rollup(span.year_earlier())?,
        rollup(span.previous())?,
    );
    let metric_value = |r: &pingan_domain::answer::RollupAnswer, id: &str| {
        r.figures
            .iter()
            .find(|f| f.metric == id)
            .and_then(|f| f.total.map(|v| v as f64))
    };
    let rate_value = |r: &pingan_domain::answer::RollupAnswer, id: &str| {
        r.rates
            .iter()
            .find(|x| x.indicator == id)
            .and_then(|x| x.value)
    };
    let group = |id: &str| {
        catalogue
            .group_of(id)
            .map(|g| g.zh.clone())
            .unwrap_or_default()
    };
    let mut cards = Vec::new();
    for m in catalogue.metrics().iter().filter(|m| m.headline) {
        let id = m.id.as_str();
        let v = metric_value(&now, id);
        cards.push(json!({
            "id": id, "name": m.zh, "unit": m.unit, "group": group(id), "value": v,
            "better": m.better,
            "yoy": judged(v, metric_value(&year, id), false, m.better),
            "mom": judged(v, metric_value(&prev, id), false, m.better),
        }));
    }
    for i in catalogue.indicators().iter().filter(|i| i.headline) {
        let v = rate_value(&now, &i.id);
        let percent = i.unit == "%";
        cards.push(json!({
            "id": i.id, "name": i.zh, "unit": i.unit, "group": group(i.numerator.as_str()),
            "value": v, "better": i.better,
            "yoy": judged(v, rate_value(&year, &i.id), percent, i.better),
            "mom": judged(v, rate_value(&prev, &i.id), percent, i.better),
        }));
    }
    // by group, in the catalogue's order of groups
    let rank = |g: &str| {
        catalogue
            .groups()
            .iter()
            .position(|x| x.zh == g)
            .unwrap_or(usize::MAX)
    };
    cards.sort_by_key(|c| rank(c["group"].as_str().unwrap_or_default()));
    let c = now.completeness;
    Ok(json!({
        "area": area.to_string(), "name": now.name, "period": span.to_string(),
        "cards": cards,
        "completeness": {"expected": c.expected, "received": c.received, "on_time": c.on_time, "missing": c.missing},
        "latest": latest_ms.map(crate::clock::minute_text),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_crime_is_bad_news_and_a_rising_resolution_rate_good() {
        let j = |n, b, p, better| judged(Some(n), Some(b), p, better)["judgement"].clone();
        assert_eq!(j(12.0, 10.0, false, Some(Better::Lower)), "bad");
        assert_eq!(j(8.0, 10.0, false, Some(Better::Lower)), "good");
        assert_eq!(j(97.0, 95.0, true, Some(Better::Higher)), "good");
        assert_eq!(j(12.0, 10.0, false, None), "");
        assert_eq!(j(10.0, 10.0, false, Some(Better::Lower)), "");
        let pct = judged(Some(12.0), Some(10.0), false, None);
        assert!((pct["pct"].as_f64().unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(judged(Some(97.0), Some(95.0), true, None)["points"], 2.0);
        assert_eq!(judged(Some(1.0), None, false, None)["judgement"], "");
    }
}
