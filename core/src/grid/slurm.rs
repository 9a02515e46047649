//! Grids on Slurm: the grid file's `slurm:` section and the sbatch script that runs a grid as a
//! job array, one array task per cell (`chorus grid FILE --emit slurm`).
//!
//! Task `i` runs `chorus grid FILE --cell i`, which is all a cell needs: its run folder is named
//! by its identity and locked while written, a finished cell is read back instead of rerun, and
//! `--status` and `chorus report` read the cells' folders, so nothing is coordinated between
//! tasks.
use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

use super::Grid;

/// How each array task asks Slurm for resources; every field is optional, and what is left out
/// is the cluster's default. One task runs one cell.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slurm {
    /// CPUs per task (`--cpus-per-task`, at least 1). Where Slurm binds a task to its CPUs
    /// (task/affinity or task/cgroup), a cell's stages and groups run on that many threads.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub cpus: u32,
    /// Memory per task (`--mem`): a whole number with an optional unit `K`, `M`, `G` or `T`
    /// (megabytes without one), e.g. `4G`. Where Slurm enforces it with a cgroup, a cell whose
    /// estimated memory does not fit is refused at its start rather than killed mid-run.
    #[schemars(pattern(r"^[0-9]+[KMGT]?$"))]
    pub mem: Option<String>,
    /// GPUs per task (`--gres=gpu:N`); none by default.
    #[serde(default)]
    pub gpus: u32,
    /// Wall-time limit per task (`--time`): `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or
    /// `D-HH:MM:SS`, e.g. `01:00:00`. A task killed at the limit leaves its cell's last
    /// checkpoint; submitting again resumes it.
    #[schemars(pattern(r"^([0-9]+-[0-9]{1,2}(:[0-9]{1,2}){0,2}|[0-9]+(:[0-9]{1,2}){0,2})$"))]
    pub time: Option<String>,
    /// The partition (`--partition`), e.g. `cpu`; several as `cpu,gpu`.
    pub partition: Option<String>,
    /// The account charged (`--account`).
    pub account: Option<String>,
    /// The most tasks running at once (the `%N` of `--array`, at least 1); default: as many as
    /// the cluster allows.
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// More `#SBATCH` options, one per entry, written as on the sbatch command line, e.g.
    /// `--qos=long` or `--constraint=avx2`. Options this section or chorus already writes are
    /// refused, so each is said once.
    #[serde(default)]
    pub extra: Vec<String>,
}

fn one() -> u32 {
    1
}

impl Default for Slurm {
    fn default() -> Self {
        Slurm {
            cpus: 1,
            mem: None,
            gpus: 0,
            time: None,
            partition: None,
            account: None,
            concurrency: None,
            extra: Vec::new(),
        }
    }
}

/// One thing wrong in a `slurm:` section: where (a path below `slurm`, `mem` or `extra[2]`),
/// what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub hint: String,
}

/// Options chorus writes itself, and what to use instead of giving them in `extra`.
const OWN_OPTIONS: [(&str, Option<char>, &str); 10] = [
    ("array", Some('a'), "chorus writes it: one task per cell"),
    (
        "output",
        Some('o'),
        "chorus writes it: <grid>/slurm/%A_%a.out",
    ),
    (
        "job-name",
        Some('J'),
        "chorus writes it: chorus-<grid name>",
    ),
    (
        "chdir",
        Some('D'),
        "the script changes to the folder `--emit` ran in",
    ),
    ("cpus-per-task", Some('c'), "use `slurm.cpus`"),
    ("mem", None, "use `slurm.mem`"),
    ("gres", None, "use `slurm.gpus`"),
    ("time", Some('t'), "use `slurm.time`"),
    ("partition", Some('p'), "use `slurm.partition`"),
    ("account", Some('A'), "use `slurm.account`"),
];

impl Slurm {
    /// Every problem of the section's values (serde has checked their types).
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut problem = |path: &str, message: String, hint: &str| {
            out.push(Problem {
                path: path.to_owned(),
                message,
                hint: hint.to_owned(),
            })
        };
        if self.cpus == 0 {
            problem(
                "cpus",
                "`slurm.cpus` must be at least 1".to_owned(),
                "give the CPUs each task (one cell) gets, e.g. `cpus: 2`",
            );
        }
        if self.concurrency == Some(0) {
            problem(
                "concurrency",
                "`slurm.concurrency` must be at least 1".to_owned(),
                "give the most tasks that may run at once, or leave it out for no limit",
            );
        }
        if let Some(mem) = self.mem.as_deref().filter(|m| !is_memory(m)) {
            problem(
                "mem",
                format!("`{mem}` is not a Slurm memory size"),
                "write a whole number with an optional unit K, M, G or T (megabytes without one), e.g. `4G` or `500M`",
            );
        }
        if let Some(time) = self.time.as_deref().filter(|t| !is_time(t)) {
            problem(
                "time",
                format!("`{time}` is not a Slurm time limit"),
                "write MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, e.g. `01:30:00` or `2-00:00:00`",
            );
        }
        for (field, value) in [("partition", &self.partition), ("account", &self.account)] {
            if let Some(v) = value.as_deref().filter(|v| !is_word(v)) {
                problem(
                    field,
                    format!("`{v}` cannot name a Slurm {field}"),
                    "write the name alone: no spaces, quotes or `#` (`sinfo` lists partitions)",
                );
            }
        }
        for (i, option) in self.extra.iter().enumerate() {
            let path = format!("extra[{i}]");
            if !option.starts_with('-') || option.contains(['\n', '\r']) {
                problem(
                    &path,
                    format!("`{option}` is not an sbatch option"),
                    "write one option as on the sbatch command line, e.g. `--qos=long`",
                );
            } else if let Some((name, why)) = own_option(option) {
                problem(
                    &path,
                    format!("`{option}` sets `--{name}`, which the script already sets"),
                    why,
                );
            }
        }
        out
    }
}

/// The option of [`OWN_OPTIONS`] that `option` (`--mem=4G`, `-t 10`, `-p`) sets, with the hint.
fn own_option(option: &str) -> Option<(&'static str, &'static str)> {
    let word = option.split(['=', ' ']).next().unwrap_or(option);
    OWN_OPTIONS.iter().find_map(|&(long, short, why)| {
        let is_long = word.strip_prefix("--") == Some(long);
        let is_short = short.is_some_and(|s| {
            option
                .strip_prefix('-')
                .and_then(|rest| rest.chars().next())
                == Some(s)
                && !option.starts_with("--")
        });
        (is_long || is_short).then_some((long, why))
    })
}

/// `4G`, `500M`, `16000`: what `--mem` takes.
fn is_memory(text: &str) -> bool {
    let digits = text.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`: what `--time` takes. The
/// leading number is unbounded (Slurm reads `90` as 90 minutes); the ones after it have one or
/// two digits.
fn is_time(text: &str) -> bool {
    let number = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    let (days, rest) = match text.split_once('-') {
        Some((d, rest)) => (Some(d), rest),
        None => (None, text),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() > 3 || days.is_some_and(|d| !number(d, usize::MAX)) {
        return false;
    }
    // With days, the first part is hours (two digits at most); without, it is unbounded.
    let first_len = if days.is_some() { 2 } else { usize::MAX };
    number(parts[0], first_len) && parts[1..].iter().all(|p| number(p, 2))
}

/// A partition or account name: printable, and nothing the script or sbatch would split on.
fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '#'))
}

/// The sbatch script that runs `grid` as a job array, one task per cell: task `i` changes to
/// `workdir` (the folder the grid's `output` is relative to) and runs `binary grid FILE --cell
/// i` (with `--baseline KEY=VALUE`, for the report the last task writes). `binary` and
/// `workdir` are absolute; the grid file is made absolute against `workdir`. The tasks' output
/// goes to `<grid folder>/slurm/%A_%a.out` (job id, task id), a folder that must exist before
/// the job starts.
pub fn script(grid: &Grid, binary: &Path, workdir: &Path, baseline: Option<&str>) -> String {
    let slurm = &grid.slurm;
    let file = workdir.join(&grid.file);
    let output = workdir.join(&grid.dir).join("slurm");
    let last = grid.cells.len().saturating_sub(1);
    let mut options = vec![
        format!("--job-name=chorus-{}", grid.name),
        match slurm.concurrency {
            Some(n) => format!("--array=0-{last}%{n}"),
            None => format!("--array=0-{last}"),
        },
        format!("--cpus-per-task={}", slurm.cpus),
    ];
    if let Some(mem) = &slurm.mem {
        options.push(format!("--mem={mem}"));
    }
    if slurm.gpus > 0 {
        options.push(format!("--gres=gpu:{}", slurm.gpus));
    }
    if let Some(time) = &slurm.time {
        options.push(format!("--time={time}"));
    }
    if let Some(partition) = &slurm.partition {
        options.push(format!("--partition={partition}"));
    }
    if let Some(account) = &slurm.account {
        options.push(format!("--account={account}"));
    }
    // `%` starts a pattern in Slurm's file names (`%A`, `%a`); a literal one is `%%`.
    let pattern = output.display().to_string().replace('%', "%%");
    options.push(format!(
        "--output={}",
        sbatch_quote(&format!("{pattern}/%A_%a.out"))
    ));
    options.extend(slurm.extra.iter().cloned());

    let mut text = String::from("#!/bin/bash\n");
    for option in options {
        text.push_str(&format!("#SBATCH {option}\n"));
    }
    text.push_str(&format!(
        "\n# Written by `chorus grid {file} --emit slurm`: one array task per cell ({cells}).\n\
         # A finished cell is read back, not rerun, so submitting again runs only what is left;\n\
         # after editing the grid file, emit this script again (cell numbers follow the file).\n\
         set -euo pipefail\n\
         cd {workdir}\n\
         exec {binary} grid {file_arg} --cell \"$SLURM_ARRAY_TASK_ID\"{baseline}\n",
        file = file.display(),
        cells = grid.cells.len(),
        workdir = shell_quote(&workdir.display().to_string()),
        binary = shell_quote(&binary.display().to_string()),
        file_arg = shell_quote(&file.display().to_string()),
        baseline = baseline
            .map(|b| format!(" --baseline {}", shell_quote(b)))
            .unwrap_or_default(),
    ));
    text
}

/// A word for bash: as is when it is plain, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An `#SBATCH` value: sbatch splits these lines at white space unless the value is in double
/// quotes.
fn sbatch_quote(value: &str) -> String {
    if value.contains(char::is_whitespace) {
        format!("\"{value}\"")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::grid::Cell;

    fn grid(cells: usize, slurm: Slurm) -> Grid {
        Grid {
            file: PathBuf::from("grids/g.yaml"),
            name: "g".to_owned(),
            base: PathBuf::from("/exp/base.yaml"),
            dir: PathBuf::from("runs/grids/g"),
            axes: Vec::new(),
            cells: (0..cells)
                .map(|index| Cell {
                    index,
                    settings: vec![("seed".to_owned(), json!(index))],
                })
                .collect(),
            parallel: 2,
            slurm,
        }
    }

    fn sbatch_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.strip_prefix("#SBATCH "))
            .collect()
    }

    #[test]
    fn the_defaults_make_a_bare_array() {
        let text = script(
            &grid(10, Slurm::default()),
            Path::new("/opt/chorus/bin/chorus"),
            Path::new("/exp"),
            None,
        );
        assert_eq!(
            sbatch_lines(&text),
            [
                "--job-name=chorus-g",
                "--array=0-9",
                "--cpus-per-task=1",
                "--output=/exp/runs/grids/g/slurm/%A_%a.out",
            ]
        );
        assert!(text.starts_with("#!/bin/bash\n"), "{text}");
        assert!(
            text.ends_with(
                "set -euo pipefail\ncd /exp\n\
                 exec /opt/chorus/bin/chorus grid /exp/grids/g.yaml --cell \"$SLURM_ARRAY_TASK_ID\"\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn every_field_becomes_its_option() {
        let slurm = Slurm {
            cpus: 4,
            mem: Some("8G".to_owned()),
            gpus: 1,
            time: Some("02:00:00".to_owned()),
            partition: Some("gpu".to_owned()),
            account: Some("lab".to_owned()),
            concurrency: Some(5),
            extra: vec!["--qos=long".to_owned(), "--constraint=avx2".to_owned()],
        };
        let text = script(
            &grid(1, slurm),
            Path::new("/c"),
            Path::new("/exp"),
            Some("aggregate.rule=mean"),
        );
        assert_eq!(
            sbatch_lines(&text),
            [
                "--job-name=chorus-g",
                "--array=0-0%5",
                "--cpus-per-task=4",
                "--mem=8G",
                "--gres=gpu:1",
                "--time=02:00:00",
                "--partition=gpu",
                "--account=lab",
                "--output=/exp/runs/grids/g/slurm/%A_%a.out",
                "--qos=long",
                "--constraint=avx2",
            ]
        );
        assert!(
            text.ends_with("--cell \"$SLURM_ARRAY_TASK_ID\" --baseline aggregate.rule=mean\n"),
            "{text}"
        );
    }

    #[test]
    fn odd_paths_are_quoted() {
        let mut g = grid(2, Slurm::default());
        g.file = PathBuf::from("/my grids/it's.yaml");
        let text = script(&g, Path::new("/c"), Path::new("/exp 100%"), Some("x=a b"));
        assert!(
            text.contains("#SBATCH --output=\"/exp 100%%/runs/grids/g/slurm/%A_%a.out\"\n"),
            "{text}"
        );
        assert!(text.contains("cd '/exp 100%'\n"), "{text}");
        assert!(
            text.contains(r"grid '/my grids/it'\''s.yaml' --cell"),
            "{text}"
        );
        assert!(text.ends_with(" --baseline 'x=a b'\n"), "{text}");
    }

    #[test]
    fn memory_and_time_formats() {
        for ok in ["4G", "500M", "16000", "0", "1T", "64K"] {
            assert!(is_memory(ok), "{ok}");
        }
        for bad in ["", "4GB", "4g", "G", "1.5G", "-1", "4 G"] {
            assert!(!is_memory(bad), "{bad}");
        }
        for ok in [
            "30",
            "90",
            "30:00",
            "01:00:00",
            "100:00:00",
            "2-00",
            "2-12:30",
            "1-00:00:00",
            "0",
        ] {
            assert!(is_time(ok), "{ok}");
        }
        for bad in [
            "", "1h", "1:2:3:4", "01:000", "2-", "-5", "2-100", "a-01", "01::00", "1-1-1",
        ] {
            assert!(!is_time(bad), "{bad}");
        }
    }

    #[test]
    fn the_schema_patterns_agree_with_the_checks() {
        let schema = serde_json::to_value(schemars::schema_for!(Slurm)).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let valid = |field: &str, value: &str| validator.is_valid(&json!({ field: value }));
        for value in ["4G", "500M", "16000", "4GB", "4g", "", "1.5G"] {
            assert_eq!(valid("mem", value), is_memory(value), "mem {value:?}");
        }
        for value in [
            "30",
            "30:00",
            "01:00:00",
            "2-00",
            "2-12:30",
            "1-00:00:00",
            "1h",
            "1:2:3:4",
            "2-100",
            "01:000",
            "",
        ] {
            assert_eq!(valid("time", value), is_time(value), "time {value:?}");
        }
    }

    #[test]
    fn problems_name_their_field() {
        let slurm = Slurm {
            cpus: 0,
            mem: Some("4GB".to_owned()),
            time: Some("1h".to_owned()),
            partition: Some("a b".to_owned()),
            account: Some("#x".to_owned()),
            concurrency: Some(0),
            extra: vec![
                "qos=long".to_owned(),
                "--mem=4G".to_owned(),
                "-t 10".to_owned(),
                "--array=1-3".to_owned(),
                "--time-min=5".to_owned(),
                "-N1".to_owned(),
            ],
            ..Slurm::default()
        };
        let problems = slurm.check();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "cpus",
                "concurrency",
                "mem",
                "time",
                "partition",
                "account",
                "extra[0]",
                "extra[1]",
                "extra[2]",
                "extra[3]"
            ]
        );
        assert!(problems[7].hint.contains("slurm.mem"), "{:?}", problems[7]);
        assert!(
            problems[8].message.contains("`--time`"),
            "{:?}",
            problems[8]
        );
        assert!(problems[9].hint.contains("one task per cell"));
        assert!(Slurm::default().check().is_empty());
    }
}
