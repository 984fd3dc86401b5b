//! `.env` writer then reader: any value (control characters, ANSI colour, quotes, `=`, `#`,
//! newlines, non-ASCII) comes back unchanged.
#![no_main]

use evidence_core::dotenv::{EnvDoc, EnvWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|values: Vec<String>| {
    let mut w = EnvWriter::new();
    for (i, v) in values.iter().enumerate() {
        w.push(format!("K{i}"), v);
    }
    let text = w.render();
    let doc = EnvDoc::parse(&text, "fuzz.env").expect("the writer's output reads back");
    assert_eq!(doc.len(), values.len());
    for (i, v) in values.iter().enumerate() {
        assert_eq!(doc.get(&format!("K{i}")), Some(v.as_str()), "{text:?}");
    }
});
