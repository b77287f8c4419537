//! Form files (CSV and JSON) and `--set` values: parsed or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingan_node::form;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for result in [
        form::from_csv(text),
        form::from_json(text),
        form::from_sets(&text.lines().map(str::to_owned).collect::<Vec<_>>()),
    ] {
        if let Err(e) = result {
            assert!(!e.to_string().is_empty(), "refused without a reason");
        }
    }
});
