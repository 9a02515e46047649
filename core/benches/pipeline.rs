//! Pipeline foundation benchmarks (issue 2): loading a 1,000-stage pipeline and scheduling
//! 10,000 no-op stages, so scheduler overhead can be held to its budget of 50 µs per stage.
//!
//! Run with `cargo bench -p chorus-core --bench pipeline`; BENCHMARKS.md records the figures.
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chorus_core::schedule::{self, Outcome};
use chorus_core::spec::load_str;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};

/// Stages in the generated pipeline, the split included.
const STAGES: usize = 1_000;
/// Tasks per scheduler run.
const TASKS: usize = 10_000;
/// Layers of the layered DAG; `TASKS / LAYERS` tasks sit in each.
const LAYERS: usize = 100;

/// A pipeline of one `split` and `STAGES - 1` `evaluate` stages. Each evaluation also needs
/// the previous one and one about half as far back, so the DAG has long chains, fan-in and
/// fan-out rather than being a star that would make resolution look cheaper than it is.
fn pipeline_text(trailing: &str) -> String {
    let mut text = String::from(
        "name: bench\nseed: 7\noutput: runs\n\
         data:\n  kind: simulator\n  questions: 200\n  options: 4\n  features: 8\n\
         \x20 groups:\n    count: 6\n    minorities: 1\n\
         stages:\n  - id: split\n    kind: split\n    params:\n      eval_fraction: 0.2\n      respondents: 100\n",
    );
    for i in 1..STAGES {
        let mut needs = vec!["split".to_owned()];
        if i >= 2 {
            needs.push(format!("eval-{}", i - 1));
        }
        if i >= 4 {
            needs.push(format!("eval-{}", i / 2));
        }
        let policy = if i % 2 == 0 {
            "uniform"
        } else {
            "population_mean"
        };
        let _ = write!(
            text,
            "  - id: eval-{i}\n    kind: evaluate\n    needs: [{}]\n    params:\n      policy: {policy}\n",
            needs.join(", ")
        );
    }
    text.push_str(trailing);
    text
}

/// `chorus_core` offers no public way to run DAG resolution alone (`Dag::build` takes a
/// `Blame`, which outsiders cannot construct), so resolution is measured by difference: an
/// unknown top-level key after `stages` makes `load_str` stop right after deserialising, having
/// paid for the YAML parse and the deserialisation but not for validation and resolution.
const STOP_BEFORE_VALIDATION: &str = "zz_stop_before_validation: 1\n";

fn parse_and_resolve(c: &mut Criterion) {
    let file = Path::new("bench.yaml");
    let full = pipeline_text("");
    let parse_only = pipeline_text(STOP_BEFORE_VALIDATION);

    // Fail loudly rather than time the error path by mistake.
    let loaded = load_str(file, &full, &[]).expect("the generated pipeline is valid");
    assert_eq!(loaded.dag.nodes.len(), STAGES);
    let err = load_str(file, &parse_only, &[]).expect_err("the stop key is rejected");
    assert!(
        err.0.len() == 1 && err.0[0].to_string().contains("zz_stop_before_validation"),
        "the stop key must be the only problem: {err:?}"
    );

    let mut group = loader_group(c, "parse_validate_1000");
    group.bench_function("load_str", |b| {
        b.iter(|| load_str(file, black_box(&full), &[]))
    });
    // The floor under any loader: saphyr-parser's event stream alone, before chorus builds its
    // value tree and source map, so the share of the YAML library itself is visible.
    group.bench_function("yaml_events_floor", |b| {
        b.iter(|| {
            let mut events = 0usize;
            for item in saphyr_parser::Parser::new_from_str(black_box(&full)) {
                black_box(item.expect("valid YAML"));
                events += 1;
            }
            events
        })
    });
    group.finish();

    let mut group = loader_group(c, "resolve_1000");
    group.bench_function("parse_deserialize_only", |b| {
        b.iter(|| load_str(file, black_box(&parse_only), &[]))
    });
    group.finish();
}

/// `needs` for `TASKS` tasks: all independent.
/// A group timing one load of the 1,000-stage pipeline per iteration.
fn loader_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(STAGES as u64));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    group.warm_up_time(Duration::from_secs(2));
    group
}

fn wide() -> Vec<Vec<usize>> {
    vec![Vec::new(); TASKS]
}

/// `needs` for `LAYERS` layers; each task needs its own and its neighbour's slot in the layer
/// before, so every task has two needs and two dependants (wrapping at the layer's edge).
fn layered() -> Vec<Vec<usize>> {
    let width = TASKS / LAYERS;
    (0..TASKS)
        .map(|i| {
            let (layer, k) = (i / width, i % width);
            if layer == 0 {
                Vec::new()
            } else {
                let prev = (layer - 1) * width;
                vec![prev + k, prev + (k + 1) % width]
            }
        })
        .collect()
}

/// `needs` for a single chain: no parallelism at all, so every hand-off is on the critical path.
fn chain() -> Vec<Vec<usize>> {
    (0..TASKS)
        .map(|i| if i == 0 { Vec::new() } else { vec![i - 1] })
        .collect()
}

fn schedule_noop(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule_noop_10000");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(2));
    for (shape, needs) in [("wide", wide()), ("layered", layered()), ("chain", chain())] {
        // The task reads its inputs so the scheduler's input gathering is not optimised away.
        let noop = |i: usize, inputs: &[&u64]| {
            Ok::<_, ()>(Some(inputs.iter().copied().sum::<u64>() ^ i as u64))
        };
        let out = schedule::run(&needs, noop);
        assert!(out.iter().all(|o| matches!(o, Outcome::Done(_))));
        group.bench_with_input(BenchmarkId::from_parameter(shape), &needs, |b, needs| {
            b.iter(|| schedule::run(black_box(needs), noop))
        });
    }
    group.finish();
}

criterion_group!(benches, parse_and_resolve, schedule_noop);
criterion_main!(benches);
