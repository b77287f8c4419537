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

/// Synthetic population figures for 三台县 (per village, 2024–2026): plausible, not official.
pub const SANTAI_POPULATION_CSV: &str = include_str!("../data/population-510722-synthetic.csv");

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
}
