//! `chorus data inspect` through the real binary: on the shared WVS files it prints the same
//! report the library builds; pipelines work as spec files; bad inputs exit 2 naming the file.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chorus_surveys::spec_file::{self, SpecFile};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

fn wvs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/wvs7")
}

fn inspect(file: &Path) -> Output {
    Command::new(BIN)
        .args(["data", "inspect"])
        .arg(file)
        .output()
        .unwrap()
}

/// A spec over the shared US, CN and JP files, written into `dir`.
fn write_wvs_spec(dir: &Path, name: &str, body_prefix: &str, indent: &str) -> PathBuf {
    let wvs = wvs_dir();
    let file = |g: &str| wvs.join(format!("{g}.json")).display().to_string();
    let text = format!(
        "{body_prefix}{indent}kind: wvs_json\n{indent}groups:\n{indent}  US: {}\n{indent}  CN: {}\n\
         {indent}  JP: {}\n{indent}text_from: US\n{indent}eval_only: [JP]\n",
        file("US"),
        file("CN"),
        file("JP")
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The library's report for the spec in `path`, as the binary should print it.
fn library_report(path: &Path) -> chorus_surveys::Report {
    let SpecFile::Data(spec) = spec_file::read(path).unwrap() else {
        panic!("not a data spec")
    };
    spec.load(path.parent().unwrap()).unwrap().report
}

fn stdout_ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn the_shared_wvs_files_print_the_library_counts_per_group() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_wvs_spec(tmp.path(), "wvs.yaml", "", "");
    let printed = stdout_ok(&inspect(&spec));
    let report = library_report(&spec);
    assert_eq!(printed, report.to_string());
    for g in &report.groups {
        let name = if g.eval_only {
            format!("{}*", g.name)
        } else {
            g.name.clone()
        };
        let want = [
            name,
            g.found.to_string(),
            g.kept.to_string(),
            g.renormalised.to_string(),
            g.dropped_total().to_string(),
        ]
        .join(" ");
        let row = printed
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .find(|l| l.starts_with(&format!("{} ", want.split(' ').next().unwrap())))
            .unwrap_or_else(|| panic!("no row for {} in:\n{printed}", g.name));
        assert_eq!(row, want, "in:\n{printed}");
    }
    // The per-group counts the independent check found (see surveys/tests/real_wvs.rs).
    let counts: Vec<_> = report
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.found, g.kept, g.dropped_total()))
        .collect();
    assert_eq!(
        counts,
        [
            ("CN", 103, 54, 49),
            ("JP", 103, 54, 49),
            ("US", 104, 54, 50)
        ]
    );
    // Renormalised over substantive answers (sum below 0.95) apart from rounding corrections.
    let squeezed: Vec<String> = printed
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for line in [
        "CN JP* US",
        "over_substantive_answers 2 38 0 sum below 0.95: divided among those who chose a listed option",
        "rounding 52 15 54 sum within 0.05 of 1",
    ] {
        assert!(squeezed.iter().any(|l| l == line), "`{line}` not in:\n{printed}");
    }
}

#[test]
fn a_pipeline_file_is_read_through_its_data_section() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_wvs_spec(
        tmp.path(),
        "pipeline.yaml",
        "name: p\nseed: 1\ndata:\n",
        "  ",
    );
    let printed = stdout_ok(&inspect(&spec));
    assert!(printed.starts_with("wvs_json: 54 questions kept for 3 groups"));
    // Today's pipelines use the simulator: nothing to read, said so, exit 0.
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let printed = stdout_ok(&inspect(&quickstart));
    assert!(
        printed.contains("quickstart.yaml: data is `simulator`") && printed.contains("no file"),
        "{printed}"
    );
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (tmp.path().join("absent.yaml"), vec!["absent.yaml"]),
        (
            write("syntax.yaml", "kind: wvs_json\ngroups: [US\n"),
            vec!["syntax.yaml:3:", "YAML syntax error"],
        ),
        (
            write("kind.yaml", "kind: wvs_jsonl\n"),
            vec!["kind.yaml", "unknown variant `wvs_jsonl`"],
        ),
        (
            write(
                "missing.yaml",
                "kind: wvs_json\ngroups: {US: nowhere/US.json}\ntext_from: US\n",
            ),
            vec!["group `US`: cannot read", "nowhere/US.json", "hint:"],
        ),
        (
            write(
                "text_from.yaml",
                "kind: wvs_json\ngroups: {US: US.json}\ntext_from: CN\n",
            ),
            vec![
                "text_from.yaml",
                "`text_from: CN` is not among the groups (US)",
            ],
        ),
    ];
    for (file, expected) in cases {
        let o = inspect(&file);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(o.stdout.is_empty(), "{}", file.display());
        for e in expected {
            assert!(stderr.contains(e), "`{e}` not in:\n{stderr}");
        }
    }
}
