//! Checkpoints of the round loop: everything that carries from one round to the next.
//!
//! Stages before the loop are pure functions of the pipeline and seed, so a resumed run
//! recomputes them instead of storing them. What must be stored is the loop's state: the
//! trained policy with its optimiser moments, and each stateful stage's own state (an
//! adaptive aggregator's history). Random streams are keyed by (stage, round), so nothing of
//! the generators needs saving. A checkpoint is a folder `checkpoint-<round>/`, written whole
//! and then published by atomically replacing `checkpoint.json`, which names it.
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::Tensor;

use crate::record::write_atomic;
use crate::stage::{Aggregated, Artifact, PolicyState};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {cause}")]
    Write { path: PathBuf, cause: String },
    #[error("cannot read checkpoint {path}: {cause}\n  hint: the run folder may be damaged; start it again with `chorus run FILE --force`")]
    Read { path: PathBuf, cause: String },
}

/// The index file: which round the latest complete checkpoint holds, and where.
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    round: u32,
    folder: String,
    /// Per stage id: what kind of state was saved for it.
    saved: Vec<(String, Saved)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Saved {
    /// `<stage>.safetensors` holds the weights and Adam moments; the step count is here.
    Policy { adam_step: i64 },
    /// An aggregator's state and last weights.
    Aggregated {
        state: Value,
        weights: Vec<f64>,
        groups: Vec<String>,
    },
}

/// Saves the state of round `round` (the artifacts of stages `ids`) into `run_dir`.
pub fn save(
    run_dir: &Path,
    round: u32,
    ids: &[&str],
    artifacts: &[Option<Artifact>],
) -> Result<(), CheckpointError> {
    let folder = format!("checkpoint-{round}");
    let dir = run_dir.join(&folder);
    let err = |path: &Path, cause: &dyn std::fmt::Display| CheckpointError::Write {
        path: path.to_path_buf(),
        cause: cause.to_string(),
    };
    fs::create_dir_all(&dir).map_err(|e| err(&dir, &e))?;
    let mut saved = Vec::new();
    for (id, artifact) in ids.iter().zip(artifacts) {
        match artifact {
            Some(Artifact::Policy(state)) => {
                let state = state.lock().map_err(|_| err(&dir, &"a poisoned policy"))?;
                let path = dir.join(format!("{id}.safetensors"));
                let mut tensors: Vec<(String, Tensor)> = state
                    .policy
                    .state()
                    .into_iter()
                    .map(|(n, t)| (format!("policy/{n}"), t))
                    .collect();
                for (n, m, v) in state.adam.moments() {
                    tensors.push((format!("adam_m/{n}"), m));
                    tensors.push((format!("adam_v/{n}"), v));
                }
                Tensor::write_safetensors(&tensors, &path).map_err(|e| err(&path, &e))?;
                saved.push((
                    id.to_string(),
                    Saved::Policy {
                        adam_step: state.adam.step,
                    },
                ));
            }
            Some(Artifact::Aggregated(a)) => saved.push((
                id.to_string(),
                Saved::Aggregated {
                    state: a.state.clone(),
                    weights: a.weights.clone(),
                    groups: a.groups.clone(),
                },
            )),
            _ => {}
        }
    }
    let index = Index {
        round,
        folder,
        saved,
    };
    let text = serde_json::to_string_pretty(&index).expect("an index serialises");
    let index_path = run_dir.join("checkpoint.json");
    write_atomic(&index_path, text.as_bytes()).map_err(|e| err(&index_path, &e))?;
    // Older checkpoints are superseded only once the new one is published.
    if let Ok(entries) = fs::read_dir(run_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("checkpoint-") && name != index.folder {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}

/// The round of the latest checkpoint in `run_dir`; `None` when the run wrote none. An index
/// that exists but cannot be read is an error: resuming must continue exactly or refuse, never
/// quietly start over.
pub fn latest_round(run_dir: &Path) -> Result<Option<u32>, CheckpointError> {
    let path = run_dir.join("checkpoint.json");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CheckpointError::Read {
                path,
                cause: e.to_string(),
            })
        }
    };
    serde_json::from_str::<Index>(&text)
        .map(|i| Some(i.round))
        .map_err(|e| CheckpointError::Read {
            path,
            cause: e.to_string(),
        })
}

/// Restores the saved states into `artifacts` (which hold the freshly recomputed stages
/// before the loop): a saved policy is loaded into a copy of the artifact of the same stage
/// id, or of `template` (the stage it is carried into) when that stage has not run yet.
/// Returns the checkpoint's round.
pub fn restore(
    run_dir: &Path,
    ids: &[&str],
    template: impl Fn(usize) -> Option<usize>,
    artifacts: &mut [Option<Artifact>],
) -> Result<u32, CheckpointError> {
    let index_path = run_dir.join("checkpoint.json");
    let err = |path: &Path, cause: &dyn std::fmt::Display| CheckpointError::Read {
        path: path.to_path_buf(),
        cause: cause.to_string(),
    };
    let text = fs::read_to_string(&index_path).map_err(|e| err(&index_path, &e))?;
    let index: Index = serde_json::from_str(&text).map_err(|e| err(&index_path, &e))?;
    let dir = run_dir.join(&index.folder);
    for (id, saved) in &index.saved {
        let Some(i) = ids.iter().position(|s| s == id) else {
            return Err(err(
                &index_path,
                &format!("it names stage `{id}`, which the pipeline does not have"),
            ));
        };
        let artifact = match saved {
            Saved::Aggregated {
                state,
                weights,
                groups,
            } => Artifact::Aggregated(Arc::new(Aggregated {
                rewards: Vec::new(),
                unparsed: None,
                groups: groups.clone(),
                weights: weights.clone(),
                group_rewards: Vec::new(),
                state: state.clone(),
            })),
            Saved::Policy { adam_step } => {
                let source = artifacts[i]
                    .clone()
                    .or_else(|| template(i).and_then(|t| artifacts[t].clone()));
                let Some(Artifact::Policy(source)) = source else {
                    return Err(err(
                        &dir,
                        &format!("stage `{id}` has no policy to load the saved weights into"),
                    ));
                };
                let source = source.lock().map_err(|_| err(&dir, &"a poisoned policy"))?;
                let path = dir.join(format!("{id}.safetensors"));
                let tensors = Tensor::read_safetensors(&path).map_err(|e| err(&path, &e))?;
                let restored =
                    load_policy(&source, &tensors, *adam_step).map_err(|e| err(&path, &e))?;
                Artifact::Policy(Arc::new(Mutex::new(restored)))
            }
        };
        artifacts[i] = Some(artifact);
    }
    Ok(index.round)
}

/// Copies a saved tensor into its place, refusing a shape that does not fit (a checkpoint of a
/// differently sized network) rather than letting libtorch broadcast it or panic.
fn copy_checked(dst: &mut Tensor, src: &Tensor, name: &str) -> Result<(), String> {
    if dst.size() != src.size() {
        return Err(format!(
            "its tensor `{name}` has shape {:?} where the network needs {:?}",
            src.size(),
            dst.size()
        ));
    }
    // Trainable tensors may require gradients; restoring them is no part of any graph.
    let _guard = tch::no_grad_guard();
    dst.copy_(src);
    Ok(())
}

/// A copy of `like` with weights and Adam state from `tensors`.
fn load_policy(
    like: &PolicyState,
    tensors: &[(String, Tensor)],
    adam_step: i64,
) -> Result<PolicyState, String> {
    let find = |name: String| {
        tensors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| format!("it lacks the tensor `{name}`"))
    };
    // The fork shares the frozen parts (the reference) and takes the saved trainable state.
    let policy = like.policy.fork();
    for (name, mut var) in policy.state() {
        copy_checked(&mut var, find(format!("policy/{name}"))?, &name)?;
    }
    let mut adam = like.adam.duplicate();
    adam.step = adam_step;
    for (name, mut m, mut v) in adam.moments() {
        copy_checked(&mut m, find(format!("adam_m/{name}"))?, &name)?;
        copy_checked(&mut v, find(format!("adam_v/{name}"))?, &name)?;
    }
    Ok(PolicyState {
        policy,
        adam,
        stats: None,
        pretrained: None,
    })
}
