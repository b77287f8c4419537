//! Report validation: any bytes on the wire either decode to a report that validates or are
//! refused with every offending field named; never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pingan_domain::{Areas, Catalogue, Validator, fixtures, pb};
use prost::Message as _;

fn registry() -> &'static (Catalogue, Areas) {
    static R: OnceLock<(Catalogue, Areas)> = OnceLock::new();
    R.get_or_init(|| (Catalogue::builtin(), fixtures::santai_areas()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(report) = pb::Report::decode(data) else {
        return;
    };
    let (catalogue, areas) = registry();
    let validator = Validator {
        catalogue,
        areas: Some(areas),
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
    };
    match validator.validate(&report) {
        Ok(valid) => {
            // a valid report survives its own wire form unchanged
            let again = validator
                .validate(&valid.to_wire())
                .expect("a valid report's wire form is valid");
            assert_eq!(again.digest(), valid.digest());
        }
        Err(violations) => {
            assert!(!violations.0.is_empty(), "refused without a reason");
            for v in &violations.0 {
                assert!(!v.field.is_empty() && !v.reason.is_empty(), "{v:?}");
            }
        }
    }
});
