//! The period and span parsers: what parses prints back as itself; the rest is refused with a
//! message; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingan_domain::{Period, Span};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<Period>() {
        Ok(p) => {
            assert_eq!(p.to_string().parse::<Period>().unwrap(), p);
            assert!(p.first_day() <= p.last_day());
            let _ = (p.next(), p.previous(), p.year_earlier());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match text.parse::<Span>() {
        Ok(s) => assert!(!s.periods().is_empty()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
