//! A hand-written SVG timeline: the probe's health state against the fault windows, one lane per
//! scenario. The health strip is drawn per pixel column (a column with any unhealthy time is red),
//! so the file stays small however long the probe log is.

use std::fmt::Write as _;

use reconnect_core::fault_event::Scenario;
use reconnect_core::probe_log::HealthState;

use crate::analysis::{MergeSummary, Status, Window, secs};
use crate::fmt::{hms_utc, iso_utc};

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 120.0;
const RIGHT: f64 = 30.0;
const PLOT: f64 = WIDTH - LEFT - RIGHT;
const COLUMNS: usize = 1050;
const LANE_H: f64 = 46.0;
const TOP: f64 = 76.0;

const GREEN: &str = "#2e9e44";
const RED: &str = "#d62728";
const GREY: &str = "#c8c8c8";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Scale {
    t0: i64,
    span: f64,
}

impl Scale {
    #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
    fn x(&self, ns: i64) -> f64 {
        LEFT + ((ns - self.t0) as f64 / self.span).clamp(0.0, 1.0) * PLOT
    }
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "pixel columns"
    )]
    fn col(&self, ns: i64) -> usize {
        let f = ((ns - self.t0) as f64 / self.span).clamp(0.0, 1.0);
        ((f * COLUMNS as f64) as usize).min(COLUMNS - 1)
    }
}

/// Health per pixel column: 0 no data, 1 healthy, 2 unhealthy (wins).
fn columns(sc: &Scale, summary: &MergeSummary) -> Vec<u8> {
    let mut cols = vec![0u8; COLUMNS];
    let Some(last) = summary.last else {
        return cols;
    };
    for (i, (ts, state)) in summary.changes.iter().enumerate() {
        let end = summary.changes.get(i + 1).map_or(last.ts_ns, |(t, _)| *t);
        let v = if *state == HealthState::Healthy { 1 } else { 2 };
        for c in &mut cols[sc.col(*ts)..=sc.col(end.max(*ts))] {
            *c = (*c).max(v);
        }
    }
    cols
}

fn strip(out: &mut String, cols: &[u8], y: f64, h: f64) {
    #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
    let cw = PLOT / COLUMNS as f64;
    let mut i = 0;
    while i < cols.len() {
        let v = cols[i];
        let mut j = i + 1;
        while j < cols.len() && cols[j] == v {
            j += 1;
        }
        if v != 0 {
            let color = if v == 1 { GREEN } else { RED };
            #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
            let (x, w) = (LEFT + i as f64 * cw, (j - i) as f64 * cw);
            let _ = writeln!(
                out,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{color}"/>"#
            );
        }
        i = j;
    }
}

/// Render the timeline. `title` is shown on top; `provenance` goes into `<metadata>`.
#[must_use]
pub fn render(windows: &[Window], summary: &MergeSummary, title: &str, provenance: &str) -> String {
    let (t0, t1) = time_span(windows, summary);
    #[expect(clippy::cast_precision_loss, reason = "pixel scale")]
    let sc = Scale {
        t0,
        span: (t1 - t0) as f64,
    };
    let mut scenarios: Vec<Scenario> = windows.iter().map(|w| w.scenario).collect();
    scenarios.sort();
    scenarios.dedup();
    #[expect(clippy::cast_precision_loss, reason = "few lanes")]
    let height = TOP + 40.0 + LANE_H * (scenarios.len() as f64) + 60.0;
    let cols = columns(&sc, summary);

    let mut o = String::with_capacity(64 * 1024);
    let _ = writeln!(
        o,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<title>{}</title>
<metadata>{}</metadata>
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>
<text x="{LEFT}" y="40" fill="#555">{} to {} (UTC). Health strips: green healthy, red unhealthy, blank no data.</text>
<text x="{LEFT}" y="56" fill="#555">Boxes: fault windows, apply to clear (orange recovered, red not recovered, grey unhealthy not observed, dashed not counted or incomplete); blue: clear to recovery.</text>"##,
        esc(title),
        esc(provenance),
        esc(title),
        esc(&iso_utc(t0)),
        esc(&iso_utc(t1)),
    );
    // Probe lane.
    let y = TOP;
    let _ = writeln!(o, r#"<text x="8" y="{:.1}">probe health</text>"#, y + 14.0);
    strip(&mut o, &cols, y + 2.0, 16.0);
    // Scenario lanes.
    for (li, sc_name) in scenarios.iter().enumerate() {
        #[expect(clippy::cast_precision_loss, reason = "few lanes")]
        let ly = TOP + 40.0 + LANE_H * li as f64;
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#eee"/>
<text x="8" y="{:.1}">{}</text>"##,
            WIDTH - RIGHT,
            ly - 4.0,
            ly - 4.0,
            ly + 18.0,
            sc_name
        );
        strip(&mut o, &cols, ly + 30.0, 6.0);
        for w in windows.iter().filter(|w| w.scenario == *sc_name) {
            let x0 = sc.x(w.apply_ns);
            let x1 = sc.x(w.clear_ns.unwrap_or(t1)).max(x0 + 1.0);
            let (fill, stroke, dash) = match w.status {
                Status::Recovered => ("#f5b041", "#b9770e", ""),
                Status::NotRecovered => (RED, "#7b241c", ""),
                Status::UnhealthyNotObserved => (GREY, "#888", ""),
                Status::NotCounted => ("none", "#888", r#" stroke-dasharray="3,2""#),
                Status::Incomplete => ("none", RED, r#" stroke-dasharray="3,2""#),
            };
            let tip = format!(
                "{} {} apply {} clear {}{}{}",
                w.scenario,
                w.status.as_str(),
                iso_utc(w.apply_ns),
                w.clear_ns.map_or_else(|| "n/a".to_string(), iso_utc),
                w.recovery_ns()
                    .map_or_else(String::new, |r| format!(" recovery {:.6}s", secs(r))),
                w.detection_ns()
                    .map_or_else(String::new, |d| format!(" detection {:.6}s", secs(d))),
            );
            let _ = writeln!(
                o,
                r#"<rect x="{x0:.2}" y="{:.1}" width="{:.2}" height="22" fill="{fill}" fill-opacity="0.8" stroke="{stroke}"{dash}><title>{}</title></rect>"#,
                ly + 4.0,
                x1 - x0,
                esc(&tip)
            );
            if let (Some(c), Some(r)) = (w.clear_ns, w.recovered_ns)
                && w.status == Status::Recovered
            {
                let (xc, xr) = (sc.x(c), sc.x(r));
                let _ = writeln!(
                    o,
                    r##"<line x1="{xc:.2}" x2="{:.2}" y1="{:.1}" y2="{:.1}" stroke="#1f77b4" stroke-width="3"/>"##,
                    xr.max(xc + 1.0),
                    ly + 15.0,
                    ly + 15.0
                );
            }
        }
    }
    axis(&mut o, &sc, (t0, t1), scenarios.len());
    o.push_str("</svg>\n");
    o
}

/// The time span shown: every window and sample, at least a second.
fn time_span(windows: &[Window], summary: &MergeSummary) -> (i64, i64) {
    let mut t0 = i64::MAX;
    let mut t1 = i64::MIN;
    for w in windows {
        t0 = t0.min(w.apply_ns);
        t1 = t1.max(w.clear_ns.unwrap_or(w.apply_ns));
        if let Some(r) = w.recovered_ns {
            t1 = t1.max(r);
        }
    }
    if let (Some(f), Some(l)) = (summary.first, summary.last) {
        t0 = t0.min(f.ts_ns);
        t1 = t1.max(l.ts_ns);
    }
    if t0 == i64::MAX {
        t0 = 0;
        t1 = 1_000_000_000;
    }
    if t1 <= t0 {
        t1 = t0 + 1_000_000_000;
    }
    (t0, t1)
}

/// The time axis under the lanes.
fn axis(o: &mut String, sc: &Scale, (t0, t1): (i64, i64), lanes: usize) {
    #[expect(clippy::cast_precision_loss, reason = "few lanes")]
    let ay = TOP + 40.0 + LANE_H * lanes as f64 + 10.0;
    let _ = writeln!(
        o,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{ay:.1}" y2="{ay:.1}" stroke="#333"/>"##,
        WIDTH - RIGHT
    );
    for k in 0..=6 {
        let ns = t0 + (t1 - t0) / 6 * k;
        let x = sc.x(ns);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{ay:.1}" y2="{:.1}" stroke="#333"/>
<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>
<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">+{:.1}s</text>"##,
            ay + 5.0,
            ay + 18.0,
            hms_utc(ns),
            ay + 32.0,
            secs(ns - t0)
        );
    }
}
