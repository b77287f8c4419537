//! What the page is told about the signed-in user and the areas it shows: shared by sign-in
//! (which answers with the user) and the API.

use pingan_domain::{AreaCode, Period, period::PeriodKind};
use serde_json::{Value, json};

use super::Web;
use crate::access::users::User;

/// The user, its area and the hub's dates, as the page starts with.
pub(super) fn me_json(web: &Web, user: &User) -> Value {
    let today = web.hub.clock.today();
    let this_month = Period::month_of(today);
    // the latest month anyone reported for, else the last month that has ended
    let latest = web
        .hub
        .engine
        .periods()
        .into_iter()
        .filter(|p| p.kind() == PeriodKind::Month && *p < this_month)
        .max()
        .unwrap_or_else(|| this_month.previous());
    json!({
        "name": user.name,
        "area": area_brief(web, user.area),
        "today": today.to_string(),
        "latest_month": latest.to_string(),
    })
}

pub(super) fn area_brief(web: &Web, code: AreaCode) -> Value {
    json!({
        "code": code.to_string(),
        "name": web.hub.areas.name(code),
        "level": code.level().as_str(),
        "level_zh": code.level().zh(),
    })
}
