//! `.env` evidence: a strict reader and an ordered writer.
//!
//! Reader rules (stricter than the original, which skipped what it did not understand):
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - every other line is `KEY=value`; the key is trimmed and must be non-empty and made of
//!   `[A-Za-z0-9_.-]`; the value is trimmed;
//! - a value that starts with `"` is a double-quoted string with the escapes `\\ \" \n \r \t`
//!   and `\u{HEX}` (any other character, as one to six hex digits) and must end with the closing
//!   quote; a value that starts with `'` is taken literally up to the closing `'`; anything else is
//!   taken as it is (inner quotes, `#` and `=` included), which keeps the original's hand-typed
//!   files readable;
//! - a duplicate key, an empty key and a line without `=` are errors with the line number.
//!
//! The writer keeps insertion order (the contract's key order) and quotes a value only when the
//! reader would not get it back verbatim: whitespace at either end, a leading quote or `#`, or a
//! control character (newline, ESC of an ANSI colour, DEL, ...). Inside the quotes `\` and `"` are
//! escaped, `\n \r \t` are written as such and every other control character as `\u{HEX}`; all
//! other characters (`=`, `#`, non-ASCII) are written as they are. `write → read` returns every
//! value unchanged (a property test proves it). Evidence is never loaded into the environment.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::error::{EvidenceError, Result, excerpt};

/// One `KEY=value` entry with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// The key.
    pub key: String,
    /// The unquoted value.
    pub value: String,
    /// 1-based line number in the source.
    pub line: usize,
}

/// A parsed `.env` document: entries in file order, keys unique.
#[derive(Debug, Clone, Default)]
pub struct EnvDoc {
    source: String,
    entries: Vec<EnvEntry>,
    index: HashMap<String, usize>,
}

impl EnvDoc {
    /// Parse `text`; `source` is the label used in errors (path or `-`).
    pub fn parse(text: &str, source: &str) -> Result<EnvDoc> {
        let mut doc = EnvDoc {
            source: source.to_string(),
            ..EnvDoc::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(EvidenceError::parse(
                    source,
                    line_no,
                    "line",
                    "KEY=value",
                    excerpt(line),
                ));
            };
            let key = k.trim();
            if key.is_empty() {
                return Err(EvidenceError::parse(
                    source,
                    line_no,
                    "key",
                    "a non-empty key",
                    "an empty key",
                ));
            }
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return Err(EvidenceError::parse(
                    source,
                    line_no,
                    "key",
                    "letters, digits, '_', '.' or '-'",
                    excerpt(key),
                ));
            }
            let value = unquote(v.trim()).map_err(|what| {
                EvidenceError::parse(source, line_no, key, what, excerpt(v.trim()))
            })?;
            if let Some(&first) = doc.index.get(key) {
                return Err(EvidenceError::parse(
                    source,
                    line_no,
                    key,
                    "each key once",
                    format!("a duplicate of line {}", doc.entries[first].line),
                ));
            }
            doc.index.insert(key.to_string(), doc.entries.len());
            doc.entries.push(EnvEntry {
                key: key.to_string(),
                value,
                line: line_no,
            });
        }
        Ok(doc)
    }

    /// The label of the source (path or `-`).
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].value.as_str())
    }

    /// The entry of `key`, if present.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<&EnvEntry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    /// The line of `key`, or 0 when absent.
    #[must_use]
    pub fn line_of(&self, key: &str) -> usize {
        self.entry(key).map_or(0, |e| e.line)
    }

    /// The value of `key`, which must be present and non-empty.
    pub fn require(&self, key: &str) -> Result<&str> {
        match self.entry(key) {
            None => Err(EvidenceError::parse(
                &self.source,
                0,
                key,
                "a required key",
                "it missing",
            )),
            Some(e) if e.value.is_empty() => Err(EvidenceError::parse(
                &self.source,
                e.line,
                key,
                "a non-empty value",
                "an empty value",
            )),
            Some(e) => Ok(&e.value),
        }
    }

    /// A parse error about `key`'s value, at its line.
    #[must_use]
    pub fn field_error(&self, key: &str, expected: &str) -> EvidenceError {
        let found = self.get(key).map_or_else(|| "nothing".to_string(), excerpt);
        EvidenceError::parse(&self.source, self.line_of(key), key, expected, found)
    }

    /// All entries in file order.
    #[must_use]
    pub fn entries(&self) -> &[EnvEntry] {
        &self.entries
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

const ESCAPES: &str = "one of the escapes \\\\ \\\" \\n \\r \\t \\u{HEX}";

/// The rest of a `\u{HEX}` escape (after the `u`): one to six hex digits naming a character.
fn unicode_escape(chars: &mut std::str::Chars<'_>) -> std::result::Result<char, &'static str> {
    if chars.next() != Some('{') {
        return Err(ESCAPES);
    }
    let mut hex = String::new();
    for c in chars.by_ref() {
        if c == '}' {
            return u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| {
                    (1..=6).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
                })
                .and_then(char::from_u32)
                .ok_or(ESCAPES);
        }
        hex.push(c);
        if hex.len() > 6 {
            break;
        }
    }
    Err(ESCAPES)
}

fn unquote(v: &str) -> std::result::Result<String, &'static str> {
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::with_capacity(rest.len());
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    return if chars.as_str().is_empty() {
                        Ok(out)
                    } else {
                        Err("nothing after the closing quote")
                    };
                }
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('u') => out.push(unicode_escape(&mut chars)?),
                    _ => return Err(ESCAPES),
                },
                c => out.push(c),
            }
        }
        Err("a closing double quote")
    } else if let Some(rest) = v.strip_prefix('\'') {
        match rest.strip_suffix('\'') {
            Some(inner) if !inner.contains('\'') => Ok(inner.to_string()),
            _ => Err("a closing single quote at the end"),
        }
    } else {
        Ok(v.to_string())
    }
}

fn needs_quotes(v: &str) -> bool {
    v.starts_with(['"', '\'', '#']) || v.trim() != v || v.chars().any(char::is_control)
}

/// Quote `v` for a `.env` line when the reader would not return it verbatim.
#[must_use]
pub fn quote_value(v: &str) -> String {
    if !needs_quotes(v) {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Builds a `.env` document in contract order.
#[derive(Debug, Clone, Default)]
pub struct EnvWriter {
    lines: Vec<(String, String)>,
    header: Vec<String>,
}

impl EnvWriter {
    /// An empty document.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A `# comment` line placed before the keys (newlines are replaced by spaces).
    pub fn comment(&mut self, text: &str) -> &mut Self {
        self.header.push(text.replace(['\n', '\r'], " "));
        self
    }

    /// Append `key=value`. Keys must be unique; a repeated key replaces the earlier value in place.
    pub fn push(&mut self, key: impl Into<String>, value: impl ToString) -> &mut Self {
        let key = key.into();
        let value = value.to_string();
        if let Some(slot) = self.lines.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.lines.push((key, value));
        }
        self
    }

    /// Append every pair.
    pub fn extend<I, K, V>(&mut self, pairs: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: ToString,
    {
        for (k, v) in pairs {
            self.push(k, v);
        }
        self
    }

    /// The document text, one `KEY=value` per line, newline-terminated.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for h in &self.header {
            let _ = writeln!(out, "# {h}");
        }
        for (k, v) in &self.lines {
            let _ = writeln!(out, "{k}={}", quote_value(v));
        }
        out
    }
}

/// Parse a boolean the way the original verifiers did: `true|1|yes` / `false|0|no`,
/// case-insensitive.
#[must_use]
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Parse a finite, non-negative decimal number. Rejects `nan`, `inf`, `1_0`, hex, signs other than
/// none, and empty text (the original accepted Python's numeric literals).
#[must_use]
pub fn parse_non_negative_f64(v: &str) -> Option<f64> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && v.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.');
    if !ok {
        return None;
    }
    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0)
}

/// Parse a non-negative integer made of ASCII digits only.
#[must_use]
pub fn parse_u64(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_awkward_values() {
        let values = [
            "plain",
            "with spaces inside",
            " leading space",
            "trailing ",
            "#hash first",
            "a#b",
            "k=v=w",
            "\"quoted\"",
            "'single'",
            "multi\nline",
            "tab\there",
            "back\\slash",
            "",
            "sh -c \"echo hi\"",
        ];
        let mut w = EnvWriter::new();
        w.comment("generated by test");
        for (i, v) in values.iter().enumerate() {
            w.push(format!("K{i}"), v);
        }
        let text = w.render();
        let doc = EnvDoc::parse(&text, "t.env").unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(doc.get(&format!("K{i}")), Some(*v), "K{i} in\n{text}");
        }
        assert_eq!(doc.len(), values.len());
        assert_eq!(doc.entries()[0].key, "K0");
    }

    #[test]
    fn control_characters_and_colour_round_trip() {
        let values = [
            "\u{1b}[32mok\u{1b}[0m",
            "bell\u{7}nul\u{0}del\u{7f}",
            "nel\u{85}end",
            "\u{1b}",
            "日本語 = 値 # not a comment",
            "a\\u{41}",
            "\"",
            "'",
            "=",
            "#",
            " ",
            "\r\n",
        ];
        for v in values {
            let mut w = EnvWriter::new();
            w.push("k", v);
            let text = w.render();
            let doc = EnvDoc::parse(&text, "t.env").unwrap();
            assert_eq!(doc.get("k"), Some(v), "{text:?}");
            assert_eq!(text.lines().count(), 1, "{text:?}");
        }
        assert_eq!(
            EnvWriter::new().push("k", "\u{1b}[1m").render(),
            "k=\"\\u{1b}[1m\"\n"
        );
    }

    #[test]
    fn bad_unicode_escapes_are_errors() {
        for bad in [
            "k=\"\\u41\"",
            "k=\"\\u{}\"",
            "k=\"\\u{d800}\"",
            "k=\"\\u{1234567}\"",
            "k=\"\\u{+41}\"",
            "k=\"\\u{41\"",
        ] {
            let e = EnvDoc::parse(bad, "x.env").unwrap_err();
            assert!(e.to_string().contains("\\u{HEX}"), "{bad}: {e}");
        }
        // Outside quotes the text is taken as it is (the original's hand-typed files).
        let doc = EnvDoc::parse("k=\\u{41}\n", "x.env").unwrap();
        assert_eq!(doc.get("k"), Some("\\u{41}"));
    }

    /// A value drawn mostly from the characters that break naive `.env` writers.
    #[derive(Debug, Clone)]
    struct Awkward(String);

    impl quickcheck::Arbitrary for Awkward {
        fn arbitrary(g: &mut quickcheck::Gen) -> Self {
            const PIECES: [&str; 22] = [
                "\u{1b}[31m",
                "\u{1b}[0m",
                "\"",
                "'",
                "=",
                "#",
                "\\",
                "\\n",
                "\\u{41}",
                "\n",
                "\r",
                "\t",
                " ",
                "\u{0}",
                "\u{7f}",
                "\u{85}",
                "\u{2028}",
                "\u{3000}",
                "é",
                "日",
                "a",
                "Z9",
            ];
            let len = usize::arbitrary(g) % 12;
            let mut s = String::new();
            for _ in 0..len {
                if bool::arbitrary(g) {
                    s.push_str(g.choose(&PIECES).copied().unwrap_or("a"));
                } else {
                    s.push(char::arbitrary(g));
                }
            }
            Awkward(s)
        }
        fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
            Box::new(self.0.shrink().map(Awkward))
        }
    }

    fn round_trips(values: &[String]) -> bool {
        let mut w = EnvWriter::new();
        for (i, v) in values.iter().enumerate() {
            w.push(format!("K{i}"), v);
        }
        let text = w.render();
        let Ok(doc) = EnvDoc::parse(&text, "p.env") else {
            return false;
        };
        doc.len() == values.len()
            && values
                .iter()
                .enumerate()
                .all(|(i, v)| doc.get(&format!("K{i}")) == Some(v.as_str()))
    }

    #[test]
    fn property_write_then_read_is_identity() {
        fn awkward(values: Vec<Awkward>) -> bool {
            round_trips(&values.into_iter().map(|a| a.0).collect::<Vec<_>>())
        }
        fn any_string(values: Vec<String>) -> bool {
            round_trips(&values)
        }
        quickcheck::QuickCheck::new()
            .tests(2000)
            .quickcheck(awkward as fn(Vec<Awkward>) -> bool);
        quickcheck::QuickCheck::new()
            .tests(2000)
            .quickcheck(any_string as fn(Vec<String>) -> bool);
    }

    #[test]
    fn strict_errors_have_lines() {
        let e = EnvDoc::parse("a=1\nnot a pair\n", "x.env").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.env:2: line: expected KEY=value, found \"not a pair\""
        );
        let e = EnvDoc::parse("a=1\n\na=2\n", "x.env").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.env:3: a: expected each key once, found a duplicate of line 1"),
            "{e}"
        );
        let e = EnvDoc::parse(" =1\n", "x.env").unwrap_err();
        assert!(e.to_string().contains("x.env:1: key"), "{e}");
        let e = EnvDoc::parse("a=\"open\n", "x.env").unwrap_err();
        assert!(e.to_string().contains("closing double quote"), "{e}");
    }

    #[test]
    fn require_reports_missing_and_empty() {
        let doc = EnvDoc::parse("# c\na=\nb=2\n", "y.env").unwrap();
        assert!(
            doc.require("a")
                .unwrap_err()
                .to_string()
                .contains("y.env:2: a")
        );
        assert!(
            doc.require("z")
                .unwrap_err()
                .to_string()
                .contains("z: expected a required key")
        );
        assert_eq!(doc.require("b").unwrap(), "2");
    }

    #[test]
    fn numbers_are_strict() {
        for bad in [
            "nan", "inf", "-1", "1_0", "", "0x10", "+1", "1.0.0", "NaN", "infinity",
        ] {
            assert_eq!(parse_non_negative_f64(bad), None, "{bad}");
        }
        assert_eq!(parse_non_negative_f64("0.018"), Some(0.018));
        assert_eq!(parse_non_negative_f64("1e1"), Some(10.0));
        assert_eq!(parse_u64("12"), Some(12));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
    }
}
