//! What a child hub forwards, and what the store keeps, as domain types: a [`Rollup`] (a
//! subtree's sums, report counts and reporters by level) and [`Value`]s as given (a metric's
//! total and parts). The wire and the store's encoding (`pb::Rollup`, `pb::MetricValue`) are
//! converted at their edges: the validator (in), the store (encode and decode) and forwarding
//! (out).

use std::collections::BTreeMap;

use crate::{Level, pb};

/// What a forwarded rollup covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The area's whole subtree, its own report included.
    Subtree,
    /// The area's own report only (its children are forwarded separately).
    Own,
}

/// One metric's (or one of its parts') sum over the reports of a subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupCell {
    pub metric: String,
    /// Empty for the metric's total.
    pub part: String,
    pub sum: i64,
    /// How many reports carried it.
    pub present: u32,
}

/// Reporters of one level that reported, and how many of them on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelCount {
    pub level: Level,
    pub received: u32,
    pub on_time: u32,
}

/// A child hub's rollup of an area for a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    pub scope: Scope,
    /// Whether the area's own report reached the child hub.
    pub own_reported: bool,
    pub own_on_time: bool,
    pub own_first_received_at_ms: i64,
    pub cells: Vec<RollupCell>,
    pub reporters: Vec<LevelCount>,
    /// 锁定: the child hub closed the period for the whole scope.
    pub lock: Option<RollupLock>,
}

/// A child hub's lock over a forwarded rollup's scope: its figures are final there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupLock {
    pub form: String,
    pub by: String,
    pub at_ms: i64,
    pub reason: String,
}

/// A value as a report gave it: the total (if given) and parts by category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub metric: String,
    pub total: Option<i64>,
    pub parts: BTreeMap<String, i64>,
}

impl From<&Rollup> for pb::Rollup {
    fn from(r: &Rollup) -> Self {
        pb::Rollup {
            scope: match r.scope {
                Scope::Subtree => pb::rollup::Scope::Subtree,
                Scope::Own => pb::rollup::Scope::Own,
            } as i32,
            own_reported: r.own_reported,
            own_on_time: r.own_on_time,
            own_first_received_at_ms: r.own_first_received_at_ms,
            cells: r
                .cells
                .iter()
                .map(|c| pb::RollupCell {
                    metric: c.metric.clone(),
                    part: c.part.clone(),
                    sum: c.sum,
                    present: c.present,
                })
                .collect(),
            reporters: r
                .reporters
                .iter()
                .map(|l| pb::LevelCount {
                    level: l.level.as_str().to_owned(),
                    received: l.received,
                    on_time: l.on_time,
                })
                .collect(),
            lock: r.lock.as_ref().map(|l| pb::RollupLock {
                form: l.form.clone(),
                by: l.by.clone(),
                at_ms: l.at_ms,
                reason: l.reason.clone(),
            }),
        }
    }
}

impl From<pb::Rollup> for Rollup {
    /// A rollup as the store or the validator holds it: already checked, so a scope other than
    /// SUBTREE counts as OWN and a level that does not read is left out.
    fn from(r: pb::Rollup) -> Self {
        Rollup {
            scope: match r.scope() {
                pb::rollup::Scope::Subtree => Scope::Subtree,
                _ => Scope::Own,
            },
            own_reported: r.own_reported,
            own_on_time: r.own_on_time,
            own_first_received_at_ms: r.own_first_received_at_ms,
            cells: r
                .cells
                .into_iter()
                .map(|c| RollupCell {
                    metric: c.metric,
                    part: c.part,
                    sum: c.sum,
                    present: c.present,
                })
                .collect(),
            reporters: r
                .reporters
                .into_iter()
                .filter_map(|l| {
                    Some(LevelCount {
                        level: l.level.parse().ok()?,
                        received: l.received,
                        on_time: l.on_time,
                    })
                })
                .collect(),
            lock: r.lock.map(|l| RollupLock {
                form: l.form,
                by: l.by,
                at_ms: l.at_ms,
                reason: l.reason,
            }),
        }
    }
}

impl From<&Value> for pb::MetricValue {
    fn from(v: &Value) -> Self {
        pb::MetricValue {
            metric: v.metric.clone(),
            total: v.total,
            parts: v.parts.iter().map(|(k, n)| (k.clone(), *n)).collect(),
        }
    }
}

impl From<pb::MetricValue> for Value {
    fn from(v: pb::MetricValue) -> Self {
        Value {
            metric: v.metric,
            total: v.total,
            parts: v.parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_and_its_values_cross_the_wire_unchanged() {
        let rollup = Rollup {
            scope: Scope::Subtree,
            own_reported: true,
            own_on_time: false,
            own_first_received_at_ms: 42,
            cells: vec![RollupCell {
                metric: "disputes.identified".into(),
                part: "劳动争议".into(),
                sum: 7,
                present: 3,
            }],
            reporters: vec![LevelCount {
                level: Level::Village,
                received: 3,
                on_time: 2,
            }],
            lock: Some(RollupLock {
                form: "zongzhi_monthly".into(),
                by: "三台县综治中心".into(),
                at_ms: 7,
                reason: "月度考核".into(),
            }),
        };
        assert_eq!(Rollup::from(pb::Rollup::from(&rollup)), rollup);
        let value = Value {
            metric: "disputes.identified".into(),
            total: Some(7),
            parts: [("劳动争议".to_owned(), 7)].into_iter().collect(),
        };
        assert_eq!(Value::from(pb::MetricValue::from(&value)), value);
    }

    #[test]
    fn the_same_values_encode_to_the_same_bytes() {
        // a forwarded rollup is written again only when its encoding's digest changes: map
        // fields must not encode in a per-map random order
        use prost::Message as _;
        let parts = [
            "婚姻家庭邻里",
            "土地山林水利权属",
            "村务管理",
            "劳动争议",
            "医患",
            "其他",
        ];
        let encode = |order: &[&str]| {
            let value = Value {
                metric: "disputes.identified".into(),
                total: Some(21),
                parts: order
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ((*p).to_owned(), i as i64))
                    .collect(),
            };
            pb::MetricValue::from(&value).encode_to_vec()
        };
        let first = encode(&parts);
        for _ in 0..20 {
            assert_eq!(encode(&parts), first);
        }
    }
}
