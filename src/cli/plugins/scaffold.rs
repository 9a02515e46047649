//! `new`: a fresh plugin crate from the template in examples/aggregator-plugin.
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use chorus_core::registry::Registry;

use super::{emit, NewArgs};

/// The template, as it is in this checkout when chorus was built.
const TEMPLATE_CARGO: &str = include_str!("../../../examples/aggregator-plugin/Cargo.toml");
const TEMPLATE_README: &str = include_str!("../../../examples/aggregator-plugin/README.md");
const TEMPLATE_GITIGNORE: &str = include_str!("../../../examples/aggregator-plugin/.gitignore");
const TEMPLATE_RULE: &str = include_str!("../../../examples/aggregator-plugin/src/rule.rs");
const TEMPLATE_METRIC: &str = include_str!("../../../examples/aggregator-plugin/src/metric.rs");
/// plugins/api of the checkout this chorus was built from.
const DEFAULT_API: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/api");

/// Identifiers a generated type must not take: what the template's files import or name
/// (`Softmin` would shadow them), `Self`, and the prelude's types and traits.
const TAKEN_TYPES: &[&str] = &[
    "AggregateError",
    "Aggregated",
    "Aggregator",
    "Map",
    "Metric",
    "MetricError",
    "PluginMetric",
    "PluginRule",
    "RewardMatrix",
    "Value",
    "Self",
    "AsMut",
    "AsRef",
    "Box",
    "Clone",
    "Copy",
    "Debug",
    "Default",
    "Drop",
    "Eq",
    "Err",
    "Extend",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "FromIterator",
    "Into",
    "IntoIterator",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "TryFrom",
    "TryInto",
    "Unpin",
    "Vec",
];

/// Library names cargo or rustc would refuse or confuse: Rust keywords, the standard crates,
/// and the crate every plugin depends on.
const TAKEN_LIBS: &[&str] = &[
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "chorus_plugin",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rule,
    Metric,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Rule => "rule",
            Kind::Metric => "metric",
        }
    }

    fn long(self) -> &'static str {
        match self {
            Kind::Rule => "aggregation rule",
            Kind::Metric => "fairness metric",
        }
    }
}

/// Every name of a new crate, derived from NAME.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names {
    kind: Kind,
    /// The package: NAME as given.
    package: String,
    /// The library: NAME with `-` → `_` (`libNAME.so`).
    lib: String,
    /// What pipelines write in `rule:` or `metrics:`; the same as `lib`.
    item: String,
    /// The Rust type: NAME in CamelCase.
    type_name: String,
}

impl Names {
    /// Checks NAME and derives the rest; an error says what to write instead.
    fn new(name: &str, kind: Kind) -> anyhow::Result<Names> {
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !well_formed {
            bail!(
                "`{name}` is not a plugin name\nhint: use lowercase letters, digits, `-` and `_`, \
                 starting with a letter, like `fair-share` (the {} is then `fair_share`)",
                kind.word()
            );
        }
        let lib = name.replace('-', "_");
        if TAKEN_LIBS.contains(&lib.as_str()) {
            bail!(
                "`{name}` cannot name a plugin: `{lib}` is a Rust keyword or a crate name Rust \
                 reserves\nhint: pick another name, like `{lib}-plugin`"
            );
        }
        let builtin = Registry::default();
        let taken = match kind {
            Kind::Rule => builtin.rules.get(&lib).is_some(),
            Kind::Metric => builtin.metrics.get(&lib).is_some(),
        };
        if taken {
            bail!(
                "`{lib}` is the name of a built-in {}, so a pipeline could not load a plugin {} \
                 of that name\nhint: pick another name (`chorus plugins list` shows the \
                 built-ins)",
                kind.long(),
                kind.word()
            );
        }
        let mut type_name: String = lib
            .split('_')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (first, rest) = part.split_at(1);
                first.to_ascii_uppercase() + rest
            })
            .collect();
        if TAKEN_TYPES.contains(&type_name.as_str()) {
            type_name.push_str(match kind {
                Kind::Rule => "Rule",
                Kind::Metric => "Metric",
            });
        }
        Ok(Names {
            kind,
            package: name.to_owned(),
            item: lib.clone(),
            lib,
            type_name,
        })
    }

    /// The library file cargo builds: `libNAME.so` (`.dylib` on macOS).
    fn library_file(&self) -> String {
        format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            self.lib,
            std::env::consts::DLL_SUFFIX
        )
    }

    /// The `plugins:` entry and the stage that names the rule or metric, as pipeline lines
    /// indented by `indent`.
    fn pipeline_lines(&self, library: &Path, indent: &str) -> String {
        let stage = match self.kind {
            Kind::Rule => format!(
                "- {{id: aggregate, kind: aggregate, needs: [score], params: {{rule: {}}}}}",
                self.item
            ),
            Kind::Metric => format!(
                "- {{id: evaluate, kind: evaluate, needs: [split, ppo], params: {{metrics: [{}]}}}}",
                self.item
            ),
        };
        format!(
            "{indent}plugins: [{}]\n{indent}# ... data, groups, stages ...\n{indent}loop:\n{indent}  stages:\n\
             {indent}    # ...\n{indent}    {stage}\n",
            library.display()
        )
    }
}

/// Replaces every `from` in `text` with `to`. The template must contain `from`: a template
/// edit that drops it is caught by the tests instead of leaking the template's names.
fn subst(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the plugin template no longer contains {from:?}; update src/cli/plugins.rs"
    );
    text.replace(from, to)
}

/// `text` with its first line (a `#` comment or heading) replaced by `line`.
fn replace_first_line(text: &str, line: &str) -> String {
    assert!(text.starts_with('#'), "the template starts with a comment");
    let rest = text.split_once('\n').map_or("", |(_, rest)| rest);
    format!("{line}\n{rest}")
}

/// `text` as lines of at most 92 characters (longer words stay whole), each ending in `\\n`.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > 92 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The files of the new crate, by path inside it. `api` is the absolute path of plugins/api,
/// `home` the absolute path the crate is written to (for the README's examples).
fn render(names: &Names, api: &str, home: &Path) -> Vec<(&'static str, String)> {
    let n = names;
    let (module, file) = match n.kind {
        Kind::Rule => ("rule", "src/rule.rs"),
        Kind::Metric => ("metric", "src/metric.rs"),
    };

    let mut cargo = replace_first_line(
        TEMPLATE_CARGO,
        &format!(
            "# A chorus {} plugin made by `chorus plugins new`: edit {file}. See README.md.",
            n.kind.long()
        ),
    );
    cargo = subst(
        &cargo,
        "name = \"my-aggregator\"",
        &format!("name = {}", toml_string(&n.package)),
    );
    cargo = subst(
        &cargo,
        "name = \"my_aggregator\"",
        &format!("name = {}", toml_string(&n.lib)),
    );
    // The library's file name in a comment.
    cargo = subst(&cargo, "my_aggregator", &n.lib);
    cargo = subst(
        &cargo,
        "path = \"../../plugins/api\"",
        &format!("path = {}", toml_string(api)),
    );
    if n.kind == Kind::Metric {
        cargo = subst(
            &cargo,
            "run the rule in-process",
            "run the metric in-process",
        );
    }

    let code = match n.kind {
        Kind::Rule => {
            let mut s = subst(TEMPLATE_RULE, "Softmin", &n.type_name);
            s = subst(&s, "//! `softmin`:", &format!("//! `{}`:", n.item));
            s = subst(&s, "rule: softmin", &format!("rule: {}", n.item));
            s = subst(
                &s,
                "softmin has no param",
                &format!("{} has no param", n.item),
            );
            subst(&s, "\"softmin\"", &format!("\"{}\"", n.item))
        }
        Kind::Metric => {
            let mut s = subst(TEMPLATE_METRIC, "MinMaxRatio", &n.type_name);
            s = subst(&s, "//! `min_max_ratio`:", &format!("//! `{}`:", n.item));
            s = subst(
                &s,
                "metrics: [min_max_ratio]",
                &format!("metrics: [{}]", n.item),
            );
            s = subst(
                &s,
                "min_max_ratio has no param",
                &format!("{} has no param", n.item),
            );
            subst(&s, "\"min_max_ratio\"", &format!("\"{}\"", n.item))
        }
    };

    let (rules, metrics) = match n.kind {
        Kind::Rule => (n.type_name.as_str(), ""),
        Kind::Metric => ("", n.type_name.as_str()),
    };
    let lib_rs = format!(
        "//! {package}: a chorus plugin with one {long}, `{item}` ({file}).
//!
//! This file only tells chorus what the library offers. To change the {word}, edit
//! {file} (or add files beside it) and list every {word} type in `{word}s: [...]` below.
mod {module};

pub use {module}::{ty};

chorus_plugin::export! {{
    name: {name},
    version: env!(\"CARGO_PKG_VERSION\"),
    rules: [{rules}],
    metrics: [{metrics}],
}}
",
        package = n.package,
        long = n.kind.long(),
        item = n.item,
        word = n.kind.word(),
        ty = n.type_name,
        // A Rust string literal: NAME has no character that needs escaping.
        name = format_args!("\"{}\"", n.package),
    );

    let release = home.join("target").join("release").join(n.library_file());
    let flag = if n.kind == Kind::Metric {
        " --metric"
    } else {
        ""
    };
    let mut readme = replace_first_line(
        TEMPLATE_README,
        &format!(
            "# {}: a chorus plugin with one {}, `{}`",
            n.package,
            n.kind.long(),
            n.item
        ),
    );
    let start = match n.kind {
        Kind::Rule => "the template's softmin, a smooth minimum of the groups' rewards",
        Kind::Metric => {
            "the template's min/max ratio, the worst group's score over the best group's"
        }
    };
    readme = subst(
        &readme,
        "This folder is a complete plugin with one rule, `softmin`, a smooth minimum of the groups'
rewards, and one fairness metric, `min_max_ratio`, the worst group's score over the best
group's. Copy it and change them, or let `chorus plugins new` do the copying (below).
",
        &wrap(&format!(
            "This crate was made by `chorus plugins new {}{flag}` from chorus's plugin template \
             (examples/aggregator-plugin in the chorus checkout). It exports one {}, `{}` \
             (type `{}` in {file}), which for now is {start}: change it. The guide below is \
             the template's.",
            n.package,
            n.kind.long(),
            n.item,
            n.type_name,
        )),
    );
    readme = subst(
        &readme,
        "1. Copy this folder anywhere and rename it (or run `chorus plugins new`, above). In
   `Cargo.toml` change `name = \"my-aggregator\"` and `[lib] name = \"my_aggregator\"`, and point
   the `chorus-plugin` path at `plugins/api` in your chorus checkout.
",
        &format!(
            "1. Done: `chorus plugins new {}{flag}` made this crate, its `chorus-plugin` path
   pointing at {api}.
",
            n.package
        ),
    );
    // The pipeline example of step 4: the lines for this crate's library and rule or metric.
    let open = "   ```yaml\n";
    let from = readme
        .find(open)
        .expect("the template's README has a YAML example");
    let to = from
        + open.len()
        + readme[from + open.len()..]
            .find("   ```\n")
            .expect("the YAML example ends");
    readme.replace_range(
        from + open.len()..to,
        &format!("   name: paper\n{}", n.pipeline_lines(&release, "   ")),
    );
    if n.kind == Kind::Metric {
        readme = subst(
            &readme,
            "   chorus run pipelines/paper.yaml -s aggregate.temperature=0.05\n",
            "",
        );
    }
    readme = subst(
        &readme,
        "examples/aggregator-plugin/target/release/",
        &format!("{}/", release.parent().expect("a folder").display()),
    );
    readme = subst(&readme, "../../plugins/api/", &format!("{api}/"));
    readme = subst(&readme, "my_aggregator", &n.lib);
    readme = readme.replace("my-aggregator", &n.package);

    vec![
        ("Cargo.toml", cargo),
        ("README.md", readme),
        (".gitignore", TEMPLATE_GITIGNORE.to_owned()),
        ("src/lib.rs", lib_rs),
        (file, code),
    ]
}

/// plugins/api as an absolute path, checked to be the chorus-plugin crate.
fn api_path(given: Option<&Path>) -> anyhow::Result<String> {
    let (path, hint) = match given {
        Some(path) => (
            path,
            "pass --api PATH with plugins/api of a chorus checkout",
        ),
        None => (
            Path::new(DEFAULT_API),
            "this chorus was built from a checkout that is no longer there; pass --api PATH \
             with plugins/api of a chorus checkout",
        ),
    };
    let manifest = std::fs::read_to_string(path.join("Cargo.toml"))
        .ok()
        .filter(|text| text.contains("name = \"chorus-plugin\""));
    if manifest.is_none() {
        bail!(
            "{} is not the chorus-plugin crate (no Cargo.toml naming `chorus-plugin`)\nhint: {hint}",
            path.display()
        );
    }
    let absolute = path
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    absolute.to_str().map(str::to_owned).ok_or_else(|| {
        anyhow!(
            "{} is not UTF-8, which Cargo.toml needs",
            absolute.display()
        )
    })
}

pub(super) fn new(args: NewArgs) -> anyhow::Result<()> {
    let kind = if args.metric {
        Kind::Metric
    } else {
        Kind::Rule
    };
    let names = Names::new(&args.name, kind)?;
    let api = api_path(args.api.as_deref())?;
    let dir = args.dir.join(&names.package);
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not an empty folder\nhint: pick another NAME or \
                 --dir, or remove it first",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let home = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    for (file, text) in render(&names, &api, &home) {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // A long NAME can leave a renamed line longer than rustfmt allows: tidy up when rustfmt is
    // at hand. The crate builds either way, so whether it ran does not matter.
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .arg(dir.join("src/lib.rs"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();

    // Where `cargo build --release` will put the library, run inside the crate.
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        Some(t) => home.join(t),
        None => home.join("target"),
    };
    let library = target.join("release").join(names.library_file());
    emit(&format!(
        "wrote {dir}: crate `{package}`, {long} `{item}` (type {ty} in src/{word}.rs), \
         chorus-plugin at {api}\n\n\
         next:\n  \
         cd {dir}\n  \
         cargo test                # the {word}'s unit tests\n  \
         cargo build --release     # → {library}\n  \
         chorus plugins inspect {library}\n\n\
         then in a pipeline (paths in `plugins:` are relative to the pipeline file):\n{lines}",
        dir = dir.display(),
        package = names.package,
        long = kind.long(),
        item = names.item,
        ty = names.type_name,
        word = kind.word(),
        library = library.display(),
        lines = names.pipeline_lines(&library, "  "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(name: &str, kind: Kind) -> Names {
        Names::new(name, kind).unwrap()
    }

    #[test]
    fn names_derive_from_name() {
        let n = names("my-rule", Kind::Rule);
        assert_eq!(
            (n.package.as_str(), n.lib.as_str(), n.item.as_str()),
            ("my-rule", "my_rule", "my_rule")
        );
        assert_eq!(n.type_name, "MyRule");
        assert_eq!(names("r2-d2_x", Kind::Metric).type_name, "R2D2X");
        assert_eq!(names("a--b_", Kind::Rule).type_name, "AB");
        // Types the template's code uses are not shadowed.
        assert_eq!(names("value", Kind::Rule).type_name, "ValueRule");
        assert_eq!(names("metric", Kind::Metric).type_name, "MetricMetric");
        assert_eq!(names("vec", Kind::Metric).type_name, "VecMetric");
    }

    #[test]
    fn bad_names_are_refused_with_a_hint() {
        for bad in [
            "", "My-rule", "1rule", "-rule", "my rule", "règle", "a.b", "_x",
        ] {
            let err = Names::new(bad, Kind::Rule).unwrap_err().to_string();
            assert!(
                err.contains("not a plugin name") && err.contains("hint:"),
                "{bad}: {err}"
            );
        }
        for taken in ["fn", "self", "std", "chorus-plugin", "test"] {
            let err = Names::new(taken, Kind::Rule).unwrap_err().to_string();
            assert!(err.contains("cannot name a plugin"), "{taken}: {err}");
        }
        // A built-in's name would clash when the pipeline loads the library.
        let err = Names::new("min", Kind::Rule).unwrap_err().to_string();
        assert!(err.contains("built-in aggregation rule"), "{err}");
        let err = Names::new("gini", Kind::Metric).unwrap_err().to_string();
        assert!(err.contains("built-in fairness metric"), "{err}");
        // Only a clash of the same kind matters.
        assert!(Names::new("gini", Kind::Rule).is_ok());
    }

    fn files(kind: Kind) -> Vec<(&'static str, String)> {
        let name = match kind {
            Kind::Rule => "fair-share",
            Kind::Metric => "fair-metric",
        };
        render(
            &names(name, kind),
            "/opt/chorus \"x\"/plugins/api",
            Path::new("/home/me/fair"),
        )
    }

    fn file(files: &[(&str, String)], path: &str) -> String {
        files
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .1
            .clone()
    }

    /// Every template name is replaced; nothing points back at the template's folder.
    #[test]
    fn rule_crate_is_renamed() {
        let f = files(Kind::Rule);
        let paths: Vec<&str> = f.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            paths,
            [
                "Cargo.toml",
                "README.md",
                ".gitignore",
                "src/lib.rs",
                "src/rule.rs"
            ]
        );
        let cargo = file(&f, "Cargo.toml");
        assert!(cargo.contains("name = \"fair-share\""), "{cargo}");
        assert!(cargo.contains("name = \"fair_share\""), "{cargo}");
        assert!(
            cargo.contains(r#"path = "/opt/chorus \"x\"/plugins/api""#),
            "{cargo}"
        );
        assert!(cargo.starts_with("# A chorus aggregation rule plugin made by"));
        assert!(cargo.contains("\n[workspace]"), "stays standalone");
        let rule = file(&f, "src/rule.rs");
        assert!(rule.contains("pub struct FairShare {"));
        assert!(rule.contains("impl PluginRule for FairShare {"));
        assert!(rule.contains("const NAME: &'static str = \"fair_share\";"));
        assert!(rule.contains("`rule: fair_share`"));
        assert!(rule.contains("fair_share has no param"));
        assert!(!rule.contains("Softmin") && !rule.contains("\"softmin\""));
        let lib = file(&f, "src/lib.rs");
        assert!(
            lib.contains("mod rule;\n\npub use rule::FairShare;"),
            "{lib}"
        );
        assert!(lib.contains("name: \"fair-share\","), "{lib}");
        assert!(
            lib.contains("rules: [FairShare],\n    metrics: [],"),
            "{lib}"
        );
        let readme = file(&f, "README.md");
        assert!(readme.starts_with("# fair-share: a chorus plugin with one aggregation rule"));
        assert!(
            readme.contains("plugins: [/home/me/fair/target/release/libfair_share.so]")
                || !cfg!(target_os = "linux")
        );
        assert!(readme.contains("params: {rule: fair_share}}"), "{readme}");
        assert!(readme.contains("-s aggregate.temperature=0.05"));
        for gone in [
            "my_aggregator",
            "my-aggregator",
            "examples/aggregator-plugin/target",
            "../../plugins",
            "rule: softmin",
            "min_max_ratio",
        ] {
            for (path, text) in &f {
                assert!(!text.contains(gone), "{path} still has {gone:?}");
            }
        }
    }

    #[test]
    fn metric_crate_is_renamed() {
        let f = files(Kind::Metric);
        let paths: Vec<&str> = f.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            paths,
            [
                "Cargo.toml",
                "README.md",
                ".gitignore",
                "src/lib.rs",
                "src/metric.rs"
            ]
        );
        let cargo = file(&f, "Cargo.toml");
        assert!(cargo.contains("name = \"fair_metric\""), "{cargo}");
        assert!(cargo.contains("run the metric in-process"), "{cargo}");
        let metric = file(&f, "src/metric.rs");
        assert!(metric.contains("impl PluginMetric for FairMetric {"));
        assert!(metric.contains("const NAME: &'static str = \"fair_metric\";"));
        assert!(metric.contains("`metrics: [fair_metric]`"));
        assert!(!metric.contains("MinMaxRatio") && !metric.contains("\"min_max_ratio\""));
        let lib = file(&f, "src/lib.rs");
        assert!(lib.contains("pub use metric::FairMetric;"), "{lib}");
        assert!(
            lib.contains("rules: [],\n    metrics: [FairMetric],"),
            "{lib}"
        );
        let readme = file(&f, "README.md");
        assert!(
            readme.contains("params: {metrics: [fair_metric]}}"),
            "{readme}"
        );
        assert!(!readme.contains("aggregate.temperature"));
        for gone in [
            "my_aggregator",
            "my-aggregator",
            "examples/aggregator-plugin/target",
            "../../plugins",
            "rule: softmin",
            "metrics: [min_max_ratio]",
            "Softmin",
        ] {
            for (path, text) in &f {
                assert!(!text.contains(gone), "{path} still has {gone:?}");
            }
        }
    }

    #[test]
    fn wrap_keeps_lines_short() {
        assert_eq!(wrap("a b"), "a b\n");
        let text = "word ".repeat(40);
        let wrapped = wrap(&text);
        assert!(wrapped.lines().all(|l| l.len() <= 92 && !l.ends_with(' ')));
        assert_eq!(wrapped.split_whitespace().count(), 40);
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("a\tb"), r#""a\u0009b""#);
    }
}
