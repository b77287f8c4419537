//! Form files (CSV, .xlsx, JSON, in UTF-8 or GBK) and `--set` values: parsed or refused with a
//! message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingan_node::form;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = form::from_xlsx(data) {
        assert!(!e.to_string().is_empty(), "refused without a reason");
    }
    let Ok((text, _)) = pingan_domain::text::decode(data) else {
        return;
    };
    let text = text.as_str();
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
