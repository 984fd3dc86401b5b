//! `.env` reader: never panics; whatever it accepts, the writer writes back to the same values.
#![no_main]

use evidence_core::dotenv::{EnvDoc, EnvWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = EnvDoc::parse(text, "fuzz.env") else {
        return;
    };
    let mut w = EnvWriter::new();
    for e in doc.entries() {
        w.push(e.key.clone(), &e.value);
    }
    let again = EnvDoc::parse(&w.render(), "again.env").expect("the writer's output reads back");
    assert_eq!(again.len(), doc.len());
    for e in doc.entries() {
        assert_eq!(again.get(&e.key), Some(e.value.as_str()), "{:?}", e.key);
    }
});
