//! `chorus plugins inspect | list | new` through the real binary, on real libraries: the
//! workspace's plugin crates built by cargo, and crates `new` writes, built by cargo too.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{chorus, library, plugin, target_dir, ROOT};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

/// A small federated loop (tests/federated.rs's shape) with `plugins:` to fill in.
const LOOP: &str = "name: plug
seed: 3
rounds: 4
plugins: PLUGINS
data: {kind: simulator, questions: 40, options: 4, features: 4, minority_shift: 2.5, groups: {count: 4, minorities: 1}}
stages:
  - {id: split, kind: split}
  - {id: reward_model, kind: reward_model, needs: [split], params: {epochs: 5}}
  - {id: policy, kind: policy, needs: [split], params: {rollout: distribution, hidden: 16}}
loop:
  eval_every: 2
  carry:
    - {from: policy, to: ppo}
  stages:
    - {id: rollout, kind: rollout, needs: [split, policy], params: {batch: 16}}
    - {id: score, kind: score, needs: [split, rollout, reward_model]}
    - {id: aggregate, kind: aggregate, needs: [score], params: {rule: cvar, q: 0.5}}
    - {id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}
    - {id: evaluate, kind: evaluate, needs: [split, ppo], params: {metrics: [atkinson]}}
";

/// The workspace's plugin libraries the tests use.
struct Plugins {
    cvar: PathBuf,
    atkinson: PathBuf,
}

fn plugins() -> Plugins {
    Plugins {
        cvar: plugin("chorus_cvar"),
        atkinson: plugin("chorus_atkinson"),
    }
}

/// Runs chorus, which must succeed; returns stdout.
fn ok(args: &[&str]) -> String {
    let o = chorus(args);
    assert!(
        o.status.success(),
        "chorus {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs chorus, which must fail as a user error (exit 2); returns stderr.
fn fails(args: &[&str]) -> String {
    let o = chorus(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(2),
        "chorus {args:?}: stdout {}\nstderr {err}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The line of `text` that starts with `start`, for column checks.
fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in\n{text}"))
}

#[test]
fn inspect_shows_what_a_library_offers() {
    let p = plugins();
    let out = ok(&["plugins", "inspect", s(&p.cvar)]);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        out.contains(&format!("library  chorus-cvar {version}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("path     {}\n", p.cvar.display())),
        "{out}"
    );
    let sha = line(&out, "sha256   ")["sha256   ".len()..].to_owned();
    assert_eq!(sha.len(), 64, "{out}");
    assert!(sha.chars().all(|c| c.is_ascii_hexdigit()), "{out}");
    assert!(out.contains("abi      1\n"), "{out}");
    assert!(out.contains("rules (1)\n"), "{out}");
    assert!(out.contains(&format!("  cvar {version}\n")), "{out}");
    assert!(out.contains("lower-tail CVaR"), "{out}");
    // The params schema, pretty and indented under its rule.
    assert!(out.contains("    params schema:\n      {\n"), "{out}");
    assert!(out.contains("          \"q\": {"), "{out}");
    assert!(out.contains("\"default\": 0.25"), "{out}");
    assert!(out.contains("metrics (0)\n  none\n"), "{out}");

    // A metric says which way is fairer.
    let out = ok(&["plugins", "inspect", s(&p.atkinson)]);
    assert!(out.contains("rules (0)\n  none\n"), "{out}");
    assert!(out.contains(&format!("  atkinson {version}\n")), "{out}");
    assert!(out.contains("    higher is fairer: no\n"), "{out}");
    assert!(out.contains("\"epsilon\""), "{out}");
}

#[test]
fn inspect_refuses_what_is_not_a_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("libnothing.so");
    let err = fails(&["plugins", "inspect", s(&missing)]);
    assert!(
        err.contains(s(&missing)) && err.contains("does not exist"),
        "{err}"
    );

    let text = tmp.path().join("notes.so");
    std::fs::write(&text, "not a library\n").unwrap();
    let err = fails(&["plugins", "inspect", s(&text)]);
    assert!(
        err.contains(s(&text)) && err.contains("not a shared library"),
        "{err}"
    );

    // A folder is not a library either.
    let err = fails(&["plugins", "inspect", s(tmp.path())]);
    assert!(err.contains("not a regular file"), "{err}");

    // Relative paths are the working directory's, never searched for: `libchorus_cvar.so`
    // alone is not found from a folder that does not hold it.
    let o = Command::new(BIN)
        .args(["plugins", "inspect", "libchorus_cvar.so"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("libchorus_cvar.so does not exist"));
    // ... and found from the folder that does.
    let p = plugins();
    let o = Command::new(BIN)
        .args(["plugins", "inspect"])
        .arg(p.cvar.file_name().unwrap())
        .current_dir(p.cvar.parent().unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

const BUILTIN_RULES: [&str; 8] = [
    "min",
    "max",
    "mean",
    "adaptive_alpha",
    "tilted",
    "power_mean",
    "nash",
    "group_dro",
];
const BUILTIN_METRICS: [&str; 6] = ["mean", "worst_group", "gap", "jain", "gini", "cv"];

/// The first cell of every row of the table that starts with header `first`.
fn column(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(first))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn list_shows_the_builtins() {
    let out = ok(&["plugins", "list"]);
    assert_eq!(column(&out, "RULE "), BUILTIN_RULES, "{out}");
    assert_eq!(column(&out, "METRIC "), BUILTIN_METRICS, "{out}");
    // Aligned: every row's version starts where the header's VERSION does.
    let at = line(&out, "RULE ").find("VERSION").unwrap();
    let version = env!("CARGO_PKG_VERSION");
    for rule in BUILTIN_RULES {
        let row = line(&out, &format!("{rule} "));
        assert_eq!(row[at..].split_whitespace().next(), Some(version), "{row}");
    }
    assert!(line(&out, "jain ").contains("higher"), "{out}");
    assert!(line(&out, "gini ").contains("lower"), "{out}");
    assert!(!out.contains("SOURCE"), "{out}");
}

#[test]
fn list_with_a_pipeline_shows_its_plugins_and_where_each_comes_from() {
    let p = plugins();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plug.yaml");
    let libs = format!("[{}, {}]", p.cvar.display(), p.atkinson.display());
    std::fs::write(&file, LOOP.replace("PLUGINS", &libs)).unwrap();
    // The pipeline is valid as written.
    ok(&["validate", s(&file)]);

    let out = ok(&["plugins", "list", s(&file)]);
    let rules = column(&out, "RULE ");
    assert_eq!(rules.len(), 9, "{out}");
    assert_eq!(rules[..8], BUILTIN_RULES, "{out}");
    assert_eq!(rules[8], "cvar", "{out}");
    let cvar = line(&out, "cvar ");
    assert!(
        cvar.contains(&format!("plugin {}", p.cvar.display())),
        "{cvar}"
    );
    assert!(line(&out, "min ").contains("built-in"), "{out}");
    let metrics = column(&out, "METRIC ");
    assert_eq!(metrics[..6], BUILTIN_METRICS, "{out}");
    assert_eq!(metrics[6..], ["atkinson"], "{out}");
    assert!(line(&out, "atkinson ").contains(&format!("plugin {}", p.atkinson.display())));
    // One line per library: path, the first 12 hex of its SHA-256, name and version.
    let inspected = ok(&["plugins", "inspect", s(&p.cvar)]);
    let sha = &line(&inspected, "sha256   ")["sha256   ".len()..];
    let lib = line(&out, s(&p.cvar));
    let cells: Vec<&str> = lib.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            s(&p.cvar),
            &sha[..12],
            "chorus-cvar",
            env!("CARGO_PKG_VERSION")
        ],
        "{out}"
    );
    assert_eq!(column(&out, "LIBRARY ").len(), 2, "{out}");

    // Overrides apply before the pipeline is loaded; a bad one is the usual error.
    let err = fails(&["plugins", "list", s(&file), "-s", "aggregate.rule=nope"]);
    assert!(err.contains("nope"), "{err}");
    // `-s` needs a pipeline.
    let o = chorus(&["plugins", "list", "-s", "seed=1"]);
    assert!(!o.status.success());
    // A pipeline whose plugin is missing fails as `validate` does, naming the library.
    let gone = tmp.path().join("libgone.so");
    std::fs::write(
        &file,
        LOOP.replace("PLUGINS", &format!("[{}]", gone.display())),
    )
    .unwrap();
    let err = fails(&["plugins", "list", s(&file)]);
    assert!(err.contains(s(&gone)), "{err}");
}

/// `cargo build` in a crate `new` wrote, into the shared target folder (fast: the
/// chorus-plugin crate is already built there); returns the library's path.
fn build(crate_dir: &Path, lib: &str) -> PathBuf {
    let target = target_dir();
    let o = Command::new(env!("CARGO"))
        .arg("build")
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cargo build in {} failed:\n{}",
        crate_dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let path = library(&target, lib);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

#[test]
fn new_rule_crate_builds_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&["plugins", "new", "my-rule", "--dir", s(tmp.path())]);
    let dir = tmp.path().join("my-rule");
    for file in [
        "Cargo.toml",
        "README.md",
        ".gitignore",
        "src/lib.rs",
        "src/rule.rs",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    assert!(!dir.join("src/metric.rs").exists());
    // The next steps: where to go, what to build, what to write in a pipeline.
    assert!(out.contains(&format!("cd {}", dir.display())), "{out}");
    assert!(out.contains("cargo build --release"), "{out}");
    assert!(out.contains("plugins: ["), "{out}");
    assert!(out.contains("params: {rule: my_rule}"), "{out}");
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let api = Path::new(ROOT).join("plugins/api").canonicalize().unwrap();
    assert!(
        cargo.contains(&format!(
            "chorus-plugin = {{ path = \"{}\" }}",
            api.display()
        )),
        "{cargo}"
    );

    let lib = build(&dir, "my_rule");
    let out = ok(&["plugins", "inspect", s(&lib)]);
    assert!(out.contains("library  my-rule 0.1.0\n"), "{out}");
    assert!(out.contains("rules (1)\n  my_rule 0.1.0\n"), "{out}");
    assert!(out.contains("\"temperature\""), "{out}");
    assert!(out.contains("metrics (0)\n"), "{out}");

    // The generated rule passes the template's own unit tests.
    let o = Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 passed"));

    // A pipeline can name it beside the workspace's own plugins.
    let file = tmp.path().join("plug.yaml");
    let text = LOOP
        .replace("PLUGINS", &format!("[{}]", lib.display()))
        .replace("{rule: cvar, q: 0.5}", "{rule: my_rule, temperature: 0.2}")
        .replace("params: {metrics: [atkinson]}", "params: {}");
    std::fs::write(&file, text).unwrap();
    let out = ok(&["plugins", "list", s(&file)]);
    assert!(
        line(&out, "my_rule ").contains(&format!("plugin {}", lib.display())),
        "{out}"
    );
}

#[test]
fn new_metric_crate_builds_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&[
        "plugins",
        "new",
        "my-metric",
        "--metric",
        "--dir",
        s(tmp.path()),
    ]);
    let dir = tmp.path().join("my-metric");
    assert!(dir.join("src/metric.rs").is_file());
    assert!(!dir.join("src/rule.rs").exists());
    assert!(out.contains("params: {metrics: [my_metric]}"), "{out}");

    let lib = build(&dir, "my_metric");
    let out = ok(&["plugins", "inspect", s(&lib)]);
    assert!(out.contains("library  my-metric 0.1.0\n"), "{out}");
    assert!(out.contains("rules (0)\n  none\n"), "{out}");
    assert!(out.contains("metrics (1)\n  my_metric 0.1.0\n"), "{out}");
    assert!(out.contains("    higher is fairer: yes\n"), "{out}");
}

#[test]
fn new_refuses_bad_names_and_used_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(tmp.path());
    for bad in ["My-Rule", "1rule", "my rule", "_x", "a.b"] {
        let err = fails(&["plugins", "new", bad, "--dir", dir]);
        assert!(err.contains("not a plugin name"), "{bad}: {err}");
        assert!(err.contains("hint:"), "{err}");
    }
    let err = fails(&["plugins", "new", "min", "--dir", dir]);
    assert!(err.contains("built-in aggregation rule"), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // An existing folder that is not empty is left alone.
    let used = tmp.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("keep.txt"), "mine").unwrap();
    let err = fails(&["plugins", "new", "used", "--dir", dir]);
    assert!(
        err.contains(s(&used)) && err.contains("not an empty folder"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&used).unwrap().collect();
    assert_eq!(left.len(), 1);
    // An empty one is used.
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    ok(&["plugins", "new", "empty", "--dir", dir]);
    assert!(tmp.path().join("empty/src/rule.rs").is_file());

    // An --api that is not plugins/api.
    let err = fails(&["plugins", "new", "other", "--dir", dir, "--api", dir]);
    assert!(
        err.contains("not the chorus-plugin crate") && err.contains("--api"),
        "{err}"
    );
    assert!(!tmp.path().join("other").exists());
}
