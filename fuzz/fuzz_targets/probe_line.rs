//! Probe log `[health]` line: never panics on any bytes.
#![no_main]

use reconnect_core::probe_log::parse_health_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(sample)) = parse_health_line(data) {
        let line = sample.to_line();
        let again = parse_health_line(line.as_bytes()).expect("to_line output parses");
        assert!(again.is_some(), "{line:?}");
    }
});
