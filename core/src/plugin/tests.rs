//! Loads real foreign code: `plugins/c-test/*.c`, compiled per test with the system C compiler
//! (`$CC`, else `cc`) into a temporary folder. One C file covers every broken promise through
//! `-D` macros, so each check of the host is exercised against the failure it guards.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chorus_plugin::{AggregateError, RewardMatrix};
use serde_json::{json, Map, Value};
use tempfile::TempDir;

use super::{schema, Library, PluginError};

/// A library built for one test; the folder goes when the test ends.
struct Built {
    _dir: TempDir,
    path: PathBuf,
}

/// Compiles `plugins/c-test/<source>` with `flags` into `lib<stem>.so` (or .dylib).
fn compile(source: &str, flags: &[&str]) -> Built {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let stem = source.trim_end_matches(".c");
    let path = dir.path().join(format!(
        "{}{stem}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-std=c11", "-I"])
        .arg(repo.join("plugins/api/include"))
        .args(flags)
        .arg(repo.join("plugins/c-test").join(source))
        .arg("-o")
        .arg(&path)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(status.success(), "{cc} failed on {source} {flags:?}");
    Built { _dir: dir, path }
}

fn c_mean(flags: &[&str]) -> Built {
    compile("c_mean.c", flags)
}

fn open(built: &Built) -> Arc<Library> {
    Library::open(&built.path).unwrap_or_else(|e| panic!("{e}"))
}

fn open_err(path: &Path) -> (PluginError, String) {
    let err = Library::open(path).expect_err("the library was accepted");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    (err, message)
}

/// Every message about a rule or metric names it and its library.
fn assert_names(message: &str, who: &str, path: &Path) {
    let want = format!("plugin {who} ({})", path.display());
    assert!(
        message.contains(&want),
        "{message:?} does not contain {want:?}"
    );
}

fn no_params() -> Map<String, Value> {
    Map::new()
}

/// 3 groups × 4 rollouts whose column means are exact: 1, 4, 7, 10.
fn matrix() -> RewardMatrix<'static> {
    let rows = [
        [0.0, 3.0, 6.0, 9.0],
        [1.0, 4.0, 7.0, 10.0],
        [2.0, 5.0, 8.0, 11.0],
    ];
    RewardMatrix::new(3, 4, rows.concat()).unwrap()
}

#[test]
fn opens_a_c_plugin() {
    let built = c_mean(&[]);
    let lib = open(&built);
    assert_eq!(lib.path(), built.path);
    assert_eq!((lib.name(), lib.version()), ("c-test", "0.1.0"));
    assert!(lib.metrics().is_empty());
    let [rule] = lib.rules() else {
        panic!("{:?}", lib.rules())
    };
    assert_eq!(
        (rule.name.as_str(), rule.version.as_str()),
        ("c_mean", "0.1.0")
    );
    assert!(rule.description.contains("mean"), "{}", rule.description);
    assert_eq!(
        rule.schema,
        json!({"type": "object", "additionalProperties": false})
    );
    assert_eq!(rule.higher_is_fairer, None);

    let sha = lib.sha256();
    assert!(
        sha.len() == 64
            && sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    fn shared<T: Send + Sync>() {}
    shared::<Library>();

    let sum = Command::new("sha256sum").arg(&built.path).output().unwrap();
    let sum = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(sum.split_whitespace().next(), Some(sha));
}

#[test]
fn c_mean_aggregates_from_any_thread() {
    let built = c_mean(&[]);
    let rule = open(&built)
        .build_rule(0, &no_params(), &[0.5, 0.25, 0.25])
        .unwrap();
    let mut state = Value::Null;
    let out = rule.aggregate(&matrix(), 1, &mut state).unwrap();
    assert_eq!(out.rewards, [1.0, 4.0, 7.0, 10.0]);
    assert_eq!(out.weights, [1.0 / 3.0; 3]);
    assert_eq!(state, Value::Null);

    // One instance shared by threads: the host serialises the calls, as the ABI asks.
    std::thread::scope(|s| {
        for round in 2..6 {
            let rule = &rule;
            s.spawn(move || {
                let out = rule.aggregate(&matrix(), round, &mut Value::Null).unwrap();
                assert_eq!(out.rewards, [1.0, 4.0, 7.0, 10.0]);
            });
        }
    });

    let two = RewardMatrix::new(2, 1, vec![0.0, 1.0]).unwrap();
    let err = rule.aggregate(&two, 6, &mut state).unwrap_err();
    assert_names(&err.to_string(), "rule `c_mean`", &built.path);
    assert!(err.to_string().contains("built for 3 groups"), "{err}");
}

#[test]
fn params_other_than_empty_are_refused_by_create() {
    let built = c_mean(&[]);
    let lib = open(&built);
    let params = json!({"q": 1}).as_object().unwrap().clone();
    let err = lib.build_rule(0, &params, &[1.0]).unwrap_err();
    assert!(
        matches!(err, PluginError::Create { kind: "rule", .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert_names(&message, "rule `c_mean`", &built.path);
    assert!(
        message.contains(r#"c_mean takes no params, got {"q":1}"#),
        "{message}"
    );
}

#[test]
fn an_unknown_knob_is_reported_at_its_path() {
    let built = c_mean(&[]);
    let lib = open(&built);
    assert_eq!(lib.check_rule_params(0, &no_params()), []);
    let params = json!({"qq": 1}).as_object().unwrap().clone();
    assert_eq!(
        lib.check_rule_params(0, &params),
        [(
            "qq".to_owned(),
            "unknown knob `qq`; this takes no knobs here".to_owned()
        )]
    );
}

#[test]
fn params_problems_name_their_path_and_the_nearest_knob() {
    let (schema, validator) = schema::compile(
        r#"{"type": "object", "additionalProperties": false, "properties": {
              "q": {"type": "number"},
              "inner": {"type": "object", "additionalProperties": false,
                        "properties": {"alpha": {}, "beta": {}}},
              "list": {"type": "array", "items": {"type": "object",
                       "properties": {"c": {"minimum": 0}}}}}}"#,
    )
    .unwrap();
    let params = json!({"qq": 1, "q": "x", "inner": {"alpah": 2, "zzzzzz": 3},
                        "list": [{"c": 1}, {"c": -1}]});
    let mut problems = schema::check(&validator, &schema, params.as_object().unwrap());
    problems.sort();
    let at: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        at,
        ["inner.alpah", "inner.zzzzzz", "list[1].c", "q", "qq"],
        "{problems:?}"
    );
    assert_eq!(problems[0].1, "unknown knob `alpah`; did you mean `alpha`?");
    assert_eq!(
        problems[1].1,
        "unknown knob `zzzzzz`; the knobs are alpha, beta"
    );
    assert!(problems[2].1.contains("minimum"), "{}", problems[2].1);
    assert!(problems[3].1.contains("number"), "{}", problems[3].1);
    assert_eq!(problems[4].1, "unknown knob `qq`; did you mean `q`?");
}

#[test]
fn another_abi_version_is_refused() {
    let built = c_mean(&["-DCHORUS_TEST_ABI=99"]);
    let (err, message) = open_err(&built.path);
    assert!(
        matches!(
            err,
            PluginError::AbiVersion {
                found: 99,
                expected: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        message.contains("version 99") && message.contains("version 1;"),
        "{message}"
    );
    assert!(
        message.contains("rebuild the plugin against this chorus's plugins/api"),
        "{message}"
    );
}

#[test]
fn a_library_without_chorus_symbols_is_refused() {
    let built = compile("no_symbols.c", &[]);
    let (err, message) = open_err(&built.path);
    assert!(matches!(err, PluginError::NoSymbols { .. }), "{err:?}");
    assert!(message.contains("`chorus_plugin_abi_version`"), "{message}");
    assert!(message.contains("chorus_plugin::export!"), "{message}");
    assert!(message.contains("chorus_plugin.h"), "{message}");
}

#[test]
fn a_text_file_is_not_a_shared_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libfake.so");
    std::fs::write(&path, "not a library\n").unwrap();
    let (err, message) = open_err(&path);
    assert!(matches!(err, PluginError::NotALibrary { .. }), "{err:?}");
    assert!(message.contains("is not a shared library"), "{message}");
}

#[test]
fn a_missing_path_or_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (err, _) = open_err(&dir.path().join("libnothing.so"));
    assert!(matches!(err, PluginError::Missing { .. }), "{err:?}");
    let (err, message) = open_err(dir.path());
    assert!(matches!(err, PluginError::NotAFile { .. }), "{err:?}");
    assert!(message.contains("not a regular file"), "{message}");
}

#[test]
fn broken_descriptors_are_refused() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["-DCHORUS_TEST_FAULT=FAULT_NO_DESCRIPTOR"],
            "chorus_plugin_descriptor() returned NULL",
        ),
        (
            &["-DCHORUS_TEST_FAULT=FAULT_NULL_FN"],
            "rule `c_mean`'s aggregate function is NULL",
        ),
        (
            &["-DCHORUS_TEST_FAULT=FAULT_SCHEMA"],
            "rule `c_mean`'s params_schema is not a valid JSON Schema",
        ),
        (
            &["-DCHORUS_TEST_FAULT=FAULT_DUPLICATE"],
            "two rules are named `c_mean`",
        ),
        (
            &[r#"-DCHORUS_TEST_RULE_NAME="c-mean""#],
            r#"rule 0 is named "c-mean""#,
        ),
    ];
    for (flags, problem) in cases {
        let built = c_mean(flags);
        let (err, message) = open_err(&built.path);
        assert!(
            matches!(err, PluginError::Descriptor { .. }),
            "{flags:?}: {err:?}"
        );
        assert!(message.contains(problem), "{flags:?}: {message}");
        assert!(message.contains("report it to its authors"), "{message}");
    }
}

#[test]
fn a_rule_may_take_a_builtin_name_for_the_registry_to_refuse() {
    let lib = open(&c_mean(&[r#"-DCHORUS_TEST_RULE_NAME="mean""#]));
    assert_eq!(lib.rules()[0].name, "mean");
}

#[test]
fn broken_outputs_are_errors_that_keep_the_state() {
    let cases = [
        ("FAULT_NAN", "returned NaN as the reward of rollout 3"),
        ("FAULT_SHORT", "returned 3 rewards for 4 rollouts"),
        ("FAULT_WEIGHTS", "returned weights summing to 3, not 1"),
        ("FAULT_STATE", "returned a state that is not JSON"),
        ("FAULT_ERROR", ": refused on purpose"),
        ("FAULT_PANIC", "panicked: boom; this is a bug in the plugin"),
    ];
    for (fault, problem) in cases {
        let built = c_mean(&[&format!("-DCHORUS_TEST_FAULT={fault}")]);
        let rule = open(&built).build_rule(0, &no_params(), &[]).unwrap();
        let mut state = json!({"keep": [1, 2]});
        let err = rule.aggregate(&matrix(), 1, &mut state).unwrap_err();
        assert!(matches!(err, AggregateError::Other(_)), "{fault}: {err:?}");
        let message = err.to_string();
        assert_names(&message, "rule `c_mean`", &built.path);
        assert!(message.contains(problem), "{fault}: {message}");
        assert_eq!(state, json!({"keep": [1, 2]}), "{fault}");
    }
}

#[test]
fn a_stateful_rule_gets_its_state_back_and_may_refuse_another() {
    let built = c_mean(&["-DCHORUS_TEST_STATEFUL"]);
    let rule = open(&built).build_rule(0, &no_params(), &[]).unwrap();
    let mut state = Value::Null;
    rule.aggregate(&matrix(), 1, &mut state).unwrap();
    assert_eq!(state, json!({"rounds": 1}));
    rule.aggregate(&matrix(), 2, &mut state).unwrap();
    assert_eq!(state, json!({"rounds": 2}));

    let mut other = json!({"alpha": 0.5});
    let err = rule.aggregate(&matrix(), 3, &mut other).unwrap_err();
    assert!(matches!(err, AggregateError::State(_)), "{err:?}");
    assert_names(&err.to_string(), "rule `c_mean`", &built.path);
    assert!(err.to_string().contains("expected null or"), "{err}");
    assert_eq!(other, json!({"alpha": 0.5}));
}

#[test]
fn a_c_metric_computes_and_its_faults_are_errors() {
    let built = c_mean(&["-DCHORUS_TEST_METRIC"]);
    let lib = open(&built);
    let [metric] = lib.metrics() else {
        panic!("{:?}", lib.metrics())
    };
    assert_eq!(
        (metric.name.as_str(), metric.higher_is_fairer),
        ("c_range", Some(false))
    );
    assert_eq!(lib.check_metric_params(0, &no_params()), []);
    let m = lib.build_metric(0, &no_params()).unwrap();
    assert_eq!(m.compute(&[0.25, 0.75, 0.5]).unwrap(), 0.5);

    let params = json!({"p": 2}).as_object().unwrap().clone();
    let err = lib.build_metric(0, &params).unwrap_err();
    assert_names(&err.to_string(), "metric `c_range`", &built.path);

    for (fault, problem) in [
        ("FAULT_NAN", "returned NaN for the scores [0.25, 0.75]"),
        ("FAULT_ERROR", ": refused on purpose"),
        ("FAULT_PANIC", "panicked: boom"),
    ] {
        let flags = [
            "-DCHORUS_TEST_METRIC",
            &format!("-DCHORUS_TEST_FAULT={fault}"),
        ];
        let built = c_mean(&flags);
        let m = open(&built).build_metric(0, &no_params()).unwrap();
        let message = m.compute(&[0.25, 0.75]).unwrap_err().to_string();
        assert_names(&message, "metric `c_range`", &built.path);
        assert!(message.contains(problem), "{fault}: {message}");
    }
}

#[test]
fn instances_are_destroyed_and_the_library_outlives_them() {
    let built = c_mean(&["-DCHORUS_TEST_METRIC"]);
    let lib = open(&built);
    // SAFETY: the same file, already loaded: this only takes another reference to it, and
    // `chorus_test_live` is `int (void)` in c_mean.c.
    let probe = unsafe { libloading::Library::new(&built.path) }.unwrap();
    // SAFETY: `probe` outlives every call below.
    let live = *unsafe { probe.get::<unsafe extern "C" fn() -> i32>(b"chorus_test_live") }.unwrap();
    // SAFETY: it takes nothing and returns a counter.
    let live = || unsafe { live() };
    let rule = lib.build_rule(0, &no_params(), &[]).unwrap();
    let metric = lib.build_metric(0, &no_params()).unwrap();
    assert_eq!(live(), 2);
    drop(lib);
    assert_eq!(
        rule.aggregate(&matrix(), 1, &mut Value::Null)
            .unwrap()
            .rewards[0],
        1.0
    );
    drop(rule);
    assert_eq!(live(), 1);
    drop(metric);
    assert_eq!(live(), 0);
}
