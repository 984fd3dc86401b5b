//! WAL line: never panics on any bytes; an accepted event validates to the same status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wal_core::RawEvent;

fuzz_target!(|data: &[u8]| {
    if let Ok((ev, status)) = RawEvent::parse(data) {
        assert_eq!(ev.validate().ok(), Some(status));
    }
});
