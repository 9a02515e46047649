//! Learning benchmarks (issue 3): PPO update throughput for the default policy at batch 256,
//! and reward aggregation for 16 groups × 4,096 rollouts under every built-in rule.
//!
//! Run with `cargo bench -p chorus-core --bench learning`; `bench/compare.sh` runs the PPO
//! part beside the PyTorch reference (`bench/ppo_reference.py`) and prints the ratio.
//! BENCHMARKS.md records the figures.
use std::hint::black_box;
use std::time::Duration;

use chorus_core::aggregate::{RewardMatrix, Rules};
use chorus_core::data::Questions;
use chorus_core::policy::{Adam, MlpPolicy, Net, Policy, RolloutKind};
use chorus_core::ppo::{self, Batch, PpoConfig};
use chorus_core::rng::{stream, Rng};
use chorus_core::stage::QuestionBank;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rand::Rng as _;
use rand_distr::StandardNormal;
use serde_json::Value;

/// Rollouts per PPO update.
const BATCH: usize = 256;
/// The default policy's shape: 4 options × 8 features per option in, 64 wide, 2 deep.
const OPTIONS: usize = 4;
const INPUTS: usize = OPTIONS * 8;
const HIDDEN: usize = 64;
const DEPTH: usize = 2;
const INIT_LOG_STD: f64 = -0.5;
/// Groups and rollouts per aggregation round.
const GROUPS: usize = 16;
const ROLLOUTS: usize = 4_096;

fn rng() -> Rng {
    stream(7, &["bench"])
}

/// One update's inputs, built fresh for each timed call so that every call is the first
/// update of a round from the same weights and zeroed Adam moments, as in the `ppo` stage.
/// Carrying the policy over would train it for thousands of steps on one stale batch, where
/// the ratios, not the work, would drift.
struct Round {
    policy: Box<dyn Policy>,
    adam: Adam,
}

fn ppo_update(c: &mut Criterion) {
    // The runner sets one intra-op thread per task (stages already run in parallel on rayon);
    // the reference script does the same, so both sides measure one core.
    tch::set_num_threads(1);
    let cfg: PpoConfig = serde_json::from_str("{}").expect("every PpoConfig field has a default");
    let mut group = c.benchmark_group("ppo_update_256");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(10));
    for (name, kind) in [
        ("choice", RolloutKind::Choice),
        ("distribution", RolloutKind::Distribution),
    ] {
        let mut rng = rng();
        let net = Net::new(INPUTS, HIDDEN, DEPTH, OPTIONS, INIT_LOG_STD, &mut rng);
        let policy = MlpPolicy::new(net, kind, OPTIONS);
        let bank = QuestionBank {
            questions: Questions::with_features(
                OPTIONS,
                (0..BATCH)
                    .map(|_| (0..INPUTS).map(|_| rng.sample(StandardNormal)).collect())
                    .collect(),
            ),
            train: Vec::new(),
            eval: Vec::new(),
        };
        let questions: Vec<usize> = (0..BATCH).collect();
        let rollouts = policy
            .sample(&bank, &questions, &mut rng)
            .expect("the MLP samples");
        let rewards: Vec<f64> = (0..BATCH)
            .map(|_| rng.random::<f64>())
            .collect::<Vec<f64>>();
        let data = Batch {
            rollouts: &rollouts,
            rewards: &rewards,
            group_size: 1,
        };
        let round = || Round {
            policy: policy.fork(),
            adam: Adam::new(&policy.trainable(), cfg.lr),
        };
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                round,
                |mut r| {
                    let stats = ppo::update(
                        r.policy.as_ref(),
                        &mut r.adam,
                        black_box(&data),
                        &cfg,
                        &mut rng,
                    )
                    .expect("the benchmark's update stays finite");
                    (r, stats)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn aggregate(c: &mut Criterion) {
    let mut rng = rng();
    let values = (0..GROUPS * ROLLOUTS)
        .map(|_| rng.random::<f64>())
        .collect::<Vec<f64>>();
    let matrix = RewardMatrix::new(GROUPS, ROLLOUTS, values).expect("finite 16 × 4096 matrix");
    let populations = vec![1.0 / GROUPS as f64; GROUPS];
    let mut group = c.benchmark_group("aggregate_16x4096");
    group.throughput(Throughput::Elements((GROUPS * ROLLOUTS) as u64));
    for entry in Rules::default().iter() {
        let agg = entry
            .build(&Default::default(), &populations)
            .expect("defaults build");
        // Stateful rules read and rewrite their state every round, so it is carried across
        // iterations: a steady-state round, not always the first.
        let mut state = Value::Null;
        let mut round = 0u32;
        group.bench_function(BenchmarkId::from_parameter(&entry.name), |b| {
            b.iter(|| {
                round += 1;
                agg.aggregate(black_box(&matrix), round, &mut state)
                    .expect("finite rewards aggregate")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ppo_update, aggregate);
criterion_main!(benches);
