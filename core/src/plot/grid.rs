//! Figures of a grid folder, drawn from its [`Report`] and its cells' `metrics.jsonl`:
//! - `pareto`: each configuration's mean against worst-group alignment (mean over seeds with
//!   95% CI whiskers both ways), and the Pareto front of configurations no other beats on both;
//! - `pareto_jain`: the same with Jain's index on the vertical axis;
//! - `curves`: each configuration's mean alignment over rounds, averaged over its completed
//!   seeds, with a 95% CI band (Student's t over seeds).
//!
//! Each as PNG and SVG, drawn with the run figures' font, palette and size (see the parent
//! module).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rayon::prelude::*;
use serde_json::Value;

use super::bitmap::Bitmap;
use super::{
    draw_error, encode_png, read_rows, register_font, value_axis, write, PlotError, RoundAxis,
    DESC_PX, FONT, HEIGHT, LEGEND_PX, LEGEND_ROW_PX, LEGEND_TEXT_X, MARGIN, MARKED_ROUNDS,
    MARKER_PX, PALETTE, TICK_PX, TITLE_PX, WIDTH, X_AXIS_PX, Y_AXIS_PX,
};
use crate::grid::report::{Configuration, Estimate, Quantity, Report, Status};

/// Writes `pareto`, `pareto_jain` and `curves`, each as `.png` and `.svg`, into the grid
/// folder `dir`; returns the paths written.
pub fn plot_grid(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, PlotError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let labels: Vec<String> = report
        .configurations
        .iter()
        .map(|c| label(report, c))
        .collect();
    let no_data = |what: &str| PlotError::NoData {
        path: dir.to_path_buf(),
        what: what.to_owned(),
    };

    let mut scatters = Vec::new();
    for (stem, y, title, y_desc) in [
        (
            "pareto",
            Quantity::WorstGroup,
            "Mean vs worst-group alignment",
            "worst-group alignment",
        ),
        (
            "pareto_jain",
            Quantity::Jain,
            "Mean alignment vs Jain's index",
            "Jain's index (1 = equal)",
        ),
    ] {
        let scatter = Scatter {
            title: format!("{title} — {name}"),
            y_desc,
            points: points(report, &labels, y),
        };
        if scatter.points.is_empty() {
            return Err(no_data(&format!(
                "no configuration has a completed cell with mean alignment and {}",
                y.label()
            )));
        }
        scatters.push((stem, scatter));
    }

    let curves = Curves {
        title: format!("Mean alignment over rounds — {name}"),
        series: curves(report, &labels)?,
    };
    if curves.series.is_empty() {
        return Err(no_data(
            "no completed cell has `mean` rows of its final evaluation stage",
        ));
    }
    // The figures are independent and each takes a noticeable share of a short grid's serial
    // tail (rasterising and encoding), so they are drawn at once.
    let (scattered, curved) = rayon::join(
        || {
            scatters
                .par_iter()
                .map(|(stem, scatter)| render(scatter, stem, dir))
                .collect::<Result<Vec<_>, _>>()
        },
        || render(&curves, "curves", dir),
    );
    let mut written: Vec<PathBuf> = scattered?.into_iter().flatten().collect();
    written.extend(curved?);
    Ok(written)
}

/// `rule=min lr=0.1`: the settings that tell the configuration apart, each key shortened to
/// its last segment where no other column shares that segment (figures have little room).
fn label(report: &Report, c: &Configuration) -> String {
    let short = |k: &str| -> String {
        let last = k.rsplit('.').next().unwrap_or(k);
        let shared = report
            .columns
            .iter()
            .filter(|o| o.rsplit('.').next() == Some(last))
            .count();
        if shared > 1 { k } else { last }.to_owned()
    };
    let parts: Vec<String> = report
        .columns
        .iter()
        .zip(&c.values)
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| match v {
                Value::String(s) => format!("{}={s}", short(k)),
                other => format!("{}={other}", short(k)),
            })
        })
        .collect();
    if parts.is_empty() {
        "base pipeline".to_owned()
    } else {
        parts.join(" ")
    }
}

/// Something drawn into a figure of the standard size.
trait Draw {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// As the run figures' `render`: PNG and SVG drawn in memory, each written atomically;
/// returns the paths written.
fn render(figure: &(impl Draw + Sync), stem: &str, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    register_font();
    let size = (WIDTH, HEIGHT);

    let png_path = dir.join(format!("{stem}.png"));
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = Bitmap::new(&mut rgb, size).into_drawing_area();
        figure
            .draw(&root)
            .and_then(|()| root.present())
            .map_err(|e| draw_error(&png_path, e))?;
    }
    let png = encode_png(&rgb, size).map_err(|e| draw_error(&png_path, e))?;
    write(&png_path, &png, &mut written)?;

    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        figure
            .draw(&root)
            .and_then(|()| root.present())
            .map_err(|e| draw_error(&svg_path, e))?;
    }
    write(&svg_path, svg.as_bytes(), &mut written)?;
    Ok(written)
}

/// One configuration in a scatter: mean alignment across, another quantity up.
struct Point {
    label: String,
    color: RGBColor,
    x: Estimate,
    y: Estimate,
}

struct Scatter {
    title: String,
    y_desc: &'static str,
    points: Vec<Point>,
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn points(report: &Report, labels: &[String], y: Quantity) -> Vec<Point> {
    let stat = |c: &Configuration, q: Quantity| {
        let at = Quantity::ALL.iter().position(|&x| x == q)?;
        c.stats[at]
    };
    report
        .configurations
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            Some(Point {
                label: labels[i].clone(),
                color: color(i),
                x: stat(c, Quantity::MeanAlignment)?,
                y: stat(c, y)?,
            })
        })
        .collect()
}

/// The points no other point matches or beats on both axes with a strict gain on one (higher
/// is better on both), sorted left to right, so top to bottom.
fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let dominated = |&(x, y): &(f64, f64)| {
        points
            .iter()
            .any(|&(a, b)| a >= x && b >= y && (a > x || b > y))
    };
    let mut front: Vec<(f64, f64)> = points.iter().filter(|p| !dominated(p)).copied().collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    front.dedup();
    front
}

/// The front's staircase: from each point down to the next one's height, then across to it,
/// the edge of what the front dominates.
fn staircase(front: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut path = Vec::new();
    for (i, &p) in front.iter().enumerate() {
        if i > 0 {
            path.push((front[i - 1].0, p.1));
        }
        path.push(p);
    }
    path
}

const FRONT: RGBColor = RGBColor(90, 90, 90);
/// The scatter's key, one row per mark: front line, front ring, whisker.
const KEY: [&str; 3] = ["Pareto front", "on the front", "95% CI over seeds (t)"];
const HIGHER: &str = "higher is better on both axes";
/// Length of a whisker's end cap, in pixels either side.
const CAP_PX: i32 = 5;

/// Up to this many configurations, each point is labelled beside it as well as in the key.
const LABELLED_POINTS: usize = 6;

impl Draw for Scatter {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let body = root.titled(&self.title, (FONT, TITLE_PX))?;
        let ends = |e: &Estimate| {
            let h = e.ci95.unwrap_or(0.0);
            [e.mean - h, e.mean + h]
        };
        let (x_range, x_decimals) = value_axis(self.points.iter().flat_map(|p| ends(&p.x)));
        let (y_range, y_decimals) = value_axis(self.points.iter().flat_map(|p| ends(&p.y)));
        let key_style = TextStyle::from((FONT, LEGEND_PX).into_font());
        let mut key_width = 0;
        let labels = self.points.iter().map(|p| p.label.as_str());
        for line in KEY.iter().copied().chain([HIGHER]).chain(labels) {
            key_width = key_width.max(root.estimate_text_size(line, &key_style)?.0);
        }
        let key_width = (key_width + LEGEND_TEXT_X as u32 + 24).min(WIDTH * 2 / 5);
        let (w, _) = body.dim_in_pixel();
        let (plot, legend) = body.split_horizontally(w - key_width);
        let mut chart = ChartBuilder::on(&plot)
            .margin_top(MARGIN)
            .margin_left(MARGIN)
            .margin_right(MARGIN)
            .x_label_area_size(X_AXIS_PX)
            .y_label_area_size(Y_AXIS_PX)
            .build_cartesian_2d(x_range, y_range)?;
        let x_format = |x: &f64| format!("{x:.x_decimals$}");
        let y_format = |y: &f64| format!("{y:.y_decimals$}");
        chart
            .configure_mesh()
            .x_desc("mean alignment (1 − JS distance)")
            .y_desc(self.y_desc)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .x_labels(8)
            .y_labels(8)
            .label_style((FONT, TICK_PX))
            .axis_desc_style((FONT, DESC_PX))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .axis_style(BLACK.stroke_width(1))
            .draw()?;

        let means: Vec<(f64, f64)> = self.points.iter().map(|p| (p.x.mean, p.y.mean)).collect();
        let front = pareto_front(&means);
        if front.len() > 1 {
            chart.draw_series(LineSeries::new(staircase(&front), FRONT.stroke_width(2)))?;
        }
        // A ring around each point on the front.
        chart.draw_series(
            front
                .iter()
                .map(|&p| Circle::new(p, MARKER_PX + 4, FRONT.stroke_width(2))),
        )?;

        for p in &self.points {
            let at = (p.x.mean, p.y.mean);
            let style = p.color.stroke_width(2);
            if let Some(h) = p.x.ci95 {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(at.0 - h, at.1), (at.0 + h, at.1)],
                    style,
                )))?;
                for x in [at.0 - h, at.0 + h] {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((x, at.1))
                            + PathElement::new(vec![(0, -CAP_PX), (0, CAP_PX)], style),
                    ))?;
                }
            }
            if let Some(h) = p.y.ci95 {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(at.0, at.1 - h), (at.0, at.1 + h)],
                    style,
                )))?;
                for y in [at.1 - h, at.1 + h] {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((at.0, y))
                            + PathElement::new(vec![(-CAP_PX, 0), (CAP_PX, 0)], style),
                    ))?;
                }
            }
            chart.draw_series(std::iter::once(Circle::new(
                at,
                MARKER_PX + 1,
                p.color.filled(),
            )))?;
            // Beside the point too while few enough not to pile up; the key always has them.
            if self.points.len() <= LABELLED_POINTS {
                let text = TextStyle::from((FONT, LEGEND_PX).into_font())
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Bottom));
                chart.draw_series(std::iter::once(
                    EmptyElement::at(at) + Text::new(p.label.clone(), (8, -6), text),
                ))?;
            }
        }

        // The key sits right of the axes, never over a point.
        let key =
            TextStyle::from((FONT, LEGEND_PX).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let row = |j: i32| MARGIN as i32 + 12 + j * LEGEND_ROW_PX;
        legend.draw(&PathElement::new(
            vec![(8, row(0)), (LEGEND_TEXT_X - 12, row(0))],
            FRONT.stroke_width(2),
        ))?;
        legend.draw(&Circle::new(
            ((LEGEND_TEXT_X - 4) / 2, row(1)),
            MARKER_PX + 4,
            FRONT.stroke_width(2),
        ))?;
        let whisker = FRONT.stroke_width(2);
        legend.draw(&PathElement::new(
            vec![(8, row(2)), (LEGEND_TEXT_X - 12, row(2))],
            whisker,
        ))?;
        for x in [8, LEGEND_TEXT_X - 12] {
            legend.draw(&PathElement::new(
                vec![(x, row(2) - CAP_PX), (x, row(2) + CAP_PX)],
                whisker,
            ))?;
        }
        for (j, line) in KEY.iter().enumerate() {
            legend.draw(&Text::new(
                *line,
                (LEGEND_TEXT_X, row(j as i32)),
                key.clone(),
            ))?;
        }
        legend.draw(&Text::new(
            HIGHER,
            (8, row(KEY.len() as i32 + 1)),
            key.clone(),
        ))?;
        // The configurations by colour too: close points' labels can overlap.
        for (j, p) in self.points.iter().enumerate() {
            let y = row(KEY.len() as i32 + 3 + j as i32);
            legend.draw(&Circle::new(
                ((LEGEND_TEXT_X - 4) / 2, y),
                MARKER_PX + 1,
                p.color.filled(),
            ))?;
            legend.draw(&Text::new(p.label.clone(), (LEGEND_TEXT_X, y), key.clone()))?;
        }
        Ok(())
    }
}

/// A configuration's mean over seeds per round, with the 95% CI half-width where two or more
/// seeds measured the round.
struct Curve {
    label: String,
    color: RGBColor,
    /// (round, estimate), sorted by round.
    points: Vec<(f64, Estimate)>,
}

struct Curves {
    title: String,
    series: Vec<Curve>,
}

const MEAN: &str = "mean";

/// Each configuration's curve of its completed cells' `mean` alignment per round, at the
/// stage each cell's final trained evaluation is from.
fn curves(report: &Report, labels: &[String]) -> Result<Vec<Curve>, PlotError> {
    let series: Vec<Option<Curve>> = report
        .configurations
        .par_iter()
        .enumerate()
        .map(|(i, c)| curve(report, c, &labels[i], i))
        .collect::<Result<_, _>>()?;
    Ok(series.into_iter().flatten().collect())
}

/// One configuration's curve, if any of its cells has rows to draw.
fn curve(
    report: &Report,
    c: &Configuration,
    label: &str,
    i: usize,
) -> Result<Option<Curve>, PlotError> {
    let mut by_round: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    let mut seeds = 0;
    for &at in &c.cells {
        let row = &report.cells[at];
        let Status::Done(measured) = &row.status else {
            continue;
        };
        let Some(last) = &measured.last else {
            continue;
        };
        let rows = read_rows(&row.dir.join("metrics.jsonl"))?;
        let mut any = false;
        for r in rows
            .iter()
            .filter(|r| r.stage == last.stage && r.group.is_none() && r.metric == MEAN)
        {
            if let Some(v) = r.value {
                by_round.entry(r.round).or_default().push(v);
                any = true;
            }
        }
        seeds += usize::from(any);
    }
    let points: Vec<(f64, Estimate)> = by_round
        .into_iter()
        .filter_map(|(round, values)| Some((f64::from(round), Estimate::of(&values)?)))
        .collect();
    Ok((!points.is_empty()).then(|| Curve {
        label: format!("{label} (n={seeds})"),
        color: color(i),
        points,
    }))
}

impl Draw for Curves {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let body = root.titled(&self.title, (FONT, TITLE_PX))?;
        let band = |e: &Estimate| {
            let h = e.ci95.unwrap_or(0.0);
            (e.mean - h, e.mean + h)
        };
        let rounds = || {
            self.series
                .iter()
                .flat_map(|s| &s.points)
                .map(|p| p.0 as u32)
        };
        let first = rounds().min().unwrap_or(0);
        let last = rounds().max().unwrap_or(0);
        let marked = |s: &Curve| {
            let n = rounds().collect::<std::collections::BTreeSet<_>>().len();
            n <= MARKED_ROUNDS || s.points.len() == 1
        };

        let legend_style = TextStyle::from((FONT, LEGEND_PX).into_font());
        let note = "band: 95% CI over seeds (Student's t)";
        let mut legend_width = root.estimate_text_size(note, &legend_style)?.0;
        for s in &self.series {
            legend_width = legend_width.max(root.estimate_text_size(&s.label, &legend_style)?.0);
        }
        let legend_width = (legend_width + LEGEND_TEXT_X as u32 + 24).min(WIDTH * 2 / 5);
        let (w, _) = body.dim_in_pixel();
        let (plot, legend) = body.split_horizontally(w - legend_width);

        let values = self
            .series
            .iter()
            .flat_map(|s| &s.points)
            .flat_map(|(_, e)| {
                let (lo, hi) = band(e);
                [lo, hi]
            });
        let (y_range, decimals) = value_axis(values);
        let mut chart = ChartBuilder::on(&plot)
            .margin_top(MARGIN)
            .margin_left(MARGIN)
            .margin_right(MARGIN)
            .x_label_area_size(X_AXIS_PX)
            .y_label_area_size(Y_AXIS_PX)
            .build_cartesian_2d(RoundAxis::new(first, last), y_range)?;
        let x_format = |x: &f64| format!("{x:.0}");
        let y_format = |y: &f64| format!("{y:.decimals$}");
        chart
            .configure_mesh()
            .x_desc("round")
            .y_desc("mean alignment (1 − JS distance)")
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .y_labels(8)
            .label_style((FONT, TICK_PX))
            .axis_desc_style((FONT, DESC_PX))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .axis_style(BLACK.stroke_width(1))
            .draw()?;

        // Bands first, so that every line is drawn over every band.
        for s in &self.series {
            if s.points.len() > 1 && s.points.iter().any(|(_, e)| e.ci95.is_some()) {
                let upper = s.points.iter().map(|(r, e)| (*r, band(e).1));
                let lower = s.points.iter().rev().map(|(r, e)| (*r, band(e).0));
                chart.draw_series(std::iter::once(Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    s.color.mix(0.18).filled(),
                )))?;
            }
        }
        for s in &self.series {
            let means = s.points.iter().map(|(r, e)| (*r, e.mean));
            if s.points.len() > 1 {
                chart.draw_series(LineSeries::new(means.clone(), s.color.stroke_width(3)))?;
            }
            if marked(s) {
                chart.draw_series(means.map(|p| Circle::new(p, MARKER_PX, s.color.filled())))?;
            }
        }

        let text = legend_style.pos(Pos::new(HPos::Left, VPos::Center));
        for (j, s) in self.series.iter().enumerate() {
            let y = MARGIN as i32 + 12 + j as i32 * LEGEND_ROW_PX;
            legend.draw(&Rectangle::new(
                [(8, y - 9), (LEGEND_TEXT_X - 12, y + 9)],
                s.color.mix(0.18).filled(),
            ))?;
            legend.draw(&PathElement::new(
                vec![(8, y), (LEGEND_TEXT_X - 12, y)],
                s.color.stroke_width(3),
            ))?;
            legend.draw(&Text::new(
                s.label.clone(),
                (LEGEND_TEXT_X, y),
                text.clone(),
            ))?;
        }
        let y = MARGIN as i32 + 12 + (self.series.len() as i32 + 1) * LEGEND_ROW_PX;
        legend.draw(&Text::new(note, (8, y), text))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::grid::report::Report;
    use crate::grid::{Axis, Cell, CellOutcome};
    use crate::record::{StageEvaluation, Summary};
    use crate::stage::Evaluation;

    /// A run whose final evaluation (`evaluate`, round 4) has mean alignment `mean` and
    /// worst-group alignment `worst`.
    fn summary(mean: f64, worst: f64) -> Summary {
        let names = ["mean", "worst_group", "jain", "gap"];
        let fairness = [mean, worst, 0.95 + mean / 100.0, 0.2];
        Summary {
            evaluations: vec![StageEvaluation {
                stage: "evaluate".to_owned(),
                round: 4,
                evaluation: Evaluation {
                    policy: "trained".to_owned(),
                    groups: vec!["a".to_owned(), "b".to_owned()],
                    alignment: vec![mean + 0.1, mean - 0.1],
                    fairness: names.iter().map(|n| n.to_string()).zip(fairness).collect(),
                },
            }],
            final_reward: Some(0.1),
            seconds: 1.0,
        }
    }

    /// `evaluate` rows for rounds 0..=4 rising to `mean`, a per-group row and a training row
    /// the curves must ignore.
    fn metrics(mean: f64) -> String {
        let mut text = String::new();
        for round in 0..=4u32 {
            let v = mean - 0.05 * f64::from(4 - round);
            for (group, metric, value) in [
                (None, "mean", v),
                (None, "worst_group", v - 0.1),
                (Some("a"), "alignment", v + 0.1),
            ] {
                let row = json!({
                    "round": round, "stage": "evaluate", "policy": "trained",
                    "group": group, "metric": metric, "value": value,
                });
                text.push_str(&format!("{row}\n"));
            }
            let row = json!({
                "round": round, "stage": "ppo", "group": null,
                "metric": "mean", "value": 99.0,
            });
            text.push_str(&format!("{row}\n"));
        }
        text
    }

    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    }

    /// Rules min, mean, max × seeds 1..=3, max's seed 3 failed; mean alignment 0.62, 0.67,
    /// 0.715 and worst group 0.67, 0.57, 0.615, so the front is min and max.
    fn grid(dir: &Path) -> Report {
        let rules = ["min", "mean", "max"];
        let axes = [
            Axis {
                key: "aggregate.rule".to_owned(),
                values: rules.iter().map(|r| json!(r)).collect(),
            },
            Axis {
                key: "seed".to_owned(),
                values: vec![json!(1), json!(2), json!(3)],
            },
        ];
        let mut outcomes = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            for seed in 1..=3 {
                let index = outcomes.len();
                let cell_dir = dir.join(format!("cells/{index:02}"));
                std::fs::create_dir_all(&cell_dir).unwrap();
                let mean = 0.6 + 0.05 * r as f64 + 0.01 * f64::from(seed);
                std::fs::write(cell_dir.join("metrics.jsonl"), metrics(mean)).unwrap();
                // The min rule lifts the worst group: min and max make the Pareto front.
                let worst = if *rule == "min" {
                    mean + 0.05
                } else {
                    mean - 0.1
                };
                let failed = *rule == "max" && seed == 3;
                outcomes.push(CellOutcome {
                    cell: Cell {
                        index,
                        settings: vec![
                            ("aggregate.rule".to_owned(), json!(rule)),
                            ("seed".to_owned(), json!(seed)),
                        ],
                    },
                    dir: cell_dir,
                    summary: (!failed).then(|| summary(mean, worst)),
                    error: failed.then(|| "diverged".to_owned()),
                });
            }
        }
        Report::build(&axes, &outcomes, None).unwrap()
    }

    #[test]
    fn plots_pareto_and_curves_of_a_grid() {
        let dir = tempfile::tempdir().unwrap();
        let report = grid(dir.path());
        let written = plot_grid(dir.path(), &report).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "pareto.png",
                "pareto.svg",
                "pareto_jain.png",
                "pareto_jain.svg",
                "curves.png",
                "curves.svg"
            ]
        );
        for path in &written {
            assert_eq!(path.parent(), Some(dir.path()));
            let bytes = std::fs::read(path).unwrap();
            if path.extension().unwrap() == "png" {
                assert_eq!(png_size(&bytes), (WIDTH, HEIGHT), "{}", path.display());
                let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
                let mut reader = decoder.read_info().unwrap();
                let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
                reader.next_frame(&mut pixels).unwrap();
                assert!(pixels.iter().any(|&b| b < 128), "{}", path.display());
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(svg.trim_end().ends_with("</svg>"), "{}", path.display());
                for rule in ["min", "mean", "max"] {
                    assert!(
                        svg.contains(&format!("rule={rule}")),
                        "{rule} labelled in {}",
                        path.display()
                    );
                }
            }
        }
        let pareto = std::fs::read_to_string(dir.path().join("pareto.svg")).unwrap();
        let folder = dir.path().file_name().unwrap().to_str().unwrap();
        assert!(pareto.contains(&format!("Mean vs worst-group alignment — {folder}")));
        let curves = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
        assert!(curves.contains("rule=max (n=2)"), "failed seed left out");
        assert!(curves.contains("<polygon"), "CI bands drawn");
        let front = points(
            &report,
            &["min".into(), "mean".into(), "max".into()],
            Quantity::WorstGroup,
        );
        let means: Vec<_> = front.iter().map(|p| (p.x.mean, p.y.mean)).collect();
        let front = pareto_front(&means);
        assert_eq!(front.len(), 2, "{front:?}");
        assert!((front[0].0 - 0.62).abs() < 1e-9 && (front[1].1 - 0.615).abs() < 1e-9);
    }

    #[test]
    fn a_grid_without_completed_cells_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let report = Report::build(&[], &[], None).unwrap();
        let err = plot_grid(dir.path(), &report).unwrap_err().to_string();
        assert!(
            err.contains("no configuration has a completed cell"),
            "{err}"
        );
    }

    #[test]
    fn the_front_is_the_undominated_points_as_a_staircase() {
        let points = [(0.7, 0.5), (0.8, 0.4), (0.6, 0.6), (0.65, 0.45), (0.8, 0.4)];
        let front = pareto_front(&points);
        assert_eq!(front, [(0.6, 0.6), (0.7, 0.5), (0.8, 0.4)]);
        assert_eq!(
            staircase(&front),
            [(0.6, 0.6), (0.6, 0.5), (0.7, 0.5), (0.7, 0.4), (0.8, 0.4)]
        );
    }
}
