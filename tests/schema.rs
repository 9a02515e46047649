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

/// Every shipped pipeline starts with the schema modeline and passes validation.
#[test]
fn shipped_pipelines_have_the_modeline_and_validate() {
    let mut seen = 0;
    for dir in ["pipelines", "pipelines/grids"] {
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
                "# yaml-language-server: $schema={}schemas/pipeline.schema.json",
                "../".repeat(depth)
            );
            assert!(
                text.starts_with(&modeline),
                "{} lacks `{modeline}`",
                path.display()
            );
            if let Err(e) = chorus_core::spec::load(&path, &[]) {
                panic!("{} does not validate:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no shipped pipelines found");
}
