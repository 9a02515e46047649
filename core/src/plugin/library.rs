//! Opening a plugin library and reading what it offers. Everything the ABI lets a library get
//! wrong is checked here, once, in the order that gives the most useful message: the file,
//! the loader, the ABI version (before anything laid out by a possibly different ABI is read),
//! then the descriptor.
use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::{fmt, fs, io};

use chorus_plugin::abi::{
    AbiVersionFn, ChorusMetric, ChorusPlugin, ChorusRule, DescriptorFn, ABI_VERSION_SYMBOL,
    DESCRIPTOR_SYMBOL,
};
use chorus_plugin::{Aggregator, Metric, ABI_VERSION};
use jsonschema::Validator;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::abi::{MetricAbi, RuleAbi};
use super::{metric, rule, schema, PluginError};

/// A rule or metric a library offers, as `chorus plugins list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// What pipelines write in `rule:` or `metric:`.
    pub name: String,
    pub version: String,
    /// One line.
    pub description: String,
    /// The JSON Schema of its params (without `rule` or `metric`).
    pub schema: Value,
    /// Metrics only: whether a larger value is fairer.
    pub higher_is_fairer: Option<bool>,
}

/// What the host keeps of an offer besides what it shows.
struct Entry<A> {
    abi: A,
    validator: Validator,
}

/// A descriptor, read and checked: everything the host needs of it, owned.
struct Descriptor {
    name: String,
    version: String,
    rules: Vec<Offer>,
    rule_entries: Vec<Entry<RuleAbi>>,
    metrics: Vec<Offer>,
    metric_entries: Vec<Entry<MetricAbi>>,
    free_string: chorus_plugin::abi::FreeStringFn,
}

/// An opened plugin library. Shared (`Arc`) by every rule and metric built from it, so the
/// code they call stays loaded until the last one is dropped.
pub struct Library {
    path: PathBuf,
    sha256: String,
    descriptor: Descriptor,
    /// Every function pointer in `descriptor` points into this library; it is unloaded when
    /// the last `Arc<Library>` goes, after every instance built from it was destroyed.
    _handle: libloading::Library,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("name", &self.descriptor.name)
            .field("version", &self.descriptor.version)
            .field("rules", &self.descriptor.rules)
            .field("metrics", &self.descriptor.metrics)
            .finish_non_exhaustive()
    }
}

impl Library {
    /// Opens `path` (already resolved by the caller; never searched for), checks it is a
    /// chorus plugin of this ABI version with a well-formed descriptor, and records its
    /// SHA-256 (of the file as it was opened) for run manifests.
    pub fn open(path: &Path) -> Result<Arc<Library>, PluginError> {
        let path = path.to_path_buf();
        let metadata = fs::metadata(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => PluginError::Missing { path: path.clone() },
            _ => PluginError::Unreadable {
                path: path.clone(),
                cause: source,
            },
        })?;
        if !metadata.is_file() {
            return Err(PluginError::NotAFile { path });
        }
        let sha256 = sha256_file(&path).map_err(|cause| PluginError::Unreadable {
            path: path.clone(),
            cause,
        })?;
        // The loader searches its library path for a bare file name; `./` makes it this file.
        let file = match path.parent() {
            Some(parent) if parent.as_os_str().is_empty() => Path::new(".").join(&path),
            _ => path.clone(),
        };
        // SAFETY: loading runs the library's initialisers. A plugin is trusted native code the
        // user named (chorus_plugin.h: "Plugins are trusted native code running inside
        // chorus"); nothing else can be checked before it is loaded.
        let handle =
            unsafe { libloading::Library::new(&file) }.map_err(|e| PluginError::NotALibrary {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let missing = |symbol: &[u8]| PluginError::NoSymbols {
            path: path.clone(),
            symbol: String::from_utf8_lossy(symbol).into_owned(),
        };
        // SAFETY: the ABI declares `chorus_plugin_abi_version` as `uint32_t (void)`, the type
        // read here. It is the one symbol whose type no ABI version may change.
        let abi_version = unsafe { handle.get::<AbiVersionFn>(ABI_VERSION_SYMBOL) }
            .map_err(|_| missing(ABI_VERSION_SYMBOL))?;
        // SAFETY: as declared by the ABI; takes nothing and returns a number.
        let found = unsafe { abi_version() };
        if found != ABI_VERSION {
            return Err(PluginError::AbiVersion {
                path,
                found,
                expected: ABI_VERSION,
            });
        }
        // SAFETY: the library speaks this ABI version, which declares the descriptor function
        // as `const ChorusPlugin *(void)`.
        let descriptor = unsafe { handle.get::<DescriptorFn>(DESCRIPTOR_SYMBOL) }
            .map_err(|_| missing(DESCRIPTOR_SYMBOL))?;
        // SAFETY: as declared by the ABI; the pointer it returns is checked by `read`.
        let descriptor = unsafe { descriptor() };
        // SAFETY: `descriptor` came from this library's `chorus_plugin_descriptor`, which the
        // ABI makes NULL or a static `ChorusPlugin` valid while `handle` stays loaded.
        let parts = unsafe { read(descriptor) }.map_err(|problem| PluginError::Descriptor {
            path: path.clone(),
            problem,
        })?;
        Ok(Arc::new(Library {
            path,
            sha256,
            descriptor: parts,
            _handle: handle,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hex SHA-256 of the library file when it was opened, for run manifests.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    pub fn version(&self) -> &str {
        &self.descriptor.version
    }

    pub fn rules(&self) -> &[Offer] {
        &self.descriptor.rules
    }

    pub fn metrics(&self) -> &[Offer] {
        &self.descriptor.metrics
    }

    /// Every violation of rule `index`'s params schema by `params` (the knobs without
    /// `rule`), as (path inside params like `a.b[2].c`, empty for the object itself, message).
    /// Panics if `index` is out of range of [`rules`](Self::rules), like indexing.
    pub fn check_rule_params(
        &self,
        index: usize,
        params: &Map<String, Value>,
    ) -> Vec<(String, String)> {
        let schema = &self.descriptor.rules[index].schema;
        schema::check(
            &self.descriptor.rule_entries[index].validator,
            schema,
            params,
        )
    }

    /// As [`check_rule_params`](Self::check_rule_params), for metric `index`.
    pub fn check_metric_params(
        &self,
        index: usize,
        params: &Map<String, Value>,
    ) -> Vec<(String, String)> {
        let schema = &self.descriptor.metrics[index].schema;
        schema::check(
            &self.descriptor.metric_entries[index].validator,
            schema,
            params,
        )
    }

    /// Builds rule `index` through the plugin's `create`, for groups with these population
    /// shares; an error carries the plugin's message. Check the params first: the plugin may
    /// rely on its schema having been enforced. Panics if `index` is out of range.
    pub fn build_rule(
        self: &Arc<Self>,
        index: usize,
        params: &Map<String, Value>,
        populations: &[f64],
    ) -> Result<Box<dyn Aggregator>, PluginError> {
        let abi = self.descriptor.rule_entries[index].abi;
        Ok(Box::new(rule::PluginRule::build(
            self,
            index,
            abi,
            params,
            populations,
        )?))
    }

    /// Builds metric `index` through the plugin's `create`, as [`build_rule`](Self::build_rule).
    pub fn build_metric(
        self: &Arc<Self>,
        index: usize,
        params: &Map<String, Value>,
    ) -> Result<Box<dyn Metric>, PluginError> {
        let abi = self.descriptor.metric_entries[index].abi;
        Ok(Box::new(metric::PluginMetric::build(
            self, index, abi, params,
        )?))
    }

    /// "plugin rule `name` (path)": how every message about one offer starts.
    pub(super) fn who(&self, kind: &str, name: &str) -> String {
        format!("plugin {kind} `{name}` ({})", self.path.display())
    }

    /// The bytes of a string the plugin returned, handed back to the plugin's `free_string`
    /// (whoever allocates frees). NULL is `None`.
    ///
    /// # Safety
    /// `s` is NULL or a NUL-terminated string this library returned and nobody freed yet.
    pub(super) unsafe fn take_string(&self, s: *mut c_char) -> Option<Vec<u8>> {
        if s.is_null() {
            return None;
        }
        // SAFETY: the caller's promise.
        let bytes = unsafe { CStr::from_ptr(s) }.to_bytes().to_vec();
        // SAFETY: `s` came from this library and is freed once, here.
        unsafe { (self.descriptor.free_string)(s) };
        Some(bytes)
    }
}

impl Library {
    /// What a `create` call produced: the instance, or the plugin's refusal as a
    /// [`PluginError::Create`] naming the rule or metric and the library.
    ///
    /// # Safety
    /// `error` is NULL or a string this library's `create` returned just now.
    pub(super) unsafe fn created(
        &self,
        kind: &'static str,
        name: &str,
        status: i32,
        instance: *mut std::ffi::c_void,
        error: *mut c_char,
    ) -> Result<super::abi::Instance, PluginError> {
        // SAFETY: the caller's promise.
        let message = unsafe { self.take_string(error) };
        if status != chorus_plugin::abi::CHORUS_OK {
            return Err(PluginError::Create {
                kind,
                name: name.to_owned(),
                path: self.path().to_path_buf(),
                message: super::error::failure(status, message),
            });
        }
        Ok(super::abi::Instance(instance))
    }
}

/// JSON for the plugin, NUL-terminated.
pub(super) fn c_json(value: &Value) -> CString {
    CString::new(value.to_string()).expect("serde_json writes NUL as \\u0000")
}

/// Hex SHA-256 of a file's contents, read in chunks.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Reads and checks a descriptor.
///
/// # Safety
/// `d` is NULL or points to a `ChorusPlugin` of this ABI version whose pointers are NULL or
/// valid while the library stays loaded: strings NUL-terminated, arrays of the given counts.
unsafe fn read(d: *const ChorusPlugin) -> Result<Descriptor, String> {
    if d.is_null() {
        return Err("chorus_plugin_descriptor() returned NULL".into());
    }
    // SAFETY: the caller's promise. Fields are read by value through the raw pointer (no
    // reference to the struct is made; function pointers as the `Option`s they are), the strings
    // through `c_str`, and each array element through `read_rule` / `read_metric`, whose
    // promises are the caller's.
    unsafe {
        let found = (*d).abi_version;
        if found != ABI_VERSION {
            return Err(format!(
                "its abi_version field is {found} but chorus_plugin_abi_version() returned \
                 {ABI_VERSION}"
            ));
        }
        let free_string = (*d).free_string;
        let mut descriptor = Descriptor {
            name: text(c_str((*d).name), "the library's name")?,
            version: text(c_str((*d).version), "the library's version")?,
            free_string: present(free_string, "the library", "free_string")?,
            rules: Vec::new(),
            rule_entries: Vec::new(),
            metrics: Vec::new(),
            metric_entries: Vec::new(),
        };
        for i in 0..counted((*d).rules, (*d).rule_count, "rules")? {
            let (offer, entry) = read_rule((*d).rules.add(i), i, &descriptor.rules)?;
            descriptor.rules.push(offer);
            descriptor.rule_entries.push(entry);
        }
        for i in 0..counted((*d).metrics, (*d).metric_count, "metrics")? {
            let (offer, entry) = read_metric((*d).metrics.add(i), i, &descriptor.metrics)?;
            descriptor.metrics.push(offer);
            descriptor.metric_entries.push(entry);
        }
        if descriptor.rules.is_empty() && descriptor.metrics.is_empty() {
            return Err("it offers no rules and no metrics".into());
        }
        Ok(descriptor)
    }
}

/// Reads and checks rule `i` of a descriptor; `taken` are the rules before it.
///
/// # Safety
/// `r` points to a `ChorusRule` whose strings are NULL or NUL-terminated.
unsafe fn read_rule(
    r: *const ChorusRule,
    i: usize,
    taken: &[Offer],
) -> Result<(Offer, Entry<RuleAbi>), String> {
    // SAFETY: the caller's promise; fields are read as in `read`.
    let (strings, create, aggregate, destroy) = unsafe {
        (
            [
                (*r).name,
                (*r).version,
                (*r).description,
                (*r).params_schema,
            ]
            .map(|s| c_str(s)),
            (*r).create,
            (*r).aggregate,
            (*r).destroy,
        )
    };
    let (offer, validator) = offer("rule", i, strings, None, taken)?;
    let who = format!("rule `{}`", offer.name);
    let abi = RuleAbi {
        create: present(create, &who, "create")?,
        aggregate: present(aggregate, &who, "aggregate")?,
        destroy: present(destroy, &who, "destroy")?,
    };
    Ok((offer, Entry { abi, validator }))
}

/// Reads and checks metric `i` of a descriptor; `taken` are the metrics before it.
///
/// # Safety
/// `m` points to a `ChorusMetric` whose strings are NULL or NUL-terminated.
unsafe fn read_metric(
    m: *const ChorusMetric,
    i: usize,
    taken: &[Offer],
) -> Result<(Offer, Entry<MetricAbi>), String> {
    // SAFETY: the caller's promise; fields are read as in `read`.
    let (strings, higher_is_fairer, create, compute, destroy) = unsafe {
        (
            [
                (*m).name,
                (*m).version,
                (*m).description,
                (*m).params_schema,
            ]
            .map(|s| c_str(s)),
            (*m).higher_is_fairer,
            (*m).create,
            (*m).compute,
            (*m).destroy,
        )
    };
    let higher_is_fairer = match higher_is_fairer {
        0 => false,
        1 => true,
        other => {
            return Err(format!(
                "metric {i}'s higher_is_fairer is {other}, not 0 or 1"
            ))
        }
    };
    let (offer, validator) = offer("metric", i, strings, Some(higher_is_fairer), taken)?;
    let who = format!("metric `{}`", offer.name);
    let abi = MetricAbi {
        create: present(create, &who, "create")?,
        compute: present(compute, &who, "compute")?,
        destroy: present(destroy, &who, "destroy")?,
    };
    Ok((offer, Entry { abi, validator }))
}

/// One rule's or metric's strings (name, version, description, params_schema): a name
/// pipelines can write that no earlier offer of the same kind (`taken`) has, and a params
/// schema that compiles.
fn offer(
    kind: &str,
    i: usize,
    strings: [Option<&CStr>; 4],
    higher_is_fairer: Option<bool>,
    taken: &[Offer],
) -> Result<(Offer, Validator), String> {
    let [name, version, description, params_schema] = strings;
    let name = text(name, &format!("{kind} {i}'s name"))?;
    if !is_name(&name) {
        return Err(format!(
            "{kind} {i} is named {name:?}; a name is letters, digits and _, not starting with a \
             digit"
        ));
    }
    if taken.iter().any(|o| o.name == name) {
        return Err(format!("two {kind}s are named `{name}`"));
    }
    let who = format!("{kind} `{name}`");
    let version = text(version, &format!("{who}'s version"))?;
    let description = text(description, &format!("{who}'s description"))?;
    let params_schema = text(params_schema, &format!("{who}'s params_schema"))?;
    let (schema, validator) =
        schema::compile(&params_schema).map_err(|e| format!("{who}'s {e}"))?;
    let offer = Offer {
        name,
        version,
        description,
        schema,
        higher_is_fairer,
    };
    Ok((offer, validator))
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what a pipeline can write as a rule or metric name.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A descriptor string, `None` for NULL. The library outlives every use (`read` copies it).
///
/// # Safety
/// `s` is NULL or NUL-terminated and stays valid while the library is loaded.
unsafe fn c_str<'a>(s: *const c_char) -> Option<&'a CStr> {
    // SAFETY: the caller's promise; NULL is `None`.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) })
}

/// A descriptor string as an owned UTF-8 `String`.
fn text(s: Option<&CStr>, what: &str) -> Result<String, String> {
    s.ok_or_else(|| format!("{what} is NULL"))?
        .to_str()
        .map(str::to_owned)
        .map_err(|e| format!("{what} is not UTF-8 ({e})"))
}

/// A function pointer that must not be NULL.
fn present<F>(f: Option<F>, who: &str, field: &str) -> Result<F, String> {
    f.ok_or_else(|| format!("{who}'s {field} function is NULL"))
}

/// The length of a descriptor array, which may be NULL only when empty.
fn counted<T>(array: *const T, count: usize, what: &str) -> Result<usize, String> {
    if array.is_null() && count > 0 {
        return Err(format!("{what} is NULL but {count} {what} are announced"));
    }
    Ok(count)
}
