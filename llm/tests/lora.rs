//! LoRA adapters on the tiny llama and qwen2 models: a fresh adapter changes nothing; a
//! trained one equals the model with the merged weights W + (α/r)·B·A written to disk and
//! loaded back; gradients reach the adapters only, and are the same whether a batch's shared
//! prefix runs once or in every row.
use std::path::{Path, PathBuf};

use chorus_llm::lora::{Lora, Target};
use chorus_llm::model::{load, LoadOptions, Model};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

fn tiny(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/llm/{name}"))
}

fn model(path: &Path) -> Model {
    load(path, LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .model
}

/// A left-padded batch: two rows sharing their first 20 tokens, one shorter row.
fn batch() -> (Tensor, Tensor) {
    let prefix: Vec<i64> = (0..20).map(|i| 3 + (i * 7) % 250).collect();
    let rows = [
        [prefix.clone(), vec![11, 12, 13]].concat(),
        [prefix.clone(), vec![40, 41]].concat(),
    ];
    let width = rows.iter().map(Vec::len).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for r in &rows {
        ids.extend(std::iter::repeat_n(0, width - r.len()).chain(r.iter().copied()));
        mask.extend(std::iter::repeat_n(0i64, width - r.len()).chain(r.iter().map(|_| 1)));
    }
    let shape = [rows.len() as i64, width as i64];
    (
        Tensor::from_slice(&ids).view(shape),
        Tensor::from_slice(&mask).view(shape),
    )
}

fn all_targets() -> Vec<Target> {
    Target::ALL.to_vec()
}

/// Random B (and A) so that the adapters do something.
fn perturb(lora: &Lora, seed: i64) {
    tch::manual_seed(seed);
    let _guard = tch::no_grad_guard();
    for (_, mut t) in lora.named() {
        let noise = Tensor::randn(t.size(), (Kind::Float, t.device())) * 0.05;
        let _ = t.g_add_(&noise);
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn a_fresh_adapter_is_the_base_model() {
    for name in ["tiny-llama", "tiny-qwen2"] {
        let m = model(&tiny(name));
        let lora = Lora::new(
            &m,
            4,
            8.0,
            &all_targets(),
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
        let (ids, mask) = batch();
        let _guard = tch::no_grad_guard();
        let base = m.forward(&ids, &mask, None).unwrap();
        let adapted = m.forward_with(&ids, &mask, None, Some(&lora)).unwrap();
        assert!(base.equal(&adapted), "{name}");
    }
}

/// Writes the HF folder `src` with each adapted projection's weight replaced by W + ΔW.
fn merged_copy(src: &Path, dst: &Path, lora: &Lora, layers: usize) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
    let mut tensors = Tensor::read_safetensors(src.join("model.safetensors")).unwrap();
    for (name, t) in tensors.iter_mut() {
        for l in 0..layers {
            for target in lora.targets() {
                let module = match target {
                    Target::Q | Target::K | Target::V | Target::O => "self_attn",
                    _ => "mlp",
                };
                if *name == format!("model.layers.{l}.{module}.{}.weight", target.name()) {
                    let delta = lora.merged_delta(l, *target).unwrap();
                    *t = &*t + delta.to_kind(t.kind());
                }
            }
        }
    }
    Tensor::write_safetensors(&tensors, dst.join("model.safetensors")).unwrap();
}

#[test]
fn adapters_equal_their_merged_weights() {
    for (name, targets) in [
        ("tiny-llama", all_targets()),
        ("tiny-qwen2", all_targets()),
        ("tiny-llama", vec![Target::Q, Target::V]),
        ("tiny-qwen2", vec![Target::K, Target::Up, Target::Down]),
    ] {
        let m = model(&tiny(name));
        let lora = Lora::new(&m, 3, 6.0, &targets, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        perturb(&lora, 3);
        let dir = tempfile::tempdir().unwrap();
        merged_copy(&tiny(name), dir.path(), &lora, m.config().layers);
        let merged = model(dir.path());
        let (ids, mask) = batch();
        let _guard = tch::no_grad_guard();
        let adapted = m.forward_with(&ids, &mask, None, Some(&lora)).unwrap();
        let reference = merged.forward(&ids, &mask, None).unwrap();
        let base = m.forward(&ids, &mask, None).unwrap();
        let moved = max_abs_diff(&adapted, &base);
        assert!(
            moved > 1e-3,
            "{name} {targets:?}: the adapters changed nothing"
        );
        let diff = max_abs_diff(&adapted, &reference);
        assert!(
            diff < 1e-5,
            "{name} {targets:?}: differs from merged by {diff}"
        );
    }
}

/// Σ of the adapted logits at each row's last position through the head rows 5..9.
fn loss_of(m: &Model, lora: &Lora, ids: &Tensor, mask: &Tensor) -> Tensor {
    let hidden = m.forward_with(ids, mask, None, Some(lora)).unwrap();
    let last = hidden.select(1, -1);
    m.logits_at(&last, Some(&[5, 6, 7, 8]))
        .unwrap()
        .log_softmax(-1, Kind::Float)
        .select(1, 0)
        .sum(Kind::Float)
}

fn grads(lora: &Lora) -> Vec<Tensor> {
    lora.named()
        .into_iter()
        .map(|(_, t)| t.grad().copy())
        .collect()
}

#[test]
fn gradients_reach_the_adapters_and_ignore_the_shared_prefix_trick() {
    for name in ["tiny-llama", "tiny-qwen2"] {
        let m = model(&tiny(name));
        let lora = Lora::new(
            &m,
            2,
            4.0,
            &all_targets(),
            &mut ChaCha8Rng::seed_from_u64(4),
        )
        .unwrap();
        perturb(&lora, 5);
        let (ids, mask) = batch();
        // The batch at once: its rows share a 20-token prefix, which runs once.
        loss_of(&m, &lora, &ids, &mask).backward();
        let together = grads(&lora);
        for (_, t) in lora.named() {
            let _ = t.grad().zero_();
        }
        // Row by row (a batch of one has no shared prefix), unpadded.
        for row in 0..2 {
            let keep = mask.get(row).nonzero().squeeze_dim(1);
            let ids = ids.get(row).index_select(0, &keep).unsqueeze(0);
            let mask = ids.ones_like();
            loss_of(&m, &lora, &ids, &mask).backward();
        }
        let apart = grads(&lora);
        let mut nonzero = 0;
        for ((n, _), (a, b)) in lora.named().iter().zip(together.iter().zip(&apart)) {
            let scale = b.abs().max().double_value(&[]).max(1e-6);
            let diff = max_abs_diff(a, b) / scale;
            assert!(
                diff < 1e-4,
                "{name} {n}: relative gradient difference {diff}"
            );
            nonzero += usize::from(a.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        }
        assert_eq!(
            nonzero,
            lora.named().len(),
            "{name}: every adapter tensor gets a gradient"
        );
    }
}

#[test]
fn bad_adapter_settings_are_refused() {
    let m = model(&tiny("tiny-llama"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let e = "qkv_proj".parse::<Target>().unwrap_err().to_string();
    assert!(
        e.contains("`qkv_proj`") && e.contains("q_proj, k_proj"),
        "{e}"
    );
    assert!(Lora::new(&m, 0, 8.0, &all_targets(), &mut rng).is_err());
    assert!(Lora::new(&m, 2, f64::NAN, &all_targets(), &mut rng).is_err());
    assert!(Lora::new(&m, 2, 8.0, &[], &mut rng).is_err());
}
