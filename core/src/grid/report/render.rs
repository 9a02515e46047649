//! The report as text: Markdown for reading, CSV for pandas (one row per configuration, and
//! one per cell so that every number in the Markdown can be traced to its run folder).
use serde_json::Value;

use super::{
    show, CellRow, Configuration, Estimate, Measured, Paired, Quantity, Report, StageRound, Status,
};

impl Report {
    /// Title, grid size, then the tables: mean ± 95% CI over seeds, differences paired by
    /// seed against the baseline, whether the policy moved, and the failed cells.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Grid report\n\n");
        out.push_str(&self.size());
        out.push_str(&self.means());
        out.push_str(&self.paired());
        out.push_str(&self.movement());
        out.push_str(&self.failures());
        out
    }

    /// One row per configuration: its settings, n, failed and missing cells, each
    /// quantity's mean and CI half-width, the initial mean alignment, and the paired
    /// differences (empty where not paired; 0 and an empty CI on baseline rows).
    pub fn csv(&self) -> String {
        let mut header = self.columns.clone();
        header.extend(["n", "failed", "missing"].map(String::from));
        for name in Quantity::ALL
            .map(Quantity::name)
            .into_iter()
            .chain(["initial_mean_alignment"])
        {
            header.extend([format!("{name}_mean"), format!("{name}_ci95")]);
        }
        for q in Quantity::ALL {
            header.extend([
                format!("delta_{}_mean", q.name()),
                format!("delta_{}_ci95", q.name()),
            ]);
        }
        header.push("pairs".to_owned());
        let mut out = csv_line(&header);
        for c in &self.configurations {
            let mut row: Vec<String> = c.values.iter().map(setting).collect();
            row.extend([c.n(), c.failed, c.missing].map(|n| n.to_string()));
            for e in c.stats.iter().chain([&c.initial_mean_alignment]) {
                row.extend(estimate_fields(e.as_ref()));
            }
            row.extend(paired_fields(&c.paired));
            out.push_str(&csv_line(&row));
        }
        out
    }

    /// One row per cell: index, every setting, status, run folder, which evaluations the
    /// numbers come from, each quantity, the initial mean alignment, every group's initial
    /// and final alignment, and a failed cell's error.
    pub fn cells_csv(&self) -> String {
        let groups = self.groups();
        let mut header = vec!["index".to_owned()];
        header.extend(self.keys.iter().cloned());
        header.extend(
            [
                "status",
                "dir",
                "final_stage",
                "final_round",
                "initial_stage",
                "initial_round",
            ]
            .map(String::from),
        );
        header.extend(Quantity::ALL.map(|q| q.name().to_owned()));
        header.push("initial_mean_alignment".to_owned());
        header.extend(groups.iter().map(|g| format!("alignment_initial:{g}")));
        header.extend(groups.iter().map(|g| format!("alignment_final:{g}")));
        header.push("error".to_owned());
        let mut out = csv_line(&header);
        for row in &self.cells {
            out.push_str(&csv_line(&self.cell_fields(row, &groups)));
        }
        out
    }

    /// A cell's record; a cell that did not complete leaves its number fields empty.
    fn cell_fields(&self, row: &CellRow, groups: &[String]) -> Vec<String> {
        let mut fields = vec![row.cell.index.to_string()];
        fields.extend(self.keys.iter().map(|k| setting(&row.cell.get(k).cloned())));
        fields.push(row.status.name().to_owned());
        fields.push(row.dir.display().to_string());
        let m = row.status.measured();
        for stage in [
            m.and_then(|m| m.last.as_ref()),
            m.and_then(|m| m.initial.as_ref()),
        ] {
            fields.push(stage.map_or(String::new(), |s| s.stage.clone()));
            fields.push(stage.map_or(String::new(), |s| s.round.to_string()));
        }
        fields.extend(Quantity::ALL.map(|q| number(m.and_then(|m| m.values[q.slot()]))));
        fields.push(number(m.and_then(|m| m.initial_mean_alignment)));
        let group = |g: &String| m.and_then(|m| m.groups.iter().find(|x| x.group == *g));
        fields.extend(groups.iter().map(|g| number(group(g).map(|x| x.initial))));
        fields.extend(groups.iter().map(|g| number(group(g).map(|x| x.trained))));
        fields.push(match &row.status {
            Status::Failed(error) => first_line(error).to_owned(),
            _ => String::new(),
        });
        fields
    }

    /// Every group any cell compared, in order of first appearance.
    fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        let measured = self.cells.iter().filter_map(|c| c.status.measured());
        for g in measured.flat_map(|m| &m.groups) {
            if !groups.contains(&g.group) {
                groups.push(g.group.clone());
            }
        }
        groups
    }

    /// How many cells, in what state, and where the numbers come from.
    fn size(&self) -> String {
        let (done, failed, missing) = self.counts();
        let mut out = format!(
            "{} cells: {done} done, {failed} failed, {missing} missing",
            self.cells.len()
        );
        if missing > 0 {
            let which: Vec<String> = self
                .cells
                .iter()
                .filter(|c| c.status == Status::Missing)
                .map(|c| c.cell.index.to_string())
                .collect();
            out.push_str(&format!(" (cells {})", which.join(", ")));
        }
        out.push_str(&format!("; {} configurations", self.configurations.len()));
        if !self.columns.is_empty() {
            let keys: Vec<String> = self.columns.iter().map(|k| format!("`{k}`")).collect();
            out.push_str(&format!(" of {}", keys.join(" × ")));
        }
        out.push_str(".\n\n");
        let last = self.stages(|c| c.last.as_ref());
        if !last.is_empty() {
            out.push_str(&format!(
                "Numbers are from each cell's final trained evaluation: {last}.\n\n"
            ));
        }
        out
    }

    /// The distinct evaluations that `pick` chooses in completed cells, with how many cells
    /// each (a `rounds` axis, say, makes them differ).
    fn stages(&self, pick: impl Fn(&Measured) -> Option<&StageRound>) -> String {
        let mut seen: Vec<(&StageRound, usize)> = Vec::new();
        for s in self.cells.iter().filter_map(|c| pick(c.status.measured()?)) {
            match seen.iter_mut().find(|(x, _)| *x == s) {
                Some((_, n)) => *n += 1,
                None => seen.push((s, 1)),
            }
        }
        let one = seen.len() == 1;
        let parts: Vec<String> = seen
            .iter()
            .map(|(s, n)| {
                let cells = if one {
                    String::new()
                } else {
                    format!(" ({n} cells)")
                };
                format!("stage `{}` at round {}{cells}", s.stage, s.round)
            })
            .collect();
        parts.join(", ")
    }

    fn means(&self) -> String {
        let mut out = String::from("## Mean ± 95% CI over seeds\n\n");
        out.push_str(if self.seeded {
            "± is the half-width of the 95% confidence interval of the mean over the seeds that completed (Student's t, n − 1 degrees of freedom).\n\n"
        } else {
            "This grid has no `seed` axis: each configuration is one run (n = 1), so there are no confidence intervals; add a `seed` axis to get them.\n\n"
        });
        let mut header = self.columns.clone();
        header.push("n".to_owned());
        header.extend(Quantity::ALL.map(|q| q.label().to_owned()));
        let rows = self.configurations.iter().map(|c| {
            let mut row = self.settings(c);
            row.push(completed(c));
            row.extend(Quantity::ALL.map(|q| estimate(c.stats[q.slot()], q.decimals(), false)));
            row
        });
        out.push_str(&table(&header, self.columns.len(), rows));
        out
    }

    fn paired(&self) -> String {
        let Some((key, value)) = &self.baseline else {
            return String::new();
        };
        let value = show(value);
        let mut out = format!("## Paired by seed against {key}={value}\n\n");
        out.push_str(&format!("Δ = configuration − its {key}={value} configuration with the same other settings, cell by cell on the same seed (seeds completed in both); ± is the half-width of the 95% CI of the mean difference (Student's t, pairs − 1 degrees of freedom). Baseline rows show 0.\n\n"));
        let mut header = self.columns.clone();
        header.push("pairs".to_owned());
        header.extend(Quantity::ALL.map(|q| format!("Δ {}", q.label())));
        let rows = self.configurations.iter().filter_map(|c| {
            let cells: Vec<String> = match &c.paired {
                Paired::Unpaired => return None,
                Paired::Baseline => std::iter::once("—".to_owned())
                    .chain(Quantity::ALL.map(|_| "0".to_owned()))
                    .collect(),
                Paired::Against { pairs, deltas } => std::iter::once(pairs.to_string())
                    .chain(Quantity::ALL.map(|q| estimate(deltas[q.slot()], q.decimals(), true)))
                    .collect(),
            };
            let mut row = self.settings(c);
            row.extend(cells);
            Some(row)
        });
        out.push_str(&table(&header, self.columns.len(), rows));
        let unpaired: Vec<String> = self
            .configurations
            .iter()
            .filter(|c| c.paired == Paired::Unpaired)
            .map(|c| self.settings(c).join(" "))
            .collect();
        if !unpaired.is_empty() {
            out.push_str(&format!(
                "Not paired (no {key}={value} configuration with the same other settings): {}.\n\n",
                unpaired.join("; ")
            ));
        }
        out
    }

    /// Initial → final mean alignment and the extreme per-group changes: a report of
    /// equal numbers for every rule means little if training never moved the policy.
    fn movement(&self) -> String {
        let mut out = String::from("## Does the policy move?\n\n");
        let initial = self.stages(|c| c.initial.as_ref());
        if initial.is_empty() {
            out.push_str("No cell has an evaluation before its final one, so there is nothing to compare with; add an evaluate stage before the loop (pipelines/paper.yaml's `initial`).\n\n");
            return out;
        }
        out.push_str(&format!("Initial: {initial}. Mean alignment over seeds, initial → final; a group's change is its final minus initial alignment, averaged over seeds.\n\n"));
        let mut header = self.columns.clone();
        header.extend(
            [
                "n",
                "mean alignment",
                "largest group change",
                "smallest group change",
            ]
            .map(String::from),
        );
        let rows = self.configurations.iter().map(|c| {
            let mut row = self.settings(c);
            row.push(c.n().to_string());
            row.push(
                match (
                    c.initial_mean_alignment,
                    c.stats[Quantity::MeanAlignment.slot()],
                ) {
                    (Some(i), Some(f)) => {
                        format!("{:.4} → {:.4} ({:+.4})", i.mean, f.mean, f.mean - i.mean)
                    }
                    _ => "—".to_owned(),
                },
            );
            let by_change = |a: &&(String, f64), b: &&(String, f64)| a.1.total_cmp(&b.1);
            for extreme in [
                c.group_changes.iter().max_by(by_change),
                c.group_changes.iter().min_by(by_change),
            ] {
                row.push(extreme.map_or("—".to_owned(), |(g, d)| format!("{d:+.4} ({g})")));
            }
            row
        });
        out.push_str(&table(&header, self.columns.len(), rows));
        out
    }

    fn failures(&self) -> String {
        let failed: Vec<String> = self
            .cells
            .iter()
            .filter_map(|c| match &c.status {
                Status::Failed(e) => Some(format!(
                    "- cell {} (`{}`, {}): {}\n",
                    c.cell.index,
                    c.cell.label(),
                    c.dir.display(),
                    first_line(e)
                )),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            return String::new();
        }
        format!("## Failed cells\n\n{}\n", failed.concat())
    }

    /// A configuration's settings for a Markdown row.
    fn settings(&self, c: &Configuration) -> Vec<String> {
        c.values
            .iter()
            .map(|v| v.as_ref().map_or("—".to_owned(), show))
            .collect()
    }
}

/// Completed cells, and how many more failed or have not run.
fn completed(c: &Configuration) -> String {
    let mut notes = Vec::new();
    if c.failed > 0 {
        notes.push(format!("{} failed", c.failed));
    }
    if c.missing > 0 {
        notes.push(format!("{} missing", c.missing));
    }
    if notes.is_empty() {
        c.n().to_string()
    } else {
        format!("{} ({})", c.n(), notes.join(", "))
    }
}

/// `0.7200 ± 0.0497`, `0.7200` without an interval, `—` without a value; `signed` for
/// differences.
fn estimate(e: Option<Estimate>, decimals: usize, signed: bool) -> String {
    let Some(e) = e else {
        return "—".to_owned();
    };
    let mean = if signed {
        format!("{:+.*}", decimals, e.mean)
    } else {
        format!("{:.*}", decimals, e.mean)
    };
    match e.ci95 {
        Some(ci) => format!("{mean} ± {ci:.decimals$}"),
        None => mean,
    }
}

/// A Markdown table; columns from `numeric` on are right-aligned.
fn table(header: &[String], numeric: usize, rows: impl Iterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let rule: Vec<String> = (0..header.len())
        .map(|i| if i < numeric { "---" } else { "---:" }.to_owned())
        .collect();
    let mut out = line(header);
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in rows {
        out.push_str(&line(&row));
    }
    out.push('\n');
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// A setting in CSV: empty where the cell does not set it.
fn setting(value: &Option<Value>) -> String {
    value.as_ref().map_or(String::new(), show)
}

/// A number in CSV: empty when absent, else the shortest text that reads back exactly.
fn number(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

fn estimate_fields(e: Option<&Estimate>) -> [String; 2] {
    [number(e.map(|e| e.mean)), number(e.and_then(|e| e.ci95))]
}

/// The delta columns and `pairs`.
fn paired_fields(paired: &Paired) -> Vec<String> {
    let width = 2 * Quantity::ALL.len() + 1;
    match paired {
        Paired::Unpaired => vec![String::new(); width],
        Paired::Baseline => {
            let mut fields: Vec<String> = Quantity::ALL
                .iter()
                .flat_map(|_| ["0".to_owned(), String::new()])
                .collect();
            fields.push(String::new());
            fields
        }
        Paired::Against { pairs, deltas } => {
            let mut fields: Vec<String> = deltas
                .iter()
                .flat_map(|d| estimate_fields(d.as_ref()))
                .collect();
            fields.push(pairs.to_string());
            fields
        }
    }
}

/// One CSV record (RFC 4180: a field with a comma, quote or line break is quoted, its
/// quotes doubled).
fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}
