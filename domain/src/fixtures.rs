//! Data committed with pingan so that it works on a fresh machine: the default catalogue and
//! one real county, 四川省绵阳市三台县 (510722), with its 33 townships and 462 villages, taken from
//! the 2023 national statistical division codes (see `data/divisions-510722/SOURCE.md`).

use crate::{AreaCode, Areas};

/// The default indicator catalogue.
pub const CATALOGUE_TOML: &str = include_str!("../data/catalogue.toml");

const PROVINCES: &str = include_str!("../data/divisions-510722/provinces.csv");
const CITIES: &str = include_str!("../data/divisions-510722/cities.csv");
const AREAS: &str = include_str!("../data/divisions-510722/areas.csv");
const STREETS: &str = include_str!("../data/divisions-510722/streets.csv");
const VILLAGES: &str = include_str!("../data/divisions-510722/villages.csv");

const ANZHOU_AREAS: &str = include_str!("../data/divisions-510705/areas.csv");
const ANZHOU_STREETS: &str = include_str!("../data/divisions-510705/streets.csv");
const ANZHOU_VILLAGES: &str = include_str!("../data/divisions-510705/villages.csv");
const ANZHOU_POPULATION_CSV: &str = include_str!("../data/population-510705-synthetic.csv");

/// The built-in catalogue with its first two metrics in each other's place: the same metrics,
/// another fingerprint (a hub or node whose catalogue file lists them in another order).
pub fn reordered_catalogue() -> crate::Catalogue {
    let text = CATALOGUE_TOML;
    let first = text.find("[[metric]]").expect("a metric");
    let second = first + 1 + text[first + 1..].find("[[metric]]").expect("two metrics");
    let third = second
        + 1
        + text[second + 1..]
            .find("[[metric]]")
            .expect("three metrics");
    let swapped = format!(
        "{}{}{}{}",
        &text[..first],
        &text[second..third],
        &text[first..second],
        &text[third..]
    );
    crate::Catalogue::from_toml(&swapped).expect("the same metrics in another order")
}

/// Synthetic population figures for 三台县 (per village, 2024–2026): plausible, not official.
pub const SANTAI_POPULATION_CSV: &str = include_str!("../data/population-510722-synthetic.csv");

/// The national division codes (2023 edition: 31 provinces, 342 prefectures, 2,978 counties,
/// 41,352 townships, 620,573 villages), shipped with pingan (`data/divisions-national/`,
/// 6.4 MB, see its SOURCE.md) so a hub can serve any jurisdiction without a download:
/// `--divisions national`.
pub fn national_areas(within: Option<AreaCode>) -> Areas {
    let files: [(&str, &[u8], bool); 5] = [
        (
            "provinces",
            include_bytes!("../data/divisions-national/provinces.csv"),
            false,
        ),
        (
            "cities",
            include_bytes!("../data/divisions-national/cities.csv"),
            false,
        ),
        (
            "areas",
            include_bytes!("../data/divisions-national/areas.csv"),
            false,
        ),
        (
            "streets",
            include_bytes!("../data/divisions-national/streets.csv"),
            false,
        ),
        (
            "villages",
            include_bytes!("../data/divisions-national/villages.csv.gz"),
            true,
        ),
    ];
    Areas::from_files_within(&files, within).expect("the shipped national divisions are valid")
}

/// 三台县's departments (条) as a deployment lists them: 商务局 and 国资委, the writers of two
/// of the seeds (`部门代码,部门名称,所属区划,系统`).
pub const SANTAI_DEPARTMENTS_CSV: &str = include_str!("../data/departments-510722.csv");

/// 三台县's departments, read against the 三台县 extract.
pub fn santai_departments() -> crate::department::Departments {
    crate::department::Departments::from_csv(
        SANTAI_DEPARTMENTS_CSV.as_bytes(),
        Some(&santai_areas()),
    )
    .expect("the committed departments are valid")
}

/// 三台县's code.
pub fn santai() -> AreaCode {
    "510722".parse().expect("valid code")
}

/// The 三台县 extract (province, prefecture, county, townships, villages), with the synthetic
/// population loaded.
pub fn santai_areas() -> Areas {
    let mut areas = Areas::from_csv_texts(&[
        ("provinces", PROVINCES),
        ("cities", CITIES),
        ("areas", AREAS),
        ("streets", STREETS),
        ("villages", VILLAGES),
    ])
    .expect("the committed fixture is valid");
    areas
        .load_population(SANTAI_POPULATION_CSV.as_bytes())
        .expect("the committed population is valid");
    areas
}

/// 安州区's code.
pub fn anzhou() -> AreaCode {
    "510705".parse().expect("valid code")
}

/// Two counties of 绵阳市 (5107): 三台县 and 安州区 (10 townships, 151 villages), with synthetic
/// populations. The federation tests run a county hub for each under a prefecture hub.
pub fn mianyang_areas() -> Areas {
    // the second extract's files without their header lines
    let body = |text: &'static str| text.split_once('\n').map_or("", |(_, rest)| rest);
    let areas_csv = format!("{AREAS}{}", body(ANZHOU_AREAS));
    let streets_csv = format!("{STREETS}{}", body(ANZHOU_STREETS));
    let villages_csv = format!("{VILLAGES}{}", body(ANZHOU_VILLAGES));
    let mut areas = Areas::from_csv_texts(&[
        ("provinces", PROVINCES),
        ("cities", CITIES),
        ("areas", &areas_csv),
        ("streets", &streets_csv),
        ("villages", &villages_csv),
    ])
    .expect("the committed fixtures are valid");
    for population in [SANTAI_POPULATION_CSV, ANZHOU_POPULATION_CSV] {
        areas
            .load_population(population.as_bytes())
            .expect("the committed population is valid");
    }
    areas
}

#[cfg(test)]
mod tests {
    use crate::Level;

    #[test]
    fn santai_has_its_real_townships_and_villages() {
        let a = super::santai_areas();
        let county = super::santai();
        assert_eq!(a.name(county), "三台县");
        assert_eq!(a.descendants_at(county, Level::Township).len(), 33);
        assert_eq!(a.descendants_at(county, Level::Village).len(), 462);
        assert!(a.population(county, 2025).unwrap() > 500_000);
    }

    #[test]
    fn mianyang_holds_two_whole_counties() {
        let a = super::mianyang_areas();
        let city = "5107".parse().unwrap();
        assert_eq!(a.descendants_at(city, Level::County).len(), 2);
        assert_eq!(a.descendants_at(super::anzhou(), Level::Township).len(), 10);
        assert_eq!(a.descendants_at(super::anzhou(), Level::Village).len(), 151);
        assert_eq!(a.descendants_at(city, Level::Village).len(), 462 + 151);
        assert!(a.population(super::anzhou(), 2026).is_some());
    }
}
