//! The run folder: manifest, metrics, summary and log, each written atomically (temp file +
//! rename) so a killed run never leaves a half-written file behind.
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::spec::Loaded;
use crate::stage::{Evaluation, Reading};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    // The cause is part of the message (not a `#[source]`) so that it is printed once,
    // before the hint.
    #[error("cannot write the run folder {path}: {cause}\n  hint: choose a writable place with `--out DIR` or the pipeline's `output`")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{0} is not a chorus run folder (it has no readable manifest.json)\n  hint: pass the folder that `chorus run` printed, e.g. runs/paper-1a2b3c4d5e6f")]
    NotARun(PathBuf),
    #[error("{dir} holds a run of a different pipeline (hash {found}…, this pipeline {expected}…)\n  hint: resume with the same pipeline file and overrides, or start a new run without --resume")]
    OtherPipeline {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{0} is being written by another chorus process right now\n  hint: wait for it to finish (a grid cell or a shell running the same pipeline), or write elsewhere with `--out DIR`")]
    Busy(PathBuf),
    #[error("{path} is damaged at line {line}: {cause}\n  hint: start the run again with `chorus run FILE --force`")]
    Damaged {
        path: PathBuf,
        line: usize,
        cause: String,
    },
}

/// What [`Record::create`] found.
#[derive(Debug)]
pub enum Opened {
    /// A folder ready for this run.
    New(Record),
    /// The folder already holds a complete run of this exact pipeline (same hash): a run is a
    /// pure function of its pipeline, so there is nothing to redo unless forced.
    Complete(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |cause| RecordError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| WriteError { path, cause }
    };
    let mut f = File::create(&tmp).map_err(failed(&tmp))?;
    f.write_all(bytes).map_err(failed(&tmp))?;
    f.sync_all().map_err(failed(&tmp))?;
    fs::rename(&tmp, path).map_err(failed(path))
}

/// A file that could not be written (whole).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {cause}")]
pub struct WriteError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

impl From<WriteError> for RecordError {
    fn from(WriteError { path, cause }: WriteError) -> Self {
        RecordError::Io { path, cause }
    }
}

/// A run's identity: the SHA-256 of everything that can change its numbers, and nothing else.
///
/// In: the resolved pipeline (after overrides) without the fields that only say where and how
/// the run is written (`name`, `output`, `loop.checkpoint_every`) or where its plugins lie
/// (`plugins`); each plugin library's SHA-256, in the pipeline's order (a rebuilt plugin is a
/// new run, a moved one is not); the digest of chorus's own computing code (`CODE_DIGEST`, made
/// at build time, so no version has to be bumped by hand) and the libtorch version. Keys are
/// hashed in sorted order, so the order a file lists them in does not matter.
pub fn pipeline_hash(loaded: &Loaded) -> String {
    let mut pipeline = serde_json::to_value(&loaded.pipeline).expect("a pipeline serialises");
    for field in ["name", "output", "plugins"] {
        pipeline.as_object_mut().map(|p| p.remove(field));
    }
    if let Some(l) = pipeline.get_mut("loop").and_then(Value::as_object_mut) {
        l.remove("checkpoint_every");
    }
    let mut hasher = Sha256::new();
    hasher.update(crate::CODE_DIGEST);
    hasher.update([0]);
    hasher.update(crate::LIBTORCH_VERSION);
    hasher.update([0]);
    for lib in loaded.registry.libraries() {
        hasher.update(lib.sha256());
        hasher.update([0]);
    }
    // A real survey's files, by content: the same pipeline on edited data is another run.
    for file in loaded.pipeline.data.files(&loaded.base) {
        hasher.update(std::fs::read(&file).unwrap_or_default());
        hasher.update([0]);
    }
    hasher.update(canonical(&pipeline));
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON text with every object's keys sorted, whatever serde_json's map keeps.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// What a finished run says, as a value (`run::run` returns it; `summary.json` holds it), so
/// that grids and reports need not parse CSV.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Each evaluation stage's last evaluation, by stage id.
    pub evaluations: Vec<StageEvaluation>,
    /// The mean aggregated reward of the last training round, when the pipeline trains.
    pub final_reward: Option<f64>,
    /// Wall time of the process that finished the run (a resumed run: the resumed part).
    pub seconds: f64,
}

impl Summary {
    /// The summary a finished run folder holds.
    pub fn read(dir: &Path) -> Result<Summary, RecordError> {
        let path = dir.join("summary.json");
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| RecordError::Damaged {
            path,
            line: e.line(),
            cause: e.to_string(),
        })
    }

    /// The last evaluation of stage `id`.
    pub fn evaluation(&self, id: &str) -> Option<&Evaluation> {
        self.evaluations
            .iter()
            .find(|e| e.stage == id)
            .map(|e| &e.evaluation)
    }
}

/// One evaluation stage's last evaluation and its round.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StageEvaluation {
    pub stage: String,
    pub round: u32,
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct MetricRow {
    pub round: u32,
    pub stage: String,
    /// The evaluated policy, on evaluation rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The group, or `None` for metrics over all groups (fairness).
    pub group: Option<String>,
    pub metric: String,
    pub value: f64,
}

/// An open run folder.
#[derive(Debug)]
pub struct Record {
    dir: PathBuf,
    manifest: Mutex<Value>,
    rows: Mutex<Vec<MetricRow>>,
    /// Last evaluation per stage, for the summary table.
    last: Mutex<Vec<(String, u32, Evaluation)>>,
    log: Mutex<File>,
    /// Held for as long as the record is open: one writer per run folder.
    _lock: File,
}

impl Record {
    /// Creates `<out>/<name>-<hash12>`; `out` defaults to the pipeline's `output`.
    pub fn create(loaded: &Loaded, out: Option<&Path>, force: bool) -> Result<Opened, RecordError> {
        let hash = pipeline_hash(loaded);
        let p = &loaded.pipeline;
        let dir = Self::folder(loaded, out);
        let manifest_path = dir.join("manifest.json");
        if !force {
            if let Ok(text) = fs::read_to_string(&manifest_path) {
                let old: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if old["status"] == "complete" && old["pipeline_hash"] == hash.as_str() {
                    return Ok(Opened::Complete(dir));
                }
            }
        }
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock = lock(&dir)?;
        let log_path = dir.join("run.log");
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let manifest = json!({
            "status": "running",
            "name": p.name,
            "pipeline_file": loaded.file,
            "pipeline_hash": hash,
            "seed": p.seed,
            "overrides": loaded.overrides.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "chorus_version": env!("CARGO_PKG_VERSION"),
            "code_digest": crate::CODE_DIGEST,
            "libtorch_version": crate::LIBTORCH_VERSION,
            "git_commit": git_commit(),
            "plugins": loaded.registry.library_records(),
            // Where the pipeline's relative data paths resolve, for `--resume` without FILE.
            "base": std::path::absolute(&loaded.base).unwrap_or_else(|_| loaded.base.clone()),
            "started_at": now(),
            "pipeline": p,
        });
        let record = Record {
            dir,
            manifest: Mutex::new(manifest),
            rows: Mutex::new(Vec::new()),
            last: Mutex::new(Vec::new()),
            log: Mutex::new(log),
            _lock: lock,
        };
        record.write_manifest()?;
        Ok(Opened::New(record))
    }

    /// Where [`Record::create`] puts the run of `loaded`: `<out>/<name>-<first 12 hex of its
    /// identity>`, `out` defaulting to the pipeline's `output`.
    pub fn folder(loaded: &Loaded, out: Option<&Path>) -> PathBuf {
        let p = &loaded.pipeline;
        let base = out.map_or_else(|| PathBuf::from(&p.output), Path::to_path_buf);
        base.join(format!("{}-{}", p.name, &pipeline_hash(loaded)[..12]))
    }

    /// Reopens the run folder `dir` to continue it after its checkpoint at `round` (rows of
    /// later rounds, written before the run was killed, are dropped); with no checkpoint
    /// (`None`) the run starts over and no row is kept, so none is written twice. The folder
    /// must hold a run of exactly this pipeline.
    pub fn reopen(dir: &Path, loaded: &Loaded, round: Option<u32>) -> Result<Record, RecordError> {
        let manifest = read_manifest(dir)?;
        let lock = lock(dir)?;
        let hash = pipeline_hash(loaded);
        let found = manifest["pipeline_hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if found != hash {
            return Err(RecordError::OtherPipeline {
                dir: dir.to_path_buf(),
                found: found.chars().take(12).collect(),
                expected: hash[..12].to_owned(),
            });
        }
        let metrics = dir.join("metrics.jsonl");
        let text = fs::read_to_string(&metrics).unwrap_or_default();
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let row: MetricRow = serde_json::from_str(line).map_err(|e| RecordError::Damaged {
                path: metrics.clone(),
                line: i + 1,
                cause: e.to_string(),
            })?;
            if round.is_some_and(|round| row.round <= round) {
                rows.push(row);
            }
        }
        let log_path = dir.join("run.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let mut manifest = manifest;
        manifest["status"] = json!("running");
        manifest["resumed_after_round"] = json!(round.unwrap_or(0));
        let record = Record {
            dir: dir.to_path_buf(),
            manifest: Mutex::new(manifest),
            last: Mutex::new(last_evaluations(&rows)),
            rows: Mutex::new(rows),
            log: Mutex::new(log),
            _lock: lock,
        };
        record.write_manifest()?;
        Ok(record)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a line to `run.log`. The log is the one stream in the folder; it is appended,
    /// not replaced, so a crash leaves every line written before it.
    pub fn log(&self, line: &str) {
        let mut f = self.log.lock().expect("log lock");
        let _ = writeln!(f, "{} {line}", now());
    }

    /// Adds one stage's readings for a round.
    pub fn add_readings(
        &self,
        stage: &str,
        round: u32,
        policy: Option<&str>,
        readings: &[Reading],
    ) {
        let mut rows = self.rows.lock().expect("rows lock");
        rows.extend(readings.iter().map(|r| MetricRow {
            round,
            stage: stage.to_owned(),
            policy: policy.map(str::to_owned),
            group: r.group.clone(),
            metric: r.metric.clone(),
            value: r.value,
        }));
    }

    /// Remembers an evaluation stage's latest result for `summary.csv`.
    pub fn keep_for_summary(&self, stage: &str, round: u32, e: &Evaluation) {
        let mut last = self.last.lock().expect("last lock");
        last.retain(|(s, _, _)| s != stage);
        last.push((stage.to_owned(), round, e.clone()));
    }

    /// Rewrites `metrics.jsonl` with every row so far.
    pub fn flush_metrics(&self) -> Result<(), RecordError> {
        let rows = self.rows.lock().expect("rows lock");
        let mut text = String::new();
        for row in rows.iter() {
            text.push_str(&serde_json::to_string(row).expect("a row serialises"));
            text.push('\n');
        }
        Ok(write_atomic(
            &self.dir.join("metrics.jsonl"),
            text.as_bytes(),
        )?)
    }

    /// Writes the summary table and `summary.json`, and marks the run `status` (complete or
    /// failed); `seconds` is the wall time this process spent on the run. Returns the summary.
    pub fn finish(&self, status: &str, seconds: f64) -> Result<Summary, RecordError> {
        self.flush_metrics()?;
        write_atomic(&self.dir.join("summary.csv"), self.summary_csv().as_bytes())?;
        let summary = self.summary(seconds);
        let json = serde_json::to_string_pretty(&summary).expect("a summary serialises");
        write_atomic(&self.dir.join("summary.json"), json.as_bytes())?;
        {
            let mut m = self.manifest.lock().expect("manifest lock");
            m["status"] = json!(status);
            m["finished_at"] = json!(now());
        }
        self.write_manifest()?;
        Ok(summary)
    }

    /// The run as a value: each evaluation stage's last evaluation and the last round's
    /// training reward.
    fn summary(&self, seconds: f64) -> Summary {
        let mut evaluations = self.last.lock().expect("last lock").clone();
        evaluations.sort_by(|a, b| a.0.cmp(&b.0));
        let final_reward = self
            .rows
            .lock()
            .expect("rows lock")
            .iter()
            .rfind(|r| r.metric == "train_reward" && r.group.is_none())
            .map(|r| r.value);
        Summary {
            evaluations: evaluations
                .into_iter()
                .map(|(stage, round, evaluation)| StageEvaluation {
                    stage,
                    round,
                    evaluation,
                })
                .collect(),
            final_reward,
            seconds,
        }
    }

    /// One row per evaluation stage at its last round: fairness metrics, then each group's
    /// alignment (`alignment:<group>`), in a wide layout ready for a paper table.
    pub fn summary_csv(&self) -> String {
        let mut last = self.last.lock().expect("last lock").clone();
        last.sort_by(|a, b| a.0.cmp(&b.0));
        let groups: Vec<String> = last.first().map(|l| l.2.groups.clone()).unwrap_or_default();
        // Every metric any evaluation reported, in order of first appearance (the built-in six
        // first); a stage that did not report one leaves its cell empty.
        let mut metrics: Vec<&str> = Vec::new();
        for (_, _, e) in &last {
            for (name, _) in &e.fairness {
                if !metrics.contains(&name.as_str()) {
                    metrics.push(name);
                }
            }
        }
        let mut out = String::from("stage,policy,round");
        for name in &metrics {
            out.push(',');
            out.push_str(name);
        }
        for g in &groups {
            out.push_str(&format!(",alignment:{g}"));
        }
        out.push('\n');
        for (stage, round, e) in &last {
            out.push_str(&format!("{stage},{},{round}", e.policy));
            for name in &metrics {
                match e.fairness.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => out.push_str(&format!(",{v:.6}")),
                    None => out.push(','),
                }
            }
            for v in &e.alignment {
                out.push_str(&format!(",{v:.6}"));
            }
            out.push('\n');
        }
        out
    }

    fn write_manifest(&self) -> Result<(), RecordError> {
        let m = self.manifest.lock().expect("manifest lock");
        let text = serde_json::to_string_pretty(&*m).expect("the manifest serialises");
        Ok(write_atomic(
            &self.dir.join("manifest.json"),
            text.as_bytes(),
        )?)
    }
}

/// Takes the exclusive lock of run folder `dir` (its `run.lock`), so that two processes (two
/// shells, two array tasks of a grid) never write one run at once; the second is refused.
/// The operating system releases it when the process ends, even on SIGKILL.
fn lock(dir: &Path) -> Result<File, RecordError> {
    let path = dir.join("run.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(RecordError::Busy(dir.to_path_buf())),
        Err(fs::TryLockError::Error(cause)) => Err(RecordError::Io { path, cause }),
    }
}

/// The manifest of run folder `dir`.
pub fn read_manifest(dir: &Path) -> Result<Value, RecordError> {
    fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|m| m["pipeline_hash"].is_string())
        .ok_or_else(|| RecordError::NotARun(dir.to_path_buf()))
}

/// Each evaluation stage's latest evaluation, rebuilt from metric rows.
fn last_evaluations(rows: &[MetricRow]) -> Vec<(String, u32, Evaluation)> {
    let mut latest: Vec<(String, u32, String)> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == "alignment") {
        match latest.iter_mut().find(|(s, _, _)| *s == r.stage) {
            Some(entry) if entry.1 < r.round => entry.1 = r.round,
            Some(_) => {}
            None => latest.push((
                r.stage.clone(),
                r.round,
                r.policy.clone().unwrap_or_default(),
            )),
        }
    }
    latest
        .into_iter()
        .map(|(stage, round, policy)| {
            let at = |r: &&MetricRow| r.stage == stage && r.round == round;
            let (groups, alignment) = rows
                .iter()
                .filter(|r| at(r) && r.metric == "alignment")
                .map(|r| (r.group.clone().unwrap_or_default(), r.value))
                .unzip();
            let fairness = rows
                .iter()
                .filter(|r| at(r) && r.group.is_none())
                .map(|r| (r.metric.clone(), r.value))
                .collect();
            let e = Evaluation {
                policy,
                groups,
                alignment,
                fairness,
            };
            (stage, round, e)
        })
        .collect()
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The commit of the working directory's git checkout, when there is one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::pipeline_hash;
    use crate::spec::load_str;

    const BASE: &str = "name: a
seed: 1
output: runs
data: {kind: simulator, questions: 20, options: 3, groups: {count: 2}}
rounds: 2
stages:
  - {id: split, kind: split, params: {eval_fraction: 0.2, respondents: 50}}
  - {id: policy, kind: policy, needs: [split]}
loop:
  checkpoint_every: 10
  carry: [{from: policy, to: ppo}]
  stages:
    - {id: rollout, kind: rollout, needs: [split, policy]}
    - {id: score, kind: score, needs: [split, rollout, rm]}
    - {id: aggregate, kind: aggregate, needs: [score], params: {rule: tilted, temperature: -2}}
    - {id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}
";

    fn hash(text: &str) -> String {
        let text = text.replace(
            "stages:\n  - {id: split",
            "stages:\n  - {id: rm, kind: reward_model, needs: [split], params: {source: oracle}}\n  - {id: split",
        );
        pipeline_hash(&load_str(Path::new("p.yaml"), &text, &[]).unwrap())
    }

    /// The identity changes exactly when the numbers can: not with the run's name, its output
    /// folder, how often it is checkpointed or the order keys are written in.
    #[test]
    fn identity_covers_what_changes_numbers_only() {
        let base = hash(BASE);
        for same in [
            BASE.replace("name: a", "name: b"),
            BASE.replace("output: runs", "output: elsewhere"),
            BASE.replace("checkpoint_every: 10", "checkpoint_every: 1"),
            BASE.replace(
                "{rule: tilted, temperature: -2}",
                "{temperature: -2, rule: tilted}",
            ),
        ] {
            assert_eq!(hash(&same), base, "{same}");
        }
        for different in [
            BASE.replace("seed: 1", "seed: 2"),
            BASE.replace("temperature: -2", "temperature: -3"),
            BASE.replace("rounds: 2", "rounds: 3"),
        ] {
            assert_ne!(hash(&different), base, "{different}");
        }
    }
}
