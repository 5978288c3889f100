//! The geometry of the HTML report's inline SVG charts — the score trend, coverage per key,
//! the top offenders — computed here so the template only draws shapes at given coordinates.
//! No dependencies, deterministic (golden-testable), and nothing loaded from the network.

use serde::Serialize;

use crate::service::report::ReportData;

/// Drawing area of the trend chart, in SVG units.
const TREND_WIDTH: f64 = 640.0;
const TREND_HEIGHT: f64 = 200.0;
/// Left margin for the axis labels, bottom margin for the dates.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 12.0;
/// Width of a horizontal bar at 100%.
pub(super) const BAR_WIDTH: f64 = 420.0;
const ROW: f64 = 26.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Charts {
    /// None with fewer than two scored points.
    pub trend: Option<Trend>,
    pub coverage: BarChart,
    pub offenders: BarChart,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Trend {
    pub width: f64,
    pub height: f64,
    /// `x,y x,y …` for a polyline.
    pub line: String,
    pub dots: Vec<Dot>,
    /// Horizontal grid lines at 0, 25, 50, 75, 100%.
    pub grid: Vec<Grid>,
    pub first: String,
    pub last: String,
    pub left: f64,
    pub right: f64,
    pub bottom: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Dot {
    pub x: f64,
    pub y: f64,
    /// The tooltip: day and score.
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Grid {
    pub y: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct BarChart {
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
}

/// One row: a label, stacked segments from x = 0, and the text after them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Bar {
    pub label: String,
    pub y: f64,
    pub segments: Vec<Segment>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Segment {
    pub x: f64,
    pub width: f64,
    /// CSS class: `ok`, `invalid`, `missing`, `cost`.
    pub class: &'static str,
    pub title: String,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Charts {
    pub(super) fn of(r: &ReportData) -> Charts {
        Charts {
            trend: trend(r),
            coverage: coverage(r),
            offenders: offenders(r),
        }
    }
}

fn trend(r: &ReportData) -> Option<Trend> {
    let points: Vec<(&str, f64)> = r
        .trend
        .iter()
        .filter_map(|p| p.score_pct.map(|s| (p.period.as_str(), s)))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let plot_w = TREND_WIDTH - LEFT - RIGHT;
    let plot_h = TREND_HEIGHT - TOP - BOTTOM;
    let step = plot_w / (points.len() - 1) as f64;
    let y_of = |pct: f64| round1(TOP + plot_h * (1.0 - pct.clamp(0.0, 100.0) / 100.0));
    let dots: Vec<Dot> = points
        .iter()
        .enumerate()
        .map(|(i, (day, score))| Dot {
            x: round1(LEFT + step * i as f64),
            y: y_of(*score),
            title: format!("{day}: {score:.2}%"),
        })
        .collect();
    let line = dots
        .iter()
        .map(|d| format!("{},{}", d.x, d.y))
        .collect::<Vec<_>>()
        .join(" ");
    Some(Trend {
        width: TREND_WIDTH,
        height: TREND_HEIGHT,
        line,
        dots,
        grid: [0.0, 25.0, 50.0, 75.0, 100.0]
            .iter()
            .map(|p| Grid {
                y: y_of(*p),
                label: format!("{p:.0}%"),
            })
            .collect(),
        first: points[0].0.to_string(),
        last: points[points.len() - 1].0.to_string(),
        left: LEFT,
        right: TREND_WIDTH - RIGHT,
        bottom: TREND_HEIGHT - 4.0,
    })
}

/// Per key: valid, invalid and missing shares of the resources it is required of.
fn coverage(r: &ReportData) -> BarChart {
    let bars: Vec<Bar> = r
        .coverage
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let whole = k.required.max(1) as f64;
            let mut x = 0.0;
            let mut segments = Vec::new();
            for (count, class, what) in [
                (k.valid, "ok", "valid"),
                (k.invalid, "invalid", "invalid"),
                (k.missing, "missing", "missing"),
            ] {
                if count == 0 {
                    continue;
                }
                let width = round1(BAR_WIDTH * count as f64 / whole);
                segments.push(Segment {
                    x: round1(x),
                    width,
                    class,
                    title: format!("{}: {count} {what}", k.key),
                });
                x += width;
            }
            Bar {
                label: k.key.clone(),
                y: ROW * i as f64,
                segments,
                text: match k.coverage_pct {
                    Some(p) => format!("{p:.1}%"),
                    None => "not required".into(),
                },
            }
        })
        .collect();
    BarChart {
        width: BAR_WIDTH,
        height: ROW * bars.len() as f64,
        bars,
    }
}

/// The listed offenders by cost (by violation count without costs).
fn offenders(r: &ReportData) -> BarChart {
    let o = &r.offenders;
    let currency = r
        .summary
        .spend
        .as_ref()
        .map(|s| s.currency.as_str())
        .unwrap_or("");
    let measure = |i: &crate::service::report::Offender| match i.cost {
        Some(c) => c.max(0.0),
        None => i.violations_total as f64,
    };
    let max = o.items.iter().map(measure).fold(0.0, f64::max);
    let bars: Vec<Bar> = o
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let value = measure(item);
            let width = if max > 0.0 {
                round1(BAR_WIDTH * value / max)
            } else {
                0.0
            };
            let text = match item.cost {
                Some(c) => format!(
                    "{currency} {}",
                    crate::cost::money::format_amount((c * 1_000_000.0).round() as i64)
                ),
                None => format!("{} violations", item.violations_total),
            };
            Bar {
                label: item.name.clone(),
                y: ROW * i as f64,
                segments: vec![Segment {
                    x: 0.0,
                    width,
                    class: "cost",
                    title: item.resource_id.clone(),
                }],
                text,
            }
        })
        .collect();
    BarChart {
        width: BAR_WIDTH,
        height: ROW * bars.len() as f64,
        bars,
    }
}
