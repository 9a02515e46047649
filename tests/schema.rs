//! The checked-in schema and the shipped pipelines must stay true to the code.
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Editors validate pipelines against `schemas/pipeline.schema.json`; a stale file would
/// accept fields the binary rejects (or the reverse). Regenerate with `chorus schema`.
#[test]
fn checked_in_schema_is_fresh() {
    let path = Path::new(ROOT).join("schemas/pipeline.schema.json");
    let on_disk = std::fs::read_to_string(&path).expect("schemas/pipeline.schema.json exists");
    assert!(
        on_disk == chorus_core::spec::schema_text(),
        "{} is stale: run `chorus schema` and commit the result",
        path.display()
    );
}

/// Every shipped pipeline and grid starts with its schema's modeline and passes validation.
#[test]
fn shipped_pipelines_and_grids_have_the_modeline_and_validate() {
    let mut seen = 0;
    for (dir, schema) in [
        ("pipelines", "pipeline.schema.json"),
        ("pipelines/grids", "grid.schema.json"),
    ] {
        let Ok(entries) = std::fs::read_dir(Path::new(ROOT).join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let depth = dir.matches('/').count() + 1;
            let modeline = format!(
                "# yaml-language-server: $schema={}schemas/{schema}",
                "../".repeat(depth)
            );
            assert!(
                text.starts_with(&modeline),
                "{} lacks `{modeline}`",
                path.display()
            );
            let checked = if schema == "grid.schema.json" {
                chorus_core::grid::spec::load(&path).map(drop)
            } else {
                chorus_core::spec::load(&path, &[]).map(drop)
            };
            if let Err(e) = checked {
                panic!("{} does not validate:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 3, "the shipped pipelines and grids were not found");
}
