//! The division registry: every area with its name, level, parent, validity period and
//! successor, loaded from the national statistical division CSV format, plus population
//! attributes per area and year.
//!
//! The CSV format is the one in `shared/data/divisions`: `provinces.csv`, `cities.csv`,
//! `areas.csv`, `streets.csv` and `villages.csv` (or `villages.csv.gz`), each with at least the
//! columns `code` and `name`. A code's parent is its prefix.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use chrono::NaiveDate;

use crate::{AreaCode, Level, Period, area::CodeMap};

/// One division.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub code: AreaCode,
    /// Chinese name as published, e.g. 三台县.
    pub name: String,
    /// First day the code is valid (`None`: valid since before the registry's first edition).
    pub valid_from: Option<NaiveDate>,
    /// First day the code is no longer valid (`None`: still valid).
    pub valid_until: Option<NaiveDate>,
    /// The code that took this one over when it was abolished (撤并), if any.
    pub successor: Option<AreaCode>,
}

impl Area {
    /// Whether the code is valid on every day of `period`.
    pub fn valid_for(&self, period: Period) -> bool {
        self.valid_from
            .is_none_or(|from| period.first_day() >= from)
            && self
                .valid_until
                .is_none_or(|until| period.last_day() < until)
    }
}

/// Why a divisions directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DivisionsError {
    #[error("无法读取 {path}：{source} (cannot read)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} 第 {line} 行：{reason}")]
    Row {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file} 的表头没有「{column}」列 (no column named {column:?} in the header)")]
    MissingColumn { file: String, column: &'static str },
    #[error(
        "{0} 里没有区划文件，应有 provinces.csv、cities.csv、areas.csv、streets.csv、villages.csv[.gz] 之一 (no divisions found)"
    )]
    Empty(PathBuf),
    #[error(
        "区划 {code} {name} 的上级 {parent} 不在区划里 (area {code} has no parent {parent} in the registry)"
    )]
    Orphan {
        code: AreaCode,
        name: String,
        parent: AreaCode,
    },
    #[error("人口文件第 {line} 行：{reason}")]
    Population { line: u64, reason: String },
}

/// All known areas, with their children, and the population attribute.
#[derive(Debug, Clone, Default)]
pub struct Areas {
    by_code: CodeMap<AreaCode, Area>,
    children: CodeMap<AreaCode, Vec<AreaCode>>,
    roots: Vec<AreaCode>,
    population: CodeMap<(AreaCode, i32), u64>,
}

/// The five files of an edition, top level first, with the level they hold.
const FILES: [(&str, Level); 5] = [
    ("provinces", Level::Province),
    ("cities", Level::Prefecture),
    ("areas", Level::County),
    ("streets", Level::Township),
    ("villages", Level::Village),
];

impl Areas {
    /// Loads one edition from a directory in the national CSV format. Missing level files are
    /// allowed (an extract may hold only some levels), but every area's parent must be present
    /// unless it is at the top of what was loaded.
    pub fn load_dir(dir: &Path) -> Result<Areas, DivisionsError> {
        Areas::load_dir_within(dir, None)
    }

    /// [`Areas::load_dir`] keeping only `within`'s subtree and its ancestors (a hub's
    /// jurisdiction): the rest is skipped while reading, so a county hub given the national
    /// divisions holds a county's worth of them.
    pub fn load_dir_within(dir: &Path, within: Option<AreaCode>) -> Result<Areas, DivisionsError> {
        let mut rows = Vec::new();
        for (stem, level) in FILES {
            let plain = dir.join(format!("{stem}.csv"));
            let gz = dir.join(format!("{stem}.csv.gz"));
            let (path, reader): (PathBuf, Box<dyn Read>) = if plain.exists() {
                (plain.clone(), Box::new(open(&plain)?))
            } else if gz.exists() {
                (
                    gz.clone(),
                    Box::new(flate2::read::GzDecoder::new(open(&gz)?)),
                )
            } else {
                continue;
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            read_level(&name, reader, level, within, &mut rows)?;
        }
        if rows.is_empty() {
            return Err(DivisionsError::Empty(dir.to_owned()));
        }
        Areas::from_areas(rows)
    }

    /// Loads one edition from in-memory files keyed by file stem (`provinces`, ...), a `.gz`
    /// one decompressed, keeping only `within`'s subtree and ancestors when given.
    pub fn from_files_within(
        files: &[(&str, &[u8], bool)],
        within: Option<AreaCode>,
    ) -> Result<Areas, DivisionsError> {
        let mut rows = Vec::new();
        for (stem, level) in FILES {
            if let Some((_, bytes, gz)) = files.iter().find(|(s, _, _)| *s == stem) {
                let reader: Box<dyn Read + '_> = if *gz {
                    Box::new(flate2::read::GzDecoder::new(*bytes))
                } else {
                    Box::new(*bytes)
                };
                read_level(&format!("{stem}.csv"), reader, level, within, &mut rows)?;
            }
        }
        Areas::from_areas(rows)
    }

    /// Loads one edition from in-memory CSV texts, keyed by file stem (`provinces`, `cities`, ...).
    pub fn from_csv_texts(texts: &[(&str, &str)]) -> Result<Areas, DivisionsError> {
        let mut rows = Vec::new();
        for (stem, level) in FILES {
            if let Some((_, text)) = texts.iter().find(|(s, _)| *s == stem) {
                read_level(
                    &format!("{stem}.csv"),
                    text.as_bytes(),
                    level,
                    None,
                    &mut rows,
                )?;
            }
        }
        Areas::from_areas(rows)
    }

    /// Builds a registry from areas; checks that parents exist.
    pub fn from_areas(areas: Vec<Area>) -> Result<Areas, DivisionsError> {
        let mut reg = Areas::default();
        for a in areas {
            reg.by_code.insert(a.code, a);
        }
        reg.relink()?;
        Ok(reg)
    }

    fn relink(&mut self) -> Result<(), DivisionsError> {
        self.children.clear();
        self.roots.clear();
        let top = self.by_code.keys().map(|c| c.level()).min();
        let mut codes: Vec<AreaCode> = self.by_code.keys().copied().collect();
        codes.sort();
        for code in codes {
            match code.parent() {
                Some(parent) if self.by_code.contains_key(&parent) => {
                    self.children.entry(parent).or_default().push(code)
                }
                Some(parent) if Some(code.level()) != top => {
                    let name = self.by_code[&code].name.clone();
                    return Err(DivisionsError::Orphan { code, name, parent });
                }
                _ => self.roots.push(code),
            }
        }
        Ok(())
    }

    /// Applies a later edition that takes effect on `effective`: codes missing from it become
    /// invalid from that day (history keeps them), new codes become valid from that day, names
    /// of kept codes follow the new edition (a rename keeps the code). `successors` maps an
    /// abolished code to the code that took it over (撤并).
    pub fn apply_edition(
        &mut self,
        next: &Areas,
        effective: NaiveDate,
        successors: &[(AreaCode, AreaCode)],
    ) -> Result<(), DivisionsError> {
        for (code, area) in self.by_code.iter_mut() {
            match next.by_code.get(code) {
                Some(newer) => area.name.clone_from(&newer.name),
                None if area.valid_until.is_none() => area.valid_until = Some(effective),
                None => {}
            }
        }
        for (code, area) in &next.by_code {
            self.by_code.entry(*code).or_insert_with(|| Area {
                valid_from: Some(effective),
                ..area.clone()
            });
        }
        for (old, new) in successors {
            if let Some(a) = self.by_code.get_mut(old) {
                a.successor = Some(*new);
            }
        }
        self.relink()
    }

    /// The registry cut to `root`'s subtree and its ancestors (a hub's jurisdiction), with
    /// their populations. `None` when `root` is not in the registry.
    pub fn within(&self, root: AreaCode) -> Option<Areas> {
        self.get(root)?;
        let kept = |code: AreaCode| code.is_within(root) || root.is_within(code);
        let mut reg = Areas {
            by_code: self
                .by_code
                .iter()
                .filter(|(c, _)| kept(**c))
                .map(|(c, a)| (*c, a.clone()))
                .collect(),
            population: self
                .population
                .iter()
                .filter(|((c, _), _)| kept(*c))
                .map(|(k, v)| (*k, *v))
                .collect(),
            ..Areas::default()
        };
        reg.relink().expect("a cut of a linked registry is linked");
        Some(reg)
    }

    /// Loads population figures: CSV with columns `code,year,population`.
    pub fn load_population(&mut self, reader: impl Read) -> Result<(), DivisionsError> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = csv
            .headers()
            .map_err(|e| pop_err(0, e.to_string()))?
            .clone();
        let col = |name: &'static str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
                .ok_or_else(|| {
                    pop_err(
                        1,
                        format!("表头没有「{name}」列 (no column named {name:?} in the header)"),
                    )
                })
        };
        let (c, y, p) = (col("code")?, col("year")?, col("population")?);
        for rec in csv.records() {
            let rec =
                rec.map_err(|e| pop_err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
            let line = rec.position().map_or(0, |p| p.line());
            let code: AreaCode = rec[c]
                .parse()
                .map_err(|e: crate::area::AreaCodeError| pop_err(line, e.to_string()))?;
            if !self.by_code.contains_key(&code) {
                return Err(pop_err(
                    line,
                    format!("区划代码 {code} 不在所给的区划里 (unknown area {code})"),
                ));
            }
            let year: i32 = rec[y]
                .parse()
                .map_err(|_| pop_err(line, format!("年份「{}」不是数字 (bad year)", &rec[y])))?;
            let pop: u64 = rec[p].parse().map_err(|_| {
                pop_err(
                    line,
                    format!("人口「{}」不是非负整数 (bad population)", &rec[p]),
                )
            })?;
            self.population.insert((code, year), pop);
        }
        Ok(())
    }

    /// The population attribute of an area for a year, when one was loaded.
    pub fn population(&self, code: AreaCode, year: i32) -> Option<u64> {
        self.population.get(&(code, year)).copied()
    }

    /// The area with this code, valid or not.
    pub fn get(&self, code: AreaCode) -> Option<&Area> {
        self.by_code.get(&code)
    }

    /// Chinese name of a code, or the code itself when unknown.
    pub fn name(&self, code: AreaCode) -> String {
        self.get(code)
            .map_or_else(|| code.to_string(), |a| a.name.clone())
    }

    /// The children of an area (every edition's), sorted by code.
    pub fn children(&self, code: AreaCode) -> &[AreaCode] {
        self.children.get(&code).map_or(&[], Vec::as_slice)
    }

    /// Areas that have no parent in the registry (provinces, or the top of an extract).
    pub fn roots(&self) -> &[AreaCode] {
        &self.roots
    }

    /// Every descendant of `code` at `level` (pre-order, sorted by code).
    pub fn descendants_at(&self, code: AreaCode, level: Level) -> Vec<AreaCode> {
        let mut out = Vec::new();
        let mut stack = vec![code];
        while let Some(c) = stack.pop() {
            if c.level() == level {
                out.push(c);
            } else if c.level() < level {
                stack.extend(self.children(c).iter().rev());
            }
        }
        out
    }

    /// Number of areas known.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// Every area, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Area> {
        self.by_code.values()
    }

    /// Counts of areas per level, top down.
    pub fn counts_by_level(&self) -> BTreeMap<Level, usize> {
        let mut m = BTreeMap::new();
        for code in self.by_code.keys() {
            *m.entry(code.level()).or_default() += 1;
        }
        m
    }
}

fn pop_err(line: u64, reason: String) -> DivisionsError {
    DivisionsError::Population { line, reason }
}

fn open(path: &Path) -> Result<BufReader<File>, DivisionsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| DivisionsError::Io {
            path: path.to_owned(),
            source,
        })
}

fn read_level(
    file: &str,
    reader: impl Read,
    level: Level,
    within: Option<AreaCode>,
    out: &mut Vec<Area>,
) -> Result<(), DivisionsError> {
    let kept =
        |code: AreaCode| within.is_none_or(|root| code.is_within(root) || root.is_within(code));
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let row_err = |line: u64, reason: String| DivisionsError::Row {
        file: file.to_owned(),
        line,
        reason,
    };
    let headers = csv
        .headers()
        .map_err(|e| row_err(1, e.to_string()))?
        .clone();
    let col = |column: &'static str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == column)
            .ok_or_else(|| DivisionsError::MissingColumn {
                file: file.to_owned(),
                column,
            })
    };
    let (code_col, name_col) = (col("code")?, col("name")?);
    for rec in csv.records() {
        let rec = rec.map_err(|e| row_err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = rec.position().map_or(0, |p| p.line());
        let (Some(code), Some(name)) = (rec.get(code_col), rec.get(name_col)) else {
            return Err(row_err(
                line,
                "缺少代码或名称 (missing code or name)".into(),
            ));
        };
        let code: AreaCode = code
            .parse()
            .map_err(|e: crate::area::AreaCodeError| row_err(line, e.to_string()))?;
        if code.level() != level {
            return Err(row_err(
                line,
                format!(
                    "代码 {code} 是{}级代码，这个文件应为{}级代码 (a {} code, expected {level})",
                    code.level().zh(),
                    level.zh(),
                    code.level()
                ),
            ));
        }
        if name.is_empty() {
            return Err(row_err(
                line,
                format!("区划 {code} 没有名称 (area {code} has an empty name)"),
            ));
        }
        if !kept(code) {
            continue;
        }
        out.push(Area {
            code,
            name: name.to_owned(),
            valid_from: None,
            valid_until: None,
            successor: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Areas {
        Areas::from_csv_texts(&[
            ("provinces", "code,name\n51,\"四川省\"\n"),
            ("cities", "code,name,provinceCode\n5107,\"绵阳市\",51\n"),
            ("areas", "code,name,cityCode,provinceCode\n510722,\"三台县\",5107,51\n"),
            ("streets", "code,name,areaCode\n510722101,\"潼川镇\",510722\n510722104,\"塔山镇\",510722\n"),
            (
                "villages",
                "code,name,streetCode\n510722101001,\"北坝社区居委会\",510722101\n510722104200,\"甲村\",510722104\n",
            ),
        ])
        .unwrap()
    }

    #[test]
    fn the_shipped_national_registry_restricted_to_a_county_is_that_county() {
        let santai = crate::fixtures::national_areas(Some("510722".parse().unwrap()));
        let extract = crate::fixtures::santai_areas();
        assert_eq!(santai.counts_by_level(), extract.counts_by_level());
        for a in extract.iter() {
            assert_eq!(santai.get(a.code).map(|x| &x.name), Some(&a.name));
        }
        let nation = crate::fixtures::national_areas(None);
        let counts = nation.counts_by_level();
        assert_eq!(counts[&Level::Province], 31);
        assert_eq!(counts[&Level::County], 2_978);
        assert_eq!(counts[&Level::Village], 620_573);
    }

    #[test]
    fn builds_the_tree_from_prefixes() {
        let a = small();
        assert_eq!(a.len(), 7);
        assert_eq!(a.roots(), &["51".parse::<AreaCode>().unwrap()]);
        let county: AreaCode = "510722".parse().unwrap();
        assert_eq!(a.children(county).len(), 2);
        assert_eq!(
            a.descendants_at("51".parse().unwrap(), Level::Village)
                .len(),
            2
        );
        assert_eq!(a.name(county), "三台县");
    }

    #[test]
    fn reports_bad_rows_with_file_and_line() {
        let e = Areas::from_csv_texts(&[("areas", "code,name\n510722,三台县\n51072,坏\n")])
            .unwrap_err();
        assert!(e.to_string().contains("areas.csv 第 3 行"), "{e}");
        let e = Areas::from_csv_texts(&[("areas", "code\n510722\n")]).unwrap_err();
        assert!(
            matches!(e, DivisionsError::MissingColumn { column: "name", .. }),
            "{e}"
        );
        let e = Areas::from_csv_texts(&[("areas", "code,name\n510722101,镇\n")]).unwrap_err();
        assert!(
            e.to_string()
                .contains("代码 510722101 是乡镇级代码，这个文件应为县级代码"),
            "{e}"
        );
        let e = Areas::from_csv_texts(&[
            ("areas", "code,name\n510722,三台县\n"),
            ("villages", "code,name\n510722101001,村\n"),
        ])
        .unwrap_err();
        assert!(matches!(e, DivisionsError::Orphan { .. }), "{e}");
    }

    #[test]
    fn a_later_edition_closes_abolished_codes_without_rewriting_history() {
        let mut a = small();
        // 2025 edition: 塔山镇 merged into 潼川镇 under a new code, its village moved along
        let next = Areas::from_csv_texts(&[
            ("provinces", "code,name\n51,四川省\n"),
            ("cities", "code,name\n5107,绵阳市\n"),
            ("areas", "code,name\n510722,三台县\n"),
            (
                "streets",
                "code,name\n510722101,潼川街道\n510722160,新潼川镇\n",
            ),
            (
                "villages",
                "code,name\n510722101001,北坝社区\n510722160201,甲村\n",
            ),
        ])
        .unwrap();
        let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let tashan: AreaCode = "510722104".parse().unwrap();
        let merged: AreaCode = "510722160".parse().unwrap();
        a.apply_edition(&next, day, &[(tashan, merged)]).unwrap();
        let old = a.get(tashan).unwrap();
        assert!(old.valid_for("2024-12".parse().unwrap()));
        assert!(!old.valid_for("2025-01".parse().unwrap()));
        assert_eq!(old.successor, Some(merged));
        let new = a.get(merged).unwrap();
        assert!(!new.valid_for("2024-12".parse().unwrap()));
        assert!(new.valid_for("2025-01".parse().unwrap()));
        // a rename keeps the code and its history
        assert_eq!(a.name("510722101".parse().unwrap()), "潼川街道");
        assert!(
            a.get("510722101".parse().unwrap())
                .unwrap()
                .valid_for("2020-01".parse().unwrap())
        );
    }

    #[test]
    fn population_attribute() {
        let mut a = small();
        a.load_population("code,year,population\n510722,2025,1080000\n".as_bytes())
            .unwrap();
        assert_eq!(
            a.population("510722".parse().unwrap(), 2025),
            Some(1_080_000)
        );
        assert_eq!(a.population("510722".parse().unwrap(), 2024), None);
        let e = a
            .load_population("code,year,population\n999999,2025,1\n".as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("unknown area 999999"), "{e}");
    }
}
