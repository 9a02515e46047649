//! Inputs that cannot become a dataset: each error names the file (with line:column where
//! there is one) and says how to fix it.
use std::path::{Path, PathBuf};

use chorus_surveys::spec::{
    GlobalOpinionQaSpec, WvsSpec, DEFAULT_MAX_EXCESS, DEFAULT_MIN_ANSWERED,
};
use chorus_surveys::spec_file::{self, SpecFile};
use chorus_surveys::DataSpec;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn wvs(groups: &[(&str, &str)], text_from: &str, eval_only: &[&str]) -> DataSpec {
    DataSpec::WvsJson(WvsSpec {
        groups: groups
            .iter()
            .map(|(g, f)| (g.to_string(), f.to_string()))
            .collect(),
        text_from: text_from.into(),
        eval_only: eval_only.iter().map(|s| s.to_string()).collect(),
        min_answered: DEFAULT_MIN_ANSWERED,
        max_excess: DEFAULT_MAX_EXCESS,
    })
}

fn error(spec: &DataSpec, dir: &Path) -> String {
    spec.load(dir).expect_err("must fail").to_string()
}

fn assert_has(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` not in:\n{text}");
    }
}

#[test]
fn a_file_that_is_not_json_is_named_with_line_and_column() {
    let dir = fixtures().join("wvs/broken");
    let e = error(&wvs(&[("A", "not_json.json")], "A", &[]), &dir);
    assert_has(
        &e,
        &[
            "not_json.json:3:49: not valid JSON: trailing comma",
            "hint: a WVS file is one JSON object",
        ],
    );
}

#[test]
fn a_file_without_examples_is_named() {
    let dir = fixtures().join("wvs/broken");
    let e = error(&wvs(&[("A", "no_examples.json")], "A", &[]), &dir);
    assert_has(
        &e,
        &[
            "no_examples.json: no `examples` array",
            "hint: a WVS file is one JSON object whose `examples` lists the questions",
        ],
    );
}

#[test]
fn a_missing_group_file_names_the_group_and_the_path() {
    let dir = fixtures().join("wvs/rules");
    let e = error(&wvs(&[("A", "A.json"), ("Z", "Z.json")], "A", &[]), &dir);
    assert_has(
        &e,
        &[
            "group `Z`: cannot read",
            "rules/Z.json",
            "hint: paths in a data spec are relative to the spec file's folder",
        ],
    );
}

#[test]
fn groups_sharing_no_question_id_are_an_error_naming_both_files() {
    let dir = fixtures().join("wvs/disjoint");
    let e = error(&wvs(&[("X", "X.json"), ("Y", "Y.json")], "X", &[]), &dir);
    assert_has(
        &e,
        &[
            "no question is shared by all groups",
            "X.json has 2 ids (Q1, Q2…)",
            "Y.json has 2 ids (Q7, Q8…)",
            "hint: the files may come from different surveys",
        ],
    );
}

#[test]
fn text_from_must_be_a_group() {
    let e = error(&wvs(&[("A", "A.json")], "US", &[]), &fixtures());
    assert_has(
        &e,
        &[
            "`text_from: US` is not among the groups (A)",
            "hint: set `text_from`",
        ],
    );
}

#[test]
fn eval_only_must_name_groups_and_leave_one_to_train() {
    let e = error(
        &wvs(&[("A", "A.json"), ("B", "B.json")], "A", &["JP"]),
        &fixtures(),
    );
    assert_has(
        &e,
        &["`eval_only` names `JP`, which is not among the groups (A, B)"],
    );
    let e = error(
        &wvs(&[("A", "A.json"), ("B", "B.json")], "A", &["A", "B"]),
        &fixtures(),
    );
    assert_has(
        &e,
        &["every group is `eval_only`", "hint: leave at least one"],
    );
}

#[test]
fn a_missing_csv_column_is_named_with_the_header_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("g.csv"),
        "question,answers,options\nQ?,\"{}\",\"[]\"\n",
    )
    .unwrap();
    let spec = DataSpec::GlobalOpinionQa(GlobalOpinionQaSpec {
        path: "g.csv".into(),
        groups: vec!["Britain".into()],
        eval_only: vec![],
        min_answered: DEFAULT_MIN_ANSWERED,
        max_excess: DEFAULT_MAX_EXCESS,
    });
    let e = error(&spec, dir.path());
    assert_has(
        &e,
        &[
            "g.csv: no `selections` column; the header has: question, answers, options",
            "hint: the GlobalOpinionQA CSV has the columns",
        ],
    );
}

fn spec_file_error(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.yaml");
    std::fs::write(&path, yaml).unwrap();
    let e = spec_file::read(&path).expect_err("must fail").to_string();
    assert!(e.contains("data.yaml"), "the file is not named:\n{e}");
    e
}

#[test]
fn spec_files_report_yaml_errors_with_line_and_column() {
    let e = spec_file_error("kind: wvs_json\ngroups: {US: a.json\n");
    assert_has(&e, &["data.yaml:3:", "YAML syntax error"]);
    let e = spec_file_error("kind: wvs_json\nkind: wvs_json\n");
    assert_has(
        &e,
        &[
            "data.yaml:2:7: duplicate key `kind` in `the top level`",
            "remove one of the two entries",
        ],
    );
}

#[test]
fn spec_files_report_unknown_kinds_and_fields_with_where() {
    let e = spec_file_error("kind: wvs\n");
    assert_has(
        &e,
        &["unknown variant `wvs`, expected `wvs_json` or `global_opinion_qa`"],
    );
    let e = spec_file_error(
        "name: p\ndata:\n  kind: global_opinion_qa\n  path: g.csv\n  groups: [A]\n  colour: red\n",
    );
    assert_has(
        &e,
        &[
            "unknown field `colour`",
            "hint: a data spec is `kind: wvs_json` with groups",
        ],
    );
    let e = spec_file_error("name: p\nseed: 1\n");
    assert_has(
        &e,
        &["neither a data spec (a top-level `kind:`) nor a pipeline with a `data:` mapping"],
    );
    let e = spec_file_error(
        "kind: wvs_json\ngroups: {US: US.json}\ntext_from: US\nsum_tolerance: 0.05\n",
    );
    assert_has(
        &e,
        &[
            "unknown field `sum_tolerance`",
            "with groups, text_from, eval_only, min_answered, max_excess",
        ],
    );
}

#[test]
fn the_bounds_on_a_share_sum_are_checked_and_name_their_field() {
    let bad = [
        ("min_answered: 0", "`min_answered: 0` is outside 0 < m ≤ 1"),
        (
            "min_answered: 1.2",
            "`min_answered: 1.2` is outside 0 < m ≤ 1",
        ),
        (
            "min_answered: -0.5",
            "`min_answered: -0.5` is outside 0 < m ≤ 1",
        ),
        ("max_excess: 1", "`max_excess: 1` is outside 0 ≤ e < 1"),
        (
            "max_excess: -0.01",
            "`max_excess: -0.01` is outside 0 ≤ e < 1",
        ),
    ];
    for (line, want) in bad {
        let e = spec_file_error(&format!(
            "kind: global_opinion_qa\npath: g.csv\ngroups: [A]\n{line}\n"
        ));
        assert_has(&e, &[want, "hint: use "]);
    }
    // The ends that are allowed, and the defaults when the fields are left out.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.yaml");
    std::fs::write(
        &path,
        "kind: wvs_json\ngroups: {US: US.json}\ntext_from: US\nmin_answered: 1\nmax_excess: 0\n",
    )
    .unwrap();
    let SpecFile::Data(spec) = spec_file::read(&path).unwrap() else {
        panic!("a data spec")
    };
    assert_eq!(spec.sum_bounds(), (1.0, 0.0));
    std::fs::write(
        &path,
        "kind: wvs_json\ngroups: {US: US.json}\ntext_from: US\n",
    )
    .unwrap();
    let SpecFile::Data(spec) = spec_file::read(&path).unwrap() else {
        panic!("a data spec")
    };
    assert_eq!(spec.sum_bounds(), (0.5, 0.05));
}

#[test]
fn spec_files_hold_a_spec_alone_or_as_a_pipeline_data_section() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("alone.yaml");
    std::fs::write(
        &alone,
        "kind: global_opinion_qa\npath: g.csv\ngroups: [Britain, Germany]\neval_only: [Germany]\n",
    )
    .unwrap();
    let want = DataSpec::GlobalOpinionQa(GlobalOpinionQaSpec {
        path: "g.csv".into(),
        groups: vec!["Britain".into(), "Germany".into()],
        eval_only: vec!["Germany".into()],
        min_answered: DEFAULT_MIN_ANSWERED,
        max_excess: DEFAULT_MAX_EXCESS,
    });
    assert_eq!(
        spec_file::read(&alone).unwrap(),
        SpecFile::Data(want.clone())
    );
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "name: p\nseed: 1\ndata:\n  kind: global_opinion_qa\n  path: g.csv\n  \
         groups: [Britain, Germany]\n  eval_only: [Germany]\nstages: []\n",
    )
    .unwrap();
    assert_eq!(spec_file::read(&pipeline).unwrap(), SpecFile::Data(want));
    // Today's pipelines name the simulator as a key; a spec would name it as a kind.
    for text in [
        "name: p\ndata:\n  simulator: {questions: 10}\n",
        "name: p\ndata: {kind: simulator, questions: 10}\n",
    ] {
        std::fs::write(&pipeline, text).unwrap();
        assert_eq!(
            spec_file::read(&pipeline).unwrap(),
            SpecFile::Synthetic("simulator".into())
        );
    }
}
