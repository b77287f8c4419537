//! Who to tell in each area (催报): CSV `area,person,phone,wecom,dingtalk` (or
//! `区划代码,联系人,电话,企业微信,钉钉`), UTF-8 or GBK; the last two (group-robot user ids) may be
//! empty. An area may have several people.

use std::collections::HashMap;

use pingan_domain::{AreaCode, Areas};
use serde::Serialize;

/// One person to remind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub person: String,
    pub phone: String,
    pub wecom: String,
    pub dingtalk: String,
}

/// The contacts by area.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    by_area: HashMap<AreaCode, Vec<Contact>>,
}

const AREA: [&str; 2] = ["area", "区划代码"];
const PERSON: [&str; 2] = ["person", "联系人"];
const PHONE: [&str; 2] = ["phone", "电话"];
const WECOM: [&str; 2] = ["wecom", "企业微信"];
const DINGTALK: [&str; 2] = ["dingtalk", "钉钉"];

impl Contacts {
    /// Reads a contacts file (its areas checked against `areas`); errors name the line.
    pub fn from_csv(bytes: &[u8], areas: &Areas) -> anyhow::Result<Contacts> {
        let (text, _) = pingan_domain::text::decode(bytes)?;
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = csv.headers()?.clone();
        let col = |names: [&str; 2]| {
            headers
                .iter()
                .position(|h| names.contains(&h.trim_start_matches('\u{feff}')))
        };
        let (Some(area), Some(person), Some(phone)) = (col(AREA), col(PERSON), col(PHONE)) else {
            anyhow::bail!(
                "联系人表第 1 行：表头应为 area,person,phone[,wecom,dingtalk]（或 区划代码,联系人,电话,企业微信,钉钉）"
            );
        };
        let (wecom, dingtalk) = (col(WECOM), col(DINGTALK));
        let mut out = Contacts::default();
        for (i, rec) in csv.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| anyhow::anyhow!("联系人表第 {line} 行：{e}"))?;
            let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").to_owned();
            let code: AreaCode = get(Some(area))
                .parse()
                .map_err(|e| anyhow::anyhow!("联系人表第 {line} 行：{e}"))?;
            anyhow::ensure!(
                areas.get(code).is_some(),
                "联系人表第 {line} 行：区划 {code} 不在区划里"
            );
            out.by_area.entry(code).or_default().push(Contact {
                person: get(Some(person)),
                phone: get(Some(phone)),
                wecom: get(wecom),
                dingtalk: get(dingtalk),
            });
        }
        Ok(out)
    }

    /// The people of an area.
    pub fn of(&self, area: AreaCode) -> &[Contact] {
        self.by_area.get(&area).map_or(&[], Vec::as_slice)
    }
}
