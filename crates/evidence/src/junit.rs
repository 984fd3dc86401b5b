//! `evidence junit`: the verifiers' verdicts (`<verifier> --format json`: `verify.check` records
//! then one `verify.verdict`) as JUnit XML for a CI server. One `<testsuite>` per verified
//! evidence file, one `<testcase>` per check; a `breach` is a `<failure>`, a `malformed` check an
//! `<error>`; one suite per verifier run; a suite whose verdict record is missing (a verifier
//! that died) gets an `<error>`.

use std::fmt::Write as _;

use evidence_core::jsonl::JsonlReader;
use evidence_core::{EvidenceError, Exit, Result};
use serde::Deserialize;

use crate::JunitArgs;

#[derive(Debug, Deserialize)]
struct Record {
    kind: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    evidence: String,
    #[serde(default)]
    check: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    passed: Option<bool>,
}

#[derive(Debug, Default)]
struct Suite {
    tool: String,
    evidence: String,
    cases: Vec<(String, String, String)>,
    verdict: Option<bool>,
}

/// Escape text for XML attributes and content; characters XML 1.0 cannot hold become U+FFFD.
#[must_use]
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

pub(crate) fn run(a: &JunitArgs) -> Result<Exit> {
    if a.inputs.iter().filter(|i| i.is_stdin()).count() > 1 {
        return Err(EvidenceError::usage("stdin (-) can be given once"));
    }
    let mut suites: Vec<Suite> = Vec::new();
    for input in &a.inputs {
        let mut r = JsonlReader::new(input.open()?, input.label());
        while let Some(rec) = r.next_record::<Record>() {
            let (line, rec) = rec?;
            let find = |suites: &mut Vec<Suite>| -> usize {
                if let Some(i) = suites
                    .iter()
                    // An open suite of the same verifier and file (one verifier run ends with its
                    // verdict; a second run on the same file is a suite of its own).
                    .position(|s| {
                        s.tool == rec.tool && s.evidence == rec.evidence && s.verdict.is_none()
                    })
                {
                    i
                } else {
                    suites.push(Suite {
                        tool: rec.tool.clone(),
                        evidence: rec.evidence.clone(),
                        ..Suite::default()
                    });
                    suites.len() - 1
                }
            };
            match rec.kind.as_str() {
                "verify.check" => {
                    if !matches!(rec.outcome.as_str(), "pass" | "breach" | "malformed") {
                        return Err(EvidenceError::parse(
                            input.label(),
                            line,
                            "outcome",
                            "pass, breach or malformed",
                            rec.outcome,
                        ));
                    }
                    let i = find(&mut suites);
                    suites[i].cases.push((
                        rec.check.clone(),
                        rec.outcome.clone(),
                        rec.detail.clone(),
                    ));
                }
                "verify.verdict" => {
                    let i = find(&mut suites);
                    suites[i].verdict = Some(rec.passed.ok_or_else(|| {
                        EvidenceError::parse(input.label(), line, "passed", "true or false", "none")
                    })?);
                }
                other => {
                    return Err(EvidenceError::parse(
                        input.label(),
                        line,
                        "kind",
                        "verify.check or verify.verdict (a verifier's --format json output)",
                        other,
                    ));
                }
            }
        }
    }
    if suites.is_empty() {
        return Err(EvidenceError::failed(
            "no verifier records in the input (run the verifier with --format json)",
        ));
    }
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = suites.iter().map(|s| s.cases.len().max(1)).sum();
    let count = |o: &str| -> usize {
        suites
            .iter()
            .map(|s| s.cases.iter().filter(|c| c.1 == o).count())
            .sum()
    };
    let missing = suites.iter().filter(|s| s.verdict.is_none()).count();
    let _ = writeln!(
        xml,
        "<testsuites name=\"ctp-ops verifiers\" tests=\"{total}\" failures=\"{}\" errors=\"{}\">",
        count("breach"),
        count("malformed") + missing
    );
    let mut worst = Exit::Pass;
    for s in &suites {
        let fails = s.cases.iter().filter(|c| c.1 == "breach").count();
        let errs = s.cases.iter().filter(|c| c.1 == "malformed").count()
            + usize::from(s.verdict.is_none());
        worst = worst.worst(if errs > 0 {
            Exit::BadInput
        } else if fails > 0 || s.verdict == Some(false) {
            Exit::Breach
        } else {
            Exit::Pass
        });
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" errors=\"{errs}\">",
            xml_escape(&format!("{}: {}", s.tool, s.evidence)),
            s.cases.len() + usize::from(s.verdict.is_none())
        );
        for (check, outcome, detail) in &s.cases {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(&s.tool),
                xml_escape(check)
            );
            match outcome.as_str() {
                "breach" => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure type=\"breach\" message=\"{0}\">{0}</failure>\n    </testcase>",
                        xml_escape(detail)
                    );
                }
                "malformed" => {
                    let _ = writeln!(
                        xml,
                        ">\n      <error type=\"malformed\" message=\"{0}\">{0}</error>\n    </testcase>",
                        xml_escape(detail)
                    );
                }
                _ => {
                    let _ = writeln!(
                        xml,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        xml_escape(detail)
                    );
                }
            }
        }
        if s.verdict.is_none() {
            let _ = writeln!(
                xml,
                "    <testcase classname=\"{}\" name=\"verdict\">\n      <error type=\"missing\" message=\"no verify.verdict record: the verifier did not finish\"/>\n    </testcase>",
                xml_escape(&s.tool)
            );
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    a.output_file.write_all(xml.as_bytes())?;
    Ok(worst)
}
