//! An SVG chart of a simulation: percentage, error rate and P95 over time,
//! with the decisions marked.

use std::fmt::Write as _;

use genesis_flags::rollout::simulation::Simulation;

const W: f64 = 960.0;
const H: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;

/// Renders the chart.
pub fn svg(sim: &Simulation, title: &str) -> String {
    let samples = &sim.samples;
    let end = samples.last().map_or(1, |s| s.offset_seconds.max(1)) as f64;
    let x = |secs: f64| LEFT + (W - LEFT - RIGHT) * secs / end;
    let plot_h = H - TOP - BOTTOM;
    let y_pct = |pct: f64| TOP + plot_h * (1.0 - pct / 100.0);
    let max_p95 = samples
        .iter()
        .filter_map(|s| s.p95_ms)
        .fold(500.0f64, f64::max);
    let y_p95 = |ms: f64| TOP + plot_h * (1.0 - ms / max_p95);
    let max_err = samples
        .iter()
        .filter_map(|s| s.error_rate_percent)
        .fold(1.0f64, f64::max);
    let y_err = |e: f64| TOP + plot_h * (1.0 - e / max_err);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="18" font-size="14">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{plot_h}" fill="none" stroke="#999"/>"##,
        W - LEFT - RIGHT
    );
    let mut line = |points: Vec<(f64, f64)>, color: &str, step: bool| {
        if points.is_empty() {
            return;
        }
        let mut d = String::new();
        let mut last_y = None;
        for (i, (px, py)) in points.iter().enumerate() {
            if i == 0 {
                let _ = write!(d, "M{px:.1},{py:.1}");
            } else if step {
                let _ = write!(d, " L{px:.1},{:.1} L{px:.1},{py:.1}", last_y.unwrap_or(*py));
            } else {
                let _ = write!(d, " L{px:.1},{py:.1}");
            }
            last_y = Some(*py);
        }
        let _ = writeln!(
            out,
            r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>"#
        );
    };
    line(
        samples
            .iter()
            .map(|s| (x(s.offset_seconds as f64), y_pct(s.percentage.as_percent())))
            .collect(),
        "#1f77b4",
        true,
    );
    line(
        samples
            .iter()
            .filter_map(|s| {
                Some((
                    x(s.offset_seconds as f64),
                    y_err(s.error_rate_percent.filter(|v| v.is_finite())?),
                ))
            })
            .collect(),
        "#d62728",
        false,
    );
    line(
        samples
            .iter()
            .filter_map(|s| {
                Some((
                    x(s.offset_seconds as f64),
                    y_p95(s.p95_ms.filter(|v| v.is_finite())?),
                ))
            })
            .collect(),
        "#2ca02c",
        false,
    );
    for e in &sim.events {
        let secs =
            genesis_flags::rollout::parse_duration(&e.offset).map_or(0.0, |d| d.as_secs_f64());
        let color = match e.decision.as_str() {
            "rollback" => "#d62728",
            "pause" => "#ff7f0e",
            "complete" => "#2ca02c",
            _ => "#555",
        };
        let _ = writeln!(
            out,
            r#"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1}" stroke="{color}" stroke-dasharray="4,3"/><text x="{0:.1}" y="{2}" fill="{color}" transform="rotate(-30 {0:.1} {2})">{3} {4}</text>"#,
            x(secs),
            H - BOTTOM,
            H - BOTTOM + 28.0,
            escape(&e.decision),
            escape(&e.offset),
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{}" fill="#1f77b4">rollout % (0-100)</text><text x="{}" y="{}" fill="#d62728">error rate % (0-{max_err:.2})</text><text x="{}" y="{}" fill="#2ca02c">P95 ms (0-{max_p95:.0})</text>"##,
        H - 6.0,
        LEFT + 170.0,
        H - 6.0,
        LEFT + 380.0,
        H - 6.0
    );
    out.push_str("</svg>\n");
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
