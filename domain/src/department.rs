//! Departments (条): reporters that are not divisions. A department (国资委, 机关事务管理局,
//! 商务局: three of the five seeds are written by one) belongs to an area and to a 系统 (商务系统
//! across a city). Its figures are never added into the territory's totals (the same petition
//! would count twice); departments are rolled up and ranked among themselves.
//!
//! A deployment lists its departments in a CSV file: `id,name,area,system`, or in Chinese
//! `部门代码,部门名称,所属区划,系统` (UTF-8, or GBK as Excel and WPS save it). An id starts with a
//! lowercase letter and holds lowercase letters, digits, `-` and `_` (e.g. `sw-510722` for
//! 三台县商务局), so it is never taken for a division code and never falls in a code's range.
//!
//! A department reports with its own node certificate (`pingan://node/AREA/ID`) and its own form
//! (`departments = true` in the catalogue); the hub keeps its reports apart from the divisions'
//! and answers `query departments` from them.

use std::collections::HashMap;

use crate::{AreaCode, Areas};

/// One department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: String,
    pub name: String,
    /// The area it belongs to (a county's 商务局: the county).
    pub area: AreaCode,
    /// Its 系统, e.g. 商务系统.
    pub system: String,
}

/// A deployment's departments.
#[derive(Debug, Clone, Default)]
pub struct Departments {
    list: Vec<Department>,
    by_id: HashMap<String, usize>,
}

/// Why a departments file was refused: the line and the reason, in Chinese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("部门名录第 {line} 行：{reason}")]
pub struct DepartmentsError {
    pub line: u64,
    pub reason: String,
}

/// Column headers, English or Chinese.
const ID: [&str; 2] = ["id", "部门代码"];
const NAME: [&str; 2] = ["name", "部门名称"];
const AREA: [&str; 2] = ["area", "所属区划"];
const SYSTEM: [&str; 2] = ["system", "系统"];

/// Longest department id.
pub const MAX_ID: usize = 64;

/// Whether `id` is a well-formed department id.
pub fn valid_id(id: &str) -> bool {
    id.len() <= MAX_ID
        && id.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Departments {
    /// Reads a departments file's bytes (UTF-8 or GBK). With `areas`, every department's area
    /// must be in the registry.
    pub fn from_csv(bytes: &[u8], areas: Option<&Areas>) -> Result<Departments, DepartmentsError> {
        let at = |line: u64, reason: String| DepartmentsError { line, reason };
        let (text, _) = crate::text::decode(bytes).map_err(|e| at(1, e.to_string()))?;
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = csv
            .headers()
            .map_err(|e| at(1, format!("读不出表头：{e}")))?
            .clone();
        let col = |names: [&str; 2]| {
            headers
                .iter()
                .position(|h| names.contains(&h.trim_start_matches('\u{feff}')))
        };
        let (Some(id), Some(name), Some(area), Some(system)) =
            (col(ID), col(NAME), col(AREA), col(SYSTEM))
        else {
            return Err(at(
                1,
                "表头应为 id,name,area,system（或 部门代码,部门名称,所属区划,系统）".into(),
            ));
        };
        let mut out = Departments::default();
        for (i, rec) in csv.records().enumerate() {
            let line = i as u64 + 2;
            let rec = rec.map_err(|e| at(line, e.to_string()))?;
            let field = |c: usize| rec.get(c).unwrap_or("").to_owned();
            let d = Department {
                id: field(id),
                name: field(name),
                area: field(area)
                    .parse()
                    .map_err(|e: crate::area::AreaCodeError| at(line, e.to_string()))?,
                system: field(system),
            };
            if !valid_id(&d.id) {
                return Err(at(
                    line,
                    format!(
                        "部门代码「{}」应以小写字母开头，只含小写字母、数字、- 和 _（不超过 {MAX_ID} 个字符），例如 sw-510722",
                        d.id
                    ),
                ));
            }
            if d.name.is_empty() || d.system.is_empty() {
                return Err(at(line, format!("部门 {} 缺少名称或系统", d.id)));
            }
            if let Some(areas) = areas
                && areas.get(d.area).is_none()
            {
                return Err(at(
                    line,
                    format!("部门 {} {} 的所属区划 {} 不在区划里", d.id, d.name, d.area),
                ));
            }
            if out.by_id.insert(d.id.clone(), out.list.len()).is_some() {
                return Err(at(line, format!("部门代码 {} 出现了两次", d.id)));
            }
            out.list.push(d);
        }
        Ok(out)
    }

    /// A department by id.
    pub fn get(&self, id: &str) -> Option<&Department> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// Every department, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Department> {
        self.list.iter()
    }

    /// The departments that belong to `area` or to an area within it (all of a county's).
    pub fn within(&self, area: AreaCode) -> impl Iterator<Item = &Department> {
        self.list.iter().filter(move |d| d.area.is_within(area))
    }

    /// The departments of one 系统 within `area` (one 系统 across a city's counties).
    pub fn of_system<'a>(
        &'a self,
        system: &'a str,
        area: AreaCode,
    ) -> impl Iterator<Item = &'a Department> {
        self.within(area).filter(move |d| d.system == system)
    }

    /// The 系统, in order of first appearance.
    pub fn systems(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in &self.list {
            if !out.contains(&d.system.as_str()) {
                out.push(&d.system);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    const FILE: &str = "部门代码,部门名称,所属区划,系统\n\
                        sw-510722,三台县商务局,510722,商务系统\n\
                        gzw-510722,三台县国资委,510722,国资系统\n\
                        sw-510705,安州区商务局,510705,商务系统\n";

    #[test]
    fn a_deployment_lists_its_departments_in_chinese_or_english_and_gbk() {
        let d = Departments::from_csv(FILE.as_bytes(), None).unwrap();
        assert_eq!(d.get("sw-510722").unwrap().name, "三台县商务局");
        assert_eq!(d.systems(), ["商务系统", "国资系统"]);
        let santai: AreaCode = "510722".parse().unwrap();
        let city: AreaCode = "5107".parse().unwrap();
        assert_eq!(d.within(santai).count(), 2);
        let commerce: Vec<&str> = d
            .of_system("商务系统", city)
            .map(|x| x.id.as_str())
            .collect();
        assert_eq!(commerce, ["sw-510722", "sw-510705"]);
        // GBK, as Excel saves it, with English headers
        let (gbk, _, _) = encoding_rs::GBK
            .encode("id,name,area,system\nsw-510722,三台县商务局,510722,商务系统\n");
        let d = Departments::from_csv(&gbk, Some(&fixtures::santai_areas())).unwrap();
        assert_eq!(d.get("sw-510722").unwrap().system, "商务系统");
    }

    #[test]
    fn refuses_ids_that_could_be_codes_unknown_areas_and_duplicates() {
        let areas = fixtures::santai_areas();
        for (text, line, needle) in [
            ("id,name\nsw,商务局\n", 1, "表头"),
            (
                "id,name,area,system\n510722001,商务局,510722,商务系统\n",
                2,
                "小写字母开头",
            ),
            (
                "id,name,area,system\nSW,商务局,510722,商务系统\n",
                2,
                "小写字母开头",
            ),
            ("id,name,area,system\nsw,商务局,5107xx,商务系统\n", 2, ""),
            (
                "id,name,area,system\nsw,商务局,510705,商务系统\n",
                2,
                "不在区划里",
            ),
            (
                "id,name,area,system\nsw,,510722,商务系统\n",
                2,
                "缺少名称或系统",
            ),
            (
                "id,name,area,system\nsw,商务局,510722,商务系统\nsw,国资委,510722,国资系统\n",
                3,
                "出现了两次",
            ),
        ] {
            let e = Departments::from_csv(text.as_bytes(), Some(&areas)).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
        assert!(valid_id("gzw-510722") && !valid_id("510722") && !valid_id(""));
    }
}
