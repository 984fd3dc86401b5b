//! Fault-event JSONL line (`fault_events.jsonl`): never panics; an accepted event, written again
//! with `to_line`, parses to the same event.
#![no_main]

use reconnect_core::fault_event::FaultEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ev) = FaultEvent::parse_line(line, "fuzz.jsonl", 1) else {
        return;
    };
    let again =
        FaultEvent::parse_line(&ev.to_line(), "again.jsonl", 1).expect("to_line output parses");
    assert_eq!(again.to_line(), ev.to_line());
});
