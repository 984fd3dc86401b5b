//! Trading calendar YAML: parse never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trading_calendar::Calendar;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Calendar::parse(text, "fuzz.yaml");
});
