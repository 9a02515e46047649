//! Figures of a run folder: per-group alignment, mean vs worst-group alignment, and fairness
//! over rounds, read back from `metrics.jsonl` (so any finished or interrupted run can be
//! plotted again without rerunning it) and written beside it as PNG, for a quick look, and SVG,
//! for a paper, where it scales without blur.
//!
//! plotters cannot place a single label without a font, and CI machines and fresh installs may
//! have no system fonts or fontconfig at all; so text is measured (for both formats) and drawn
//! (into the PNG, see `bitmap.rs`) with Noto Sans compiled into the binary (crate
//! `ttf-noto-sans`) through the pure-Rust `ab_glyph`. The SVG names the generic `sans-serif`
//! family and leaves the drawing to its viewer.
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use serde::Deserialize;

use self::bitmap::Bitmap;
use crate::record::{write_atomic, WriteError};

mod bitmap;
mod grid;

pub use grid::plot_grid;

/// Why a run could not be plotted, naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot read {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}:{line}: not a metrics row: {cause}")]
    Parse {
        path: PathBuf,
        line: usize,
        cause: serde_json::Error,
    },
    #[error("{path}: {what}, so there is nothing to plot\n  hint: plot the folder of a run whose pipeline has an `evaluate` stage")]
    NoData { path: PathBuf, what: String },
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Reads `dir/metrics.jsonl` and writes `alignment`, `mean_vs_worst` and `fairness`, each as
/// `.png` and `.svg`, into `dir`; returns the paths written.
///
/// The figures show one evaluation stage (a stage with per-group `alignment` rows): the one
/// evaluated in the most rounds, so a loop's evaluation wins over a one-off baseline, and on a
/// tie the alphabetically first, so the choice does not depend on the order of the rows.
pub fn plot_run(dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let source = dir.join("metrics.jsonl");
    let rows = read_rows(&source)?;
    let stage = pick_stage(&rows).ok_or_else(|| PlotError::NoData {
        path: source.clone(),
        what: "no per-group `alignment` rows (no evaluation stage)".to_owned(),
    })?;
    let mut written = Vec::new();
    for figure in figures(&rows, stage, &source)? {
        render(&figure, dir, &mut written)?;
    }
    Ok(written)
}

/// One line of `metrics.jsonl`, as [`crate::record::MetricRow`] writes it.
#[derive(Deserialize)]
struct Row {
    round: u32,
    stage: String,
    /// Present on evaluation rows only.
    policy: Option<String>,
    group: Option<String>,
    metric: String,
    /// `None` where the value was not finite: serde_json writes NaN and infinities as `null`,
    /// and one diverged value should leave a gap in a curve, not make the run unplottable.
    value: Option<f64>,
}

fn read_rows(path: &Path) -> Result<Vec<Row>, PlotError> {
    let text = std::fs::read_to_string(path).map_err(|cause| PlotError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|cause| PlotError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                cause,
            })
        })
        .collect()
}

const ALIGNMENT: &str = "alignment";

fn pick_stage(rows: &[Row]) -> Option<&str> {
    let mut rounds: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.group.is_some() && r.metric == ALIGNMENT)
    {
        rounds.entry(&r.stage).or_default().insert(r.round);
    }
    // The map iterates alphabetically and `min_by_key` keeps the first of equal keys.
    rounds
        .into_iter()
        .min_by_key(|(_, r)| Reverse(r.len()))
        .map(|(stage, _)| stage)
}

/// A figure: a title over panels stacked vertically that share the round axis.
struct Figure {
    stem: &'static str,
    title: String,
    panels: Vec<Panel>,
}

struct Panel {
    y_desc: &'static str,
    series: Vec<Series>,
}

struct Series {
    label: String,
    color: RGBColor,
    /// (round, value), sorted by round.
    points: Vec<(f64, f64)>,
}

/// Tableau 10: distinct hues that stay apart for the common kinds of colour blindness and
/// in print; groups past ten reuse colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn figures(rows: &[Row], stage: &str, source: &Path) -> Result<Vec<Figure>, PlotError> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.stage == stage).collect();
    let policies: BTreeSet<&str> = rows.iter().filter_map(|r| r.policy.as_deref()).collect();
    let policies: Vec<&str> = policies.into_iter().collect();
    let subject = match policies.as_slice() {
        [] => format!("stage {stage}"),
        _ => format!("stage {stage} (policy {})", policies.join(", ")),
    };

    // Groups keep the order of their first row, which is the order the evaluation listed them.
    let mut groups: Vec<(&str, BTreeMap<u32, f64>)> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == ALIGNMENT) {
        let Some(group) = r.group.as_deref() else {
            continue;
        };
        let i = match groups.iter().position(|(g, _)| *g == group) {
            Some(i) => i,
            None => {
                groups.push((group, BTreeMap::new()));
                groups.len() - 1
            }
        };
        if let Some(v) = r.value {
            groups[i].1.insert(r.round, v);
        }
    }
    let overall = |metric: &str, label: &str, color: usize| {
        let points: BTreeMap<u32, f64> = rows
            .iter()
            .filter(|r| r.group.is_none() && r.metric == metric)
            .filter_map(|r| Some((r.round, r.value?)))
            .collect();
        series(label, PALETTE[color], points)
    };

    let figures = vec![
        Figure {
            stem: "alignment",
            title: format!("Alignment per group — {subject}"),
            panels: vec![Panel {
                y_desc: "alignment (1 − JS distance)",
                series: groups
                    .into_iter()
                    .enumerate()
                    .map(|(i, (g, points))| series(g, PALETTE[i % PALETTE.len()], points))
                    .collect(),
            }],
        },
        Figure {
            stem: "mean_vs_worst",
            title: format!("Mean vs worst-group alignment — {subject}"),
            panels: vec![Panel {
                y_desc: "alignment (1 − JS distance)",
                series: vec![
                    overall("mean", "mean", 0),
                    overall("worst_group", "worst group", 3),
                ],
            }],
        },
        Figure {
            stem: "fairness",
            title: format!("Fairness across groups — {subject}"),
            panels: vec![
                Panel {
                    y_desc: "Jain's index (1 = equal)",
                    series: vec![overall("jain", "Jain's index", 0)],
                },
                Panel {
                    y_desc: "inequality (0 = equal)",
                    series: vec![
                        overall("gini", "Gini", 2),
                        overall("cv", "coeff. of variation", 4),
                    ],
                },
            ],
        },
    ];
    // A series without values (a metric an older run did not record) is left out; a panel left
    // with nothing would be an empty frame that looks like a bug in the figure.
    figures
        .into_iter()
        .map(|mut f| {
            for p in &mut f.panels {
                let wanted: Vec<String> = p.series.iter().map(|s| s.label.clone()).collect();
                p.series.retain(|s| !s.points.is_empty());
                if p.series.is_empty() {
                    return Err(PlotError::NoData {
                        path: source.to_path_buf(),
                        what: format!("stage `{stage}` has no values of {}", wanted.join(", ")),
                    });
                }
            }
            Ok(f)
        })
        .collect()
}

fn series(label: &str, color: RGBColor, points: BTreeMap<u32, f64>) -> Series {
    Series {
        label: label.to_owned(),
        color,
        points: points.into_iter().map(|(r, v)| (f64::from(r), v)).collect(),
    }
}

const WIDTH: u32 = 1200;
/// Height of the title band plus one panel; each further panel adds [`EXTRA_PANEL`].
const HEIGHT: u32 = 720;
const EXTRA_PANEL: u32 = 320;
const TITLE_PX: u32 = 32;
const DESC_PX: u32 = 26;
const TICK_PX: u32 = 22;
const LEGEND_PX: u32 = 23;
/// Up to this many evaluated rounds each value is marked as well as joined: evaluations are
/// sparse (every `eval_every` rounds) and the marks show where the data is; past it they
/// would only clutter the curves.
const MARKED_ROUNDS: usize = 30;
const FONT: &str = "sans-serif";

/// Registers the bundled font under the generic family that plotters' default styles ask for.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let ok = plotters::style::register_font(FONT, FontStyle::Normal, ttf_noto_sans::REGULAR);
        assert!(ok.is_ok(), "the bundled Noto Sans font parses");
    });
}

/// Draws `figure` to SVG and PNG in memory and writes each file atomically.
fn render(figure: &Figure, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), PlotError> {
    register_font();
    let size = (
        WIDTH,
        HEIGHT + EXTRA_PANEL * (figure.panels.len() as u32 - 1),
    );

    let png_path = dir.join(format!("{}.png", figure.stem));
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = Bitmap::new(&mut rgb, size).into_drawing_area();
        draw(figure, &root)
            .and_then(|()| root.present())
            .map_err(|e| draw_error(&png_path, e))?;
    }
    let png = encode_png(&rgb, size).map_err(|e| draw_error(&png_path, e))?;
    write(&png_path, &png, written)?;

    let svg_path = dir.join(format!("{}.svg", figure.stem));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(figure, &root)
            .and_then(|()| root.present())
            .map_err(|e| draw_error(&svg_path, e))?;
    }
    write(&svg_path, svg.as_bytes(), written)
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> Result<(), PlotError> {
    write_atomic(path, bytes)
        .map_err(|WriteError { path, cause }| PlotError::Write { path, cause })?;
    written.push(path.to_path_buf());
    Ok(())
}

fn draw<DB: DrawingBackend>(
    figure: &Figure,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let body = root.titled(&figure.title, (FONT, TITLE_PX))?;

    let rounds: BTreeSet<u32> = figure
        .panels
        .iter()
        .flat_map(|p| &p.series)
        .flat_map(|s| &s.points)
        .map(|&(r, _)| r as u32)
        .collect();
    let (first, last) = (*rounds.first().unwrap_or(&0), *rounds.last().unwrap_or(&0));
    let marked = |s: &Series| rounds.len() <= MARKED_ROUNDS || s.points.len() == 1;

    let legend_style = TextStyle::from((FONT, LEGEND_PX).into_font());
    let mut legend_width = 0;
    for s in figure.panels.iter().flat_map(|p| &p.series) {
        legend_width = legend_width.max(root.estimate_text_size(&s.label, &legend_style)?.0);
    }
    let legend_width = (legend_width + LEGEND_TEXT_X as u32 + 24).min(WIDTH / 3);

    // Only the bottom panel titles the round axis; it gets that much more height so that all
    // panels' plotting areas come out the same height.
    let n = figure.panels.len() as u32;
    let (_, height) = body.dim_in_pixel();
    let bottom_extra = if n > 1 { X_AXIS_PX - TICKS_ONLY_PX } else { 0 };
    let mut rest = body;
    for (i, panel) in figure.panels.iter().enumerate() {
        let is_last = i as u32 + 1 == n;
        let area = if is_last {
            rest.clone()
        } else {
            let (top, below) = rest.split_vertically((height - bottom_extra) / n);
            rest = below;
            top
        };
        let (w, _) = area.dim_in_pixel();
        let (plot, legend) = area.split_horizontally(w - legend_width);

        let values = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1));
        let (y_range, decimals) = value_axis(values);
        let mut chart = ChartBuilder::on(&plot)
            .margin_top(MARGIN)
            .margin_left(MARGIN)
            .margin_right(MARGIN)
            .x_label_area_size(if is_last { X_AXIS_PX } else { TICKS_ONLY_PX })
            .y_label_area_size(Y_AXIS_PX)
            .build_cartesian_2d(RoundAxis::new(first, last), y_range)?;
        let x_format = |x: &f64| format!("{x:.0}");
        let y_format = |y: &f64| format!("{y:.decimals$}");
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(panel.y_desc)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .y_labels(8)
            .label_style((FONT, TICK_PX))
            .axis_desc_style((FONT, DESC_PX))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .axis_style(BLACK.stroke_width(1));
        if is_last {
            mesh.x_desc("round");
        }
        mesh.draw()?;

        for s in &panel.series {
            if s.points.len() > 1 {
                chart.draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    s.color.stroke_width(3),
                ))?;
            }
            if marked(s) {
                chart.draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, MARKER_PX, s.color.filled())),
                )?;
            }
        }

        // The legend sits right of the axes, never over a curve, in the order of the series.
        let text = legend_style.clone().pos(Pos::new(HPos::Left, VPos::Center));
        for (j, s) in panel.series.iter().enumerate() {
            let y = MARGIN as i32 + 12 + j as i32 * LEGEND_ROW_PX;
            if s.points.len() > 1 {
                legend.draw(&PathElement::new(
                    vec![(8, y), (LEGEND_TEXT_X - 12, y)],
                    s.color.stroke_width(3),
                ))?;
            }
            if marked(s) {
                legend.draw(&Circle::new(
                    ((LEGEND_TEXT_X - 4) / 2, y),
                    MARKER_PX,
                    s.color.filled(),
                ))?;
            }
            legend.draw(&Text::new(
                s.label.clone(),
                (LEGEND_TEXT_X, y),
                text.clone(),
            ))?;
        }
    }
    Ok(())
}

const MARGIN: u32 = 16;
const X_AXIS_PX: u32 = 70;
const TICKS_ONLY_PX: u32 = 36;
const Y_AXIS_PX: u32 = 100;
const MARKER_PX: u32 = 5;
const LEGEND_TEXT_X: i32 = 52;
const LEGEND_ROW_PX: i32 = 32;

/// The round axis: a float range, a little wider than the data so end points are not cut by
/// the frame and a single round sits in the middle, with ticks only at whole rounds.
struct RoundAxis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl RoundAxis {
    fn new(first: u32, last: u32) -> Self {
        let pad = if last > first {
            0.03 * f64::from(last - first)
        } else {
            0.5
        };
        RoundAxis {
            inner: (f64::from(first) - pad..f64::from(last) + pad).into(),
            ticks: round_ticks(first, last),
        }
    }
}

impl Ranged for RoundAxis {
    // The labels are formatted by the mesh's `x_label_formatter`.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    /// Grid lines at the ticks only: no light lines between rounds.
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// Whole-round ticks, about eight of them, 1, 2 or 5 times a power of ten apart: a float
/// axis' own ticks would fall on rounds like 2.5.
fn round_ticks(first: u32, last: u32) -> Vec<f64> {
    let raw = f64::from((last - first).max(1)) / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(raw)
        .max(1.0)
        .round() as u32;
    (first.div_ceil(step) * step..=last)
        .step_by(step as usize)
        .map(f64::from)
        .collect()
}

/// The value axis with 8% head- and footroom, and the decimals its ticks need; a constant
/// series gets a narrow band around its value.
fn value_axis(values: impl Iterator<Item = f64>) -> (Range<f64>, usize) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let pad = if hi > lo {
        0.08 * (hi - lo)
    } else {
        0.02 * lo.abs().max(0.1)
    };
    let step = (hi - lo + 2.0 * pad) / 6.0;
    let decimals = (-step.log10()).ceil().clamp(0.0, 6.0) as usize;
    (lo - pad..hi + pad, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPS: [&str; 3] = ["north", "south", "minority"];

    fn metrics(rounds: &[u32]) -> String {
        let mut text = String::new();
        let mut eval = |round: u32, group: Option<&str>, metric: &str, value: f64| {
            let row = serde_json::json!({
                "round": round, "stage": "eval", "policy": "fedavg",
                "group": group, "metric": metric, "value": value,
            });
            text.push_str(&format!("{row}\n"));
        };
        for &round in rounds {
            let t = f64::from(round);
            let alignment = [0.6 + 0.05 * t, 0.58 + 0.04 * t, 0.4 + 0.02 * t];
            for (g, a) in GROUPS.iter().zip(alignment) {
                eval(round, Some(g), ALIGNMENT, a);
            }
            for m in crate::metric::Metrics::default().iter() {
                let value = m.build(&Default::default()).unwrap().compute(&alignment);
                eval(round, None, &m.name, value.unwrap());
            }
        }
        // A training stage's row: no policy, a metric the figures do not show.
        text.push_str(r#"{"round":1,"stage":"ppo","group":null,"metric":"reward","value":null}"#);
        text.push('\n');
        text
    }

    /// Width and height from the IHDR chunk, which the PNG format puts first.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    }

    fn check(dir: &Path, written: &[PathBuf]) {
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "alignment.png",
                "alignment.svg",
                "mean_vs_worst.png",
                "mean_vs_worst.svg",
                "fairness.png",
                "fairness.svg"
            ]
        );
        for path in written {
            assert_eq!(path.parent(), Some(dir));
            let bytes = std::fs::read(path).unwrap();
            if path.extension().unwrap() == "png" {
                let expected = if path.ends_with("fairness.png") {
                    (WIDTH, HEIGHT + EXTRA_PANEL)
                } else {
                    (WIDTH, HEIGHT)
                };
                assert_eq!(png_size(&bytes), expected, "{}", path.display());
                let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
                let mut reader = decoder.read_info().unwrap();
                let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
                reader.next_frame(&mut pixels).unwrap();
                // Something besides the white background was drawn.
                assert!(pixels.iter().any(|&b| b < 128), "{}", path.display());
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(svg.contains("<svg"), "{}", path.display());
                assert!(svg.trim_end().ends_with("</svg>"), "{}", path.display());
            }
        }
        let alignment = std::fs::read_to_string(dir.join("alignment.svg")).unwrap();
        for g in GROUPS {
            assert!(alignment.contains(g), "group {g} is in the legend");
        }
        assert!(
            alignment.contains("stage eval (policy fedavg)"),
            "the title names the stage"
        );
        // No temp file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn plots_five_rounds_of_three_groups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), metrics(&[0, 1, 2, 3, 4])).unwrap();
        let written = plot_run(dir.path()).unwrap();
        check(dir.path(), &written);
    }

    #[test]
    fn plots_a_single_round_as_points() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), metrics(&[0])).unwrap();
        let written = plot_run(dir.path()).unwrap();
        check(dir.path(), &written);
        let svg = std::fs::read_to_string(dir.path().join("alignment.svg")).unwrap();
        assert!(svg.contains("<circle"), "single values are marked");
    }

    #[test]
    fn picks_the_stage_with_most_rounds_then_the_first_name() {
        let row = |stage: &str, round: u32| Row {
            round,
            stage: stage.to_owned(),
            policy: None,
            group: Some("g".to_owned()),
            metric: ALIGNMENT.to_owned(),
            value: Some(0.5),
        };
        let rows = [row("z", 1), row("z", 2), row("b", 0), row("a", 0)];
        assert_eq!(pick_stage(&rows), Some("z"));
        assert_eq!(pick_stage(&rows[2..]), Some("a"));
    }

    #[test]
    fn a_missing_metrics_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = plot_run(dir.path()).unwrap_err();
        let path = dir.path().join("metrics.jsonl");
        assert!(matches!(&err, PlotError::Read { path: p, .. } if *p == path));
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn a_run_without_evaluation_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), "").unwrap();
        let err = plot_run(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no per-group `alignment` rows"), "{err}");
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{}{{\"round\": \"x\"}}\n", metrics(&[0]));
        std::fs::write(dir.path().join("metrics.jsonl"), text).unwrap();
        let err = plot_run(dir.path()).unwrap_err();
        assert!(matches!(err, PlotError::Parse { line: 11, .. }), "{err}");
    }

    #[test]
    fn round_ticks_are_whole_and_sparse() {
        assert_eq!(round_ticks(0, 0), [0.0]);
        assert_eq!(round_ticks(0, 4), [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(round_ticks(5, 50), [10.0, 20.0, 30.0, 40.0, 50.0]);
    }
}
