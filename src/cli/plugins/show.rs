//! `inspect` and `list`: what a library offers, and what a pipeline can name.

use chorus_core::plugin::{Library, Offer};
use chorus_core::registry::Registry;
use chorus_core::spec;

use super::{emit, InspectArgs, ListArgs};

pub(super) fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let lib = Library::open(&args.library)?;
    emit(&describe(&lib))
}

/// Everything `inspect` prints about an opened library.
fn describe(lib: &Library) -> String {
    let mut out = format!(
        "library  {} {}\npath     {}\nsha256   {}\nabi      {}\n",
        lib.name(),
        lib.version(),
        lib.path().display(),
        lib.sha256(),
        chorus_plugin::ABI_VERSION
    );
    for (kind, offers) in [("rules", lib.rules()), ("metrics", lib.metrics())] {
        out.push_str(&format!("\n{kind} ({})\n", offers.len()));
        if offers.is_empty() {
            out.push_str("  none\n");
        }
        for (i, offer) in offers.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&describe_offer(offer));
        }
    }
    out
}

fn describe_offer(offer: &Offer) -> String {
    let mut out = format!(
        "  {} {}\n    {}\n",
        offer.name, offer.version, offer.description
    );
    if let Some(higher) = offer.higher_is_fairer {
        let yes = if higher { "yes" } else { "no" };
        out.push_str(&format!("    higher is fairer: {yes}\n"));
    }
    out.push_str("    params schema:\n");
    let schema = serde_json::to_string_pretty(&offer.schema).expect("a JSON value prints");
    for line in schema.lines() {
        out.push_str(&format!("      {line}\n"));
    }
    out
}

pub(super) fn list(args: ListArgs) -> anyhow::Result<()> {
    let registry = match &args.pipeline {
        Some(file) => spec::load(file, &args.overrides)?.registry,
        None => std::sync::Arc::new(Registry::default()),
    };
    emit(&listing(&registry, args.pipeline.is_some()))
}

/// The tables `list` prints; with `sources`, where each entry comes from and the libraries.
fn listing(registry: &Registry, sources: bool) -> String {
    let with_source = |mut row: Vec<String>, source: String| {
        if sources {
            row.insert(row.len() - 1, source);
        }
        row
    };
    let mut header = vec!["RULE", "VERSION", "DESCRIPTION"];
    if sources {
        header.insert(2, "SOURCE");
    }
    let rules: Vec<Vec<String>> = registry
        .rules
        .iter()
        .map(|e| {
            let row = vec![e.name.clone(), e.version.clone(), e.description.clone()];
            with_source(row, e.source.to_string())
        })
        .collect();
    let mut out = table(&header, &rules);

    let mut header = vec!["METRIC", "VERSION", "FAIRER", "DESCRIPTION"];
    if sources {
        header.insert(3, "SOURCE");
    }
    let metrics: Vec<Vec<String>> = registry
        .metrics
        .iter()
        .map(|e| {
            let fairer = if e.higher_is_fairer {
                "higher"
            } else {
                "lower"
            };
            let row = vec![
                e.name.clone(),
                e.version.clone(),
                fairer.to_owned(),
                e.description.clone(),
            ];
            with_source(row, e.source.to_string())
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&header, &metrics));

    out.push('\n');
    if !sources {
        out.push_str(
            "built-ins only; `chorus plugins list PIPELINE` adds its plugins' rules and metrics\n",
        );
    } else if registry.libraries().is_empty() {
        out.push_str("no plugin libraries\n");
    } else {
        let libraries: Vec<Vec<String>> = registry
            .libraries()
            .iter()
            .map(|lib| {
                vec![
                    lib.path().display().to_string(),
                    lib.sha256().chars().take(12).collect(),
                    format!("{} {}", lib.name(), lib.version()),
                ]
            })
            .collect();
        out.push_str(&table(&["LIBRARY", "SHA256", "NAME"], &libraries));
    }
    out
}

/// `header` and `rows` in columns padded to their widest cell (the last one is not padded).
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let all: Vec<&Vec<String>> = std::iter::once(&header).chain(rows).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in all {
        let last = row.len() - 1;
        for (c, cell) in row.iter().enumerate() {
            if c == last {
                out.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out
}

// ---- `chorus plugins new` ----

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["min".to_owned(), "0.2.0".to_owned(), "worst".to_owned()],
            vec!["power_mean".to_owned(), "1".to_owned(), "p".to_owned()],
        ];
        assert_eq!(
            table(&["RULE", "VERSION", "DESCRIPTION"], &rows),
            "RULE        VERSION  DESCRIPTION\n\
             min         0.2.0    worst\n\
             power_mean  1        p\n"
        );
    }
}
