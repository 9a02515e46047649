use super::PipelineArgs;

pub fn validate(args: PipelineArgs) -> anyhow::Result<()> {
    let loaded = args.load()?;
    let in_loop = loaded
        .dag
        .nodes
        .iter()
        .filter(|n| n.phase == chorus_core::graph::Phase::Loop)
        .count();
    println!(
        "OK: {} ({} stages, {} per round)",
        args.file.display(),
        loaded.dag.nodes.len(),
        in_loop
    );
    Ok(())
}
