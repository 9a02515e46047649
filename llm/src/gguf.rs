//! A reader for GGUF files (versions 2 and 3), the single-file model format of llama.cpp.
//!
//! chorus reads GGUF itself rather than through candle's reader: that would pull a second
//! tensor framework into a crate that already links libtorch, and the format is small — a
//! header, typed key/value metadata, a table of tensors, then aligned tensor data. The file
//! is memory-mapped, so opening a 100 MB model parses only its few megabytes of metadata and
//! tensor data is read (and dequantized, see [`crate::quant`]) only when asked for.
//!
//! Every count and length in the file is checked against the bytes actually left before
//! anything is allocated, so a corrupt or hostile file yields a [`GgufError`] naming the file
//! and the place, never a panic or an allocation of the size some garbage word claims.
//!
//! Layout (all little-endian; strings are a u64 byte length then UTF-8 bytes):
//! `"GGUF"`, u32 version, u64 tensor count, u64 key/value count; each key/value is a string
//! key, a u32 value type and the value (an array is a u32 element type, a u64 count and the
//! elements); each tensor is a string name, u32 dimension count, u64 dimensions (fastest
//! varying first), u32 ggml type and a u64 offset into the data section; the data section
//! starts at the next multiple of `general.alignment` (32 when absent).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::quant::{self, QuantError};

/// The GGUF versions this reader understands. Version 1 used 32-bit counts and lengths and
/// has not been written by llama.cpp since 2023.
const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];

/// ggml tensors have at most four dimensions (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// How deep arrays of arrays may nest. GGUF allows nesting but no model uses it; the limit
/// keeps a crafted file from recursing the reader into a stack overflow.
const MAX_ARRAY_DEPTH: u32 = 8;

/// The smallest possible encodings, used to refuse counts the rest of the file cannot hold:
/// a key/value is at least a key length, a type and a one-byte value; a tensor description at
/// least a name length, a dimension count, a type and an offset.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// A GGUF file, memory-mapped: its metadata and tensor table parsed, tensor data on demand.
pub struct Gguf {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    map: Mmap,
    data_start: usize,
}

/// A metadata value, typed as the file types it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

/// One entry of the tensor table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF order: `dims[0]` varies fastest (the row length), so a 2-D tensor is a row-major
    /// `[dims[1], dims[0]]` matrix.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Where the data starts, counted from the start of the data section.
    pub offset: u64,
}

/// The ggml tensor types chorus can dequantize: those llama.cpp's common F16/BF16 exports and
/// Q8_0, Q4_0, Q4_1, Q4_K_M/Q4_K_S quantizations are made of.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q4_K,
    Q6_K,
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: cannot read: {cause}")]
    Io { path: PathBuf, cause: String },
    #[error("{path}: not a GGUF file: it starts with {found} where a GGUF file starts with \"GGUF\"\n  hint: pass a .gguf file as llama.cpp writes them, or a Hugging Face model folder")]
    Magic { path: PathBuf, found: String },
    #[error(
        "{path}: GGUF version {version} is not supported; chorus reads versions 2 and 3{hint}"
    )]
    Version {
        path: PathBuf,
        version: u32,
        hint: &'static str,
    },
    #[error("{path}: the file ends inside {place}: {need} bytes needed at offset {at}, but the file has {len} bytes\n  hint: the file is truncated or corrupt; download it again")]
    Truncated {
        path: PathBuf,
        place: String,
        at: u64,
        need: u64,
        len: u64,
    },
    #[error("{path}: {place} claims {count} {items}, more than the {left} bytes left in the file can hold\n  hint: the file is truncated or corrupt; download it again")]
    Count {
        path: PathBuf,
        place: String,
        count: u64,
        items: &'static str,
        left: u64,
    },
    #[error("{path}: {place}: {problem}\n  hint: the file is corrupt, or was written by a tool that does not follow the GGUF specification")]
    Malformed {
        path: PathBuf,
        place: String,
        problem: String,
    },
    #[error("{path}: general.alignment is {found}; it must be an unsigned integer, a power of two no larger than 2^30 (GGUF's default is 32)")]
    Alignment { path: PathBuf, found: String },
    #[error("{path}: tensor `{tensor}` has type {type_name} (ggml type id {id}), which chorus cannot read\n  hint: chorus reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K tensors; pick a file quantized as F16, Q8_0, Q4_0, Q4_1, Q4_K_M or Q4_K_S")]
    UnsupportedType {
        path: PathBuf,
        tensor: String,
        id: u32,
        type_name: String,
    },
    #[error("{path}: tensor `{tensor}` has dimensions {dims:?}: {problem}")]
    Shape {
        path: PathBuf,
        tensor: String,
        dims: Vec<u64>,
        problem: String,
    },
    #[error("{path}: the data of tensor `{tensor}` (file bytes {start}..{end}) runs past the end of the file ({len} bytes)\n  hint: the file is truncated or corrupt; download it again")]
    OutOfBounds {
        path: PathBuf,
        tensor: String,
        start: u64,
        end: u64,
        len: u64,
    },
    #[error("{path}: metadata key `{key}` {problem}")]
    Key {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("{path}: tensor `{tensor}`: {cause}")]
    Quant {
        path: PathBuf,
        tensor: String,
        cause: QuantError,
    },
}

impl Value {
    /// The value as an unsigned integer, from any integer type that holds one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, from any number type (writers differ in how they store e.g. a
    /// RoPE base).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The type's name as the GGUF specification and gguf-py write it (`UINT32`,
    /// `ARRAY[STRING]`, ...); the element type of an empty array cannot be recovered and
    /// shows as `ARRAY[]`.
    pub fn type_name(&self) -> String {
        match self {
            Value::U8(_) => "UINT8".into(),
            Value::I8(_) => "INT8".into(),
            Value::U16(_) => "UINT16".into(),
            Value::I16(_) => "INT16".into(),
            Value::U32(_) => "UINT32".into(),
            Value::I32(_) => "INT32".into(),
            Value::U64(_) => "UINT64".into(),
            Value::I64(_) => "INT64".into(),
            Value::F32(_) => "FLOAT32".into(),
            Value::F64(_) => "FLOAT64".into(),
            Value::Bool(_) => "BOOL".into(),
            Value::String(_) => "STRING".into(),
            Value::Array(items) => match items.first() {
                Some(first) => format!("ARRAY[{}]", first.type_name()),
                None => "ARRAY[]".into(),
            },
        }
    }
}

/// Numbers and booleans as written, strings quoted, arrays in brackets.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl GgmlType {
    /// The type for a ggml type id; `Err` carries the type's name as ggml calls it (or
    /// `unknown` for ids no ggml version defines), for the error message.
    fn from_id(id: u32) -> Result<GgmlType, &'static str> {
        Ok(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4_K,
            14 => GgmlType::Q6_K,
            30 => GgmlType::BF16,
            other => return Err(ggml_type_name(other).unwrap_or("unknown")),
        })
    }

    /// ggml's id for the type.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::Q4_K => 12,
            GgmlType::Q6_K => 14,
            GgmlType::BF16 => 30,
        }
    }

    /// The type's name as gguf-py and the fixtures write it.
    pub fn name(self) -> &'static str {
        ggml_type_name(self.id()).unwrap_or("unknown")
    }

    /// Elements per block: rows are stored as whole blocks.
    pub fn block_elements(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 => 32,
            GgmlType::Q4_K | GgmlType::Q6_K => 256,
        }
    }

    /// Bytes per block (ggml-common.h's block structs).
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q8_0 => 34,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q4_K => 144,
            GgmlType::Q6_K => 210,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Names of every ggml type id, so that a file of an unsupported type says which one
/// (ggml.h's `ggml_type`; ids 4, 5, 31–33 and 36–38 were removed from ggml long ago).
fn ggml_type_name(id: u32) -> Option<&'static str> {
    const NAMES: [&str; 40] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2",
        "Q4_3",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4",
        "IQ4_NL_4_8",
        "IQ4_NL_8_8",
        "MXFP4",
    ];
    NAMES.get(usize::try_from(id).ok()?).copied()
}

impl TensorInfo {
    /// The number of elements (validated at open not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The number of bytes the data takes: whole blocks, as rows are stored.
    pub fn n_bytes(&self) -> u64 {
        self.n_elements() / self.ty.block_elements() as u64 * self.ty.block_bytes() as u64
    }
}

impl fmt::Debug for Gguf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gguf")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("data_start", &self.data_start)
            .finish()
    }
}

impl Gguf {
    /// Maps and parses `path`: header, metadata and tensor table are read and checked (every
    /// tensor's type supported, its rows whole blocks, its data inside the file).
    pub fn open(path: &Path) -> Result<Gguf, GgufError> {
        let io = |e: std::io::Error| GgufError::Io {
            path: path.to_path_buf(),
            cause: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and lives inside `Gguf`. Another process truncating
        // or rewriting the file while it is mapped is outside what Rust can guard against
        // (as for every memory-mapped reader); model files are written once and then read.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (version, metadata, tensors, data_start) = parse(path, &map)?;
        Ok(Gguf {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            map,
            data_start,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// `general.architecture` (e.g. `llama`, `qwen2`): it prefixes the model's own keys.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        let key = "general.architecture";
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(GgufError::Key {
                path: self.path.clone(),
                key: key.into(),
                problem: format!("is a {}, not a string", other.type_name()),
            }),
            None => Err(GgufError::Key {
                path: self.path.clone(),
                key: key.into(),
                problem: "is missing; every GGUF model names its architecture there".into(),
            }),
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Where the tensor data section starts in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_start as u64
    }

    /// The raw bytes of a tensor of this file (checked to lie inside it at open). A
    /// `TensorInfo` that does not come from this file may give an empty slice.
    pub fn bytes(&self, t: &TensorInfo) -> &[u8] {
        let range = usize::try_from(t.offset)
            .ok()
            .and_then(|o| o.checked_add(self.data_start))
            .and_then(|s| Some(s..s.checked_add(usize::try_from(t.n_bytes()).ok()?)?));
        range.and_then(|r| self.map.get(r)).unwrap_or_default()
    }

    /// The tensor as f32, row-major over the reversed dimensions (`[rows, cols]` for 2-D).
    pub fn dequantize(&self, t: &TensorInfo) -> Result<Vec<f32>, GgufError> {
        let quant = |cause| GgufError::Quant {
            path: self.path.clone(),
            tensor: t.name.clone(),
            cause,
        };
        // A count past the address space cannot match the (then empty) bytes: quant says so.
        let n = usize::try_from(t.n_elements()).unwrap_or(usize::MAX);
        quant::dequantize(t.ty, self.bytes(t), n).map_err(quant)
    }
}

/// Why a read failed, before the caller says where it was.
enum Fault {
    Short {
        at: usize,
        need: u64,
    },
    Count {
        count: u64,
        items: &'static str,
        left: usize,
    },
    Bad(String),
}

/// A position in the mapped file.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, need: u64) -> Result<&'a [u8], Fault> {
        let end = usize::try_from(need)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&end| end <= self.buf.len())
            .ok_or(Fault::Short { at: self.pos, need })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Fault> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Fault> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Refuses `count` items of at least `min_bytes` each if the rest of the file cannot
    /// hold them.
    fn fits(&self, count: u64, min_bytes: u64, items: &'static str) -> Result<(), Fault> {
        if count.saturating_mul(min_bytes) > self.left() as u64 {
            return Err(Fault::Count {
                count,
                items,
                left: self.left(),
            });
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String, Fault> {
        let len = self.u64()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Fault::Bad(format!("a string is not UTF-8 ({e})")))
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<Value, Fault> {
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array()?)),
            1 => Value::I8(i8::from_le_bytes(self.array()?)),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(Fault::Bad(format!("a bool is the byte {b}, not 0 or 1"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(Fault::Bad(format!(
                        "arrays nest more than {MAX_ARRAY_DEPTH} deep"
                    )));
                }
                let elem = self.u32()?;
                let count = self.u64()?;
                self.fits(count, min_value_bytes(elem)?, "array elements")?;
                let mut items = Vec::with_capacity(preallocate(count));
                for _ in 0..count {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(Fault::Bad(format!("unknown value type {other}"))),
        })
    }
}

/// How many items to reserve room for ahead of reading `count` of them. Counts are checked
/// to fit the file, but an item in memory is larger than its few bytes in the file (a
/// `Value` is 32 bytes, a one-byte `U8` too); beyond this the vector grows only as items are
/// actually read.
fn preallocate(count: u64) -> usize {
    usize::try_from(count.min(1 << 16)).unwrap_or(0)
}

/// The fewest bytes a value of GGUF type `ty` takes.
fn min_value_bytes(ty: u32) -> Result<u64, Fault> {
    Ok(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        8 => 8,
        9 => 4 + 8,
        other => return Err(Fault::Bad(format!("unknown array element type {other}"))),
    })
}

/// Turns a `Fault` into the error that names the file and `place`.
fn locate<'a, P: FnOnce() -> String + 'a>(
    path: &'a Path,
    len: usize,
    place: P,
) -> impl FnOnce(Fault) -> GgufError + 'a {
    move |fault| match fault {
        Fault::Short { at, need } => GgufError::Truncated {
            path: path.to_path_buf(),
            place: place(),
            at: at as u64,
            need,
            len: len as u64,
        },
        Fault::Count { count, items, left } => GgufError::Count {
            path: path.to_path_buf(),
            place: place(),
            count,
            items,
            left: left as u64,
        },
        Fault::Bad(problem) => GgufError::Malformed {
            path: path.to_path_buf(),
            place: place(),
            problem,
        },
    }
}

type Parsed = (u32, BTreeMap<String, Value>, Vec<TensorInfo>, usize);

fn parse(path: &Path, buf: &[u8]) -> Result<Parsed, GgufError> {
    let len = buf.len();
    let mut r = Reader { buf, pos: 0 };
    let header = || "the header".to_string();

    let magic: [u8; 4] = r.array().map_err(locate(path, len, header))?;
    if &magic != b"GGUF" {
        return Err(GgufError::Magic {
            path: path.to_path_buf(),
            found: format!("b\"{}\"", magic.escape_ascii()),
        });
    }
    let version = r.u32().map_err(locate(path, len, header))?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        let hint = if SUPPORTED_VERSIONS.contains(&version.swap_bytes()) {
            "\n  hint: this looks like a big-endian GGUF file; chorus reads little-endian ones"
        } else if version == 1 {
            "\n  hint: version 1 is llama.cpp's format of mid-2023; convert the model again with a current llama.cpp"
        } else {
            "\n  hint: the file may come from a newer llama.cpp than chorus knows"
        };
        return Err(GgufError::Version {
            path: path.to_path_buf(),
            version,
            hint,
        });
    }
    let n_tensors = r.u64().map_err(locate(path, len, header))?;
    let n_kv = r.u64().map_err(locate(path, len, header))?;
    r.fits(n_tensors, MIN_TENSOR_INFO_BYTES, "tensors")
        .and_then(|()| r.fits(n_kv, MIN_KV_BYTES, "metadata keys"))
        .map_err(locate(path, len, header))?;

    let mut metadata = BTreeMap::new();
    for i in 0..n_kv {
        let key = r
            .string()
            .map_err(locate(path, len, || format!("metadata key {i}")))?;
        let place = || format!("metadata key {i} (`{key}`)");
        let value = r
            .u32()
            .and_then(|ty| r.value(ty, 0))
            .map_err(locate(path, len, place))?;
        if metadata.contains_key(&key) {
            return Err(locate(path, len, place)(Fault::Bad(
                "the key appears twice".into(),
            )));
        }
        metadata.insert(key, value);
    }

    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_u64() {
            Some(a) if a.is_power_of_two() && a <= 1 << 30 => a as usize,
            _ => {
                return Err(GgufError::Alignment {
                    path: path.to_path_buf(),
                    found: format!("{v} ({})", v.type_name()),
                })
            }
        },
    };

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(preallocate(n_tensors));
    for i in 0..n_tensors {
        let name = r
            .string()
            .map_err(locate(path, len, || format!("tensor info {i}")))?;
        let place = || format!("tensor info {i} (`{name}`)");
        let n_dims = r.u32().map_err(locate(path, len, place))?;
        if n_dims > MAX_DIMS {
            return Err(locate(path, len, place)(Fault::Bad(format!(
                "{n_dims} dimensions; ggml tensors have at most {MAX_DIMS}"
            ))));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64().map_err(locate(path, len, place))?);
        }
        let type_id = r.u32().map_err(locate(path, len, place))?;
        let offset = r.u64().map_err(locate(path, len, place))?;
        let ty = GgmlType::from_id(type_id).map_err(|type_name| GgufError::UnsupportedType {
            path: path.to_path_buf(),
            tensor: name.clone(),
            id: type_id,
            type_name: type_name.into(),
        })?;
        check_shape(path, &name, &dims, ty)?;
        if tensors.iter().any(|t| t.name == name) {
            return Err(locate(path, len, place)(Fault::Bad(
                "a tensor of this name appears twice".into(),
            )));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
        });
    }

    let data_start = r.pos.div_ceil(alignment) * alignment;
    for t in &tensors {
        let start = (data_start as u64).checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes()));
        match (start, end) {
            (Some(_), Some(end)) if end <= len as u64 => {}
            _ => {
                return Err(GgufError::OutOfBounds {
                    path: path.to_path_buf(),
                    tensor: t.name.clone(),
                    start: start.unwrap_or(u64::MAX),
                    end: end.unwrap_or(u64::MAX),
                    len: len as u64,
                })
            }
        }
    }
    Ok((version, metadata, tensors, data_start))
}

/// A tensor's rows must be whole blocks of its type, and its element count must fit an
/// `i64` (as in ggml), which also keeps its byte count (at most 4 bytes an element) in a u64.
fn check_shape(path: &Path, name: &str, dims: &[u64], ty: GgmlType) -> Result<(), GgufError> {
    let bad = |problem: String| GgufError::Shape {
        path: path.to_path_buf(),
        tensor: name.into(),
        dims: dims.to_vec(),
        problem,
    };
    let n = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    if n.is_none_or(|n| n > i64::MAX as u64) {
        return Err(bad("the element count overflows".into()));
    }
    let block = ty.block_elements() as u64;
    let row = dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(block) {
        return Err(bad(format!(
            "rows of {row} elements are not whole {ty} blocks of {block}"
        )));
    }
    Ok(())
}
