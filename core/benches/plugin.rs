//! The cost of the plugin boundary: the built-in `tilted` against the testkit plugin's
//! `tilted_plugin`, which calls the very same `chorus_plugin::kit` functions, on one 16 × 4,096
//! reward matrix. Whatever differs is the boundary: the C call, the state as JSON, the
//! plugin's copy of its output into the host's buffers and the host's checks of every value.
//!
//! The two are timed alternately, call after call, and compared by their medians, so a burst
//! of load on a shared machine hits both alike (criterion times one after the other, and on
//! this machine its two runs could differ by ±15% from load alone).
//!
//! `cargo bench -p chorus-core --bench plugin`
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use chorus_core::aggregate::RewardMatrix;
use chorus_core::registry::Registry;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const GROUPS: usize = 16;
const ROLLOUTS: usize = 4096;
/// Timed calls of each rule, after as many untimed ones.
const CALLS: usize = 2000;

fn main() {
    let mut registry = Registry::default();
    registry
        .load(&build_testkit())
        .expect("the testkit plugin loads");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let values: Vec<f64> = (0..GROUPS * ROLLOUTS).map(|_| rng.random()).collect();
    let matrix = RewardMatrix::new(GROUPS, ROLLOUTS, values).expect("a finite matrix");
    let shares = vec![1.0 / GROUPS as f64; GROUPS];
    let build = |name: &str| {
        registry
            .rules
            .get(name)
            .unwrap()
            .build(&Default::default(), &shares)
            .unwrap()
    };
    let (built_in, plugin) = (build("tilted"), build("tilted_plugin"));
    let call = |rule: &dyn chorus_core::aggregate::Aggregator| {
        rule.aggregate(black_box(&matrix), 1, &mut Value::Null)
            .expect("finite rewards aggregate")
    };
    assert!(
        call(built_in.as_ref()) == call(plugin.as_ref()),
        "the port must be bit-identical to the built-in"
    );
    let mut times = [Vec::with_capacity(CALLS), Vec::with_capacity(CALLS)];
    for i in 0..2 * CALLS {
        for (k, rule) in [built_in.as_ref(), plugin.as_ref()].into_iter().enumerate() {
            let start = Instant::now();
            black_box(call(rule));
            if i >= CALLS {
                times[k].push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    let [a, b] = times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        (t[t.len() / 2], t[t.len() / 4], t[3 * t.len() / 4])
    });
    println!(
        "plugin boundary, {GROUPS} groups × {ROLLOUTS} rollouts, {CALLS} alternating calls each"
    );
    println!(
        "  built-in tilted      median {:8.1} µs  (IQR {:.1}–{:.1})",
        a.0, a.1, a.2
    );
    println!(
        "  plugin tilted_plugin median {:8.1} µs  (IQR {:.1}–{:.1})",
        b.0, b.1, b.2
    );
    println!("  plugin / built-in    {:.3}×", b.0 / a.0);
}

/// Builds the testkit plugin optimised and returns its path.
fn build_testkit() -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "chorus-testkit"])
        .current_dir(&root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p chorus-testkit failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let file = format!(
        "{}chorus_testkit{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    std::path::absolute(target.join("release").join(file)).expect("an absolute path")
}
