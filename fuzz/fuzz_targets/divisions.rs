//! The division CSV loader: a registry, or an error naming the file and line; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingan_domain::Areas;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // the input is split into the five level files at form feeds
    let stems = ["provinces", "cities", "areas", "streets", "villages"];
    let texts: Vec<(&str, &str)> = stems.iter().copied().zip(text.split('\u{c}')).collect();
    match Areas::from_csv_texts(&texts) {
        Ok(areas) => {
            for a in areas.iter() {
                if let Some(parent) = a.code.parent() {
                    let _ = areas.children(parent);
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "refused without a reason"),
    }
});
