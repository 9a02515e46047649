//! chorus-llm's file formats against the reference fixtures in tests/fixtures/llm (written by
//! bench/llm_fixtures.py from gguf-py, transformers and llama.cpp's definitions; see its
//! README): GGUF parsing and dequantization, tokenizers from GGUF and from tokenizer.json,
//! chat templates, and the errors broken GGUF files give.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chorus_llm::chat::{ChatTemplate, Message};
use chorus_llm::gguf::{GgmlType, Gguf, GgufError, Value};
use chorus_llm::quant;
use chorus_llm::tokenizer::TextTokenizer;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llm")
}

fn json(name: &str) -> Json {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Gguf {
    Gguf::open(&fixtures().join(name)).unwrap()
}

/// The real SmolLM2-135M-Instruct Q4_1 file, fetched into the model cache on first use.
fn smollm2() -> &'static Gguf {
    static FILE: OnceLock<Gguf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = chorus_llm::fetch::resolve("smollm2-135m-instruct", &|m| eprintln!("{m}"))
            .unwrap_or_else(|e| panic!("{e}"));
        Gguf::open(&path).unwrap()
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn ggml_type(name: &str) -> GgmlType {
    match name {
        "F32" => GgmlType::F32,
        "F16" => GgmlType::F16,
        "BF16" => GgmlType::BF16,
        "Q8_0" => GgmlType::Q8_0,
        "Q4_0" => GgmlType::Q4_0,
        "Q4_1" => GgmlType::Q4_1,
        "Q4_K" => GgmlType::Q4_K,
        "Q6_K" => GgmlType::Q6_K,
        other => panic!("fixture type {other}"),
    }
}

// ---------------------------------------------------------------- dequantization

#[test]
fn dequantization_is_bit_exact_for_every_fixture_case() {
    let fixture = json("dequant.json");
    let types = fixture["types"].as_object().unwrap();
    assert_eq!(types.len(), 8);
    let mut cases = 0;
    for (name, t) in types {
        let ty = ggml_type(name);
        assert_eq!(ty.name(), name);
        assert_eq!(
            u64::from(ty.id()),
            t["ggml_type_id"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ty.block_elements() as u64,
            t["block_elements"].as_u64().unwrap()
        );
        assert_eq!(ty.block_bytes() as u64, t["block_bytes"].as_u64().unwrap());
        for case in t["cases"].as_array().unwrap() {
            let raw = hex(case["raw_hex"].as_str().unwrap());
            let bits = ids(&case["bits"]);
            let n_blocks = case["n_blocks"].as_u64().unwrap() as usize;
            assert_eq!(raw.len(), n_blocks * ty.block_bytes(), "{name}");
            assert_eq!(bits.len(), n_blocks * ty.block_elements(), "{name}");
            let got = quant::dequantize(ty, &raw, bits.len()).unwrap();
            let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, bits, "{name} {}", case["source"]);
            cases += 1;
        }
    }
    assert_eq!(cases, 16);
}

#[test]
fn real_blocks_of_the_smollm2_file_are_the_fixture_blocks() {
    // The 'real' cases say where in the file they come from: the reader's byte ranges must
    // land on exactly those bytes.
    let file = smollm2();
    let whole = std::fs::read(&file.path).unwrap();
    for (name, t) in json("dequant.json")["types"].as_object().unwrap() {
        for case in t["cases"].as_array().unwrap() {
            let source = &case["source"];
            if source["kind"] != "real" {
                continue;
            }
            let tensor = file.tensor(source["tensor"].as_str().unwrap()).unwrap();
            assert_eq!(tensor.ty.name(), name);
            let block = source["block_index"].as_u64().unwrap() as usize;
            let at = block * tensor.ty.block_bytes();
            assert_eq!(at as u64, source["byte_offset_in_tensor"].as_u64().unwrap());
            let raw = hex(case["raw_hex"].as_str().unwrap());
            assert_eq!(&file.bytes(tensor)[at..at + raw.len()], raw.as_slice());
            // And the absolute offset gguf-py gives holds the same bytes, read without the
            // reader.
            let offset = source["file_offset"].as_u64().unwrap() as usize;
            assert_eq!(&whole[offset..offset + raw.len()], raw.as_slice());
        }
    }
}

#[test]
fn a_wrong_length_or_partial_block_is_an_error() {
    let e = quant::dequantize(GgmlType::Q8_0, &[0; 34], 33).unwrap_err();
    assert_eq!(e.to_string(), "33 elements are not whole Q8_0 blocks of 32");
    let e = quant::dequantize(GgmlType::Q4_K, &[0; 100], 256).unwrap_err();
    assert_eq!(
        e.to_string(),
        "256 Q4_K elements take 144 bytes, but 100 bytes were given"
    );
}

// ---------------------------------------------------------------- the real SmolLM2 file

#[test]
fn smollm2_header_metadata_and_tensor_table_match_gguf_py() {
    let want = json("smollm2.json");
    let file = smollm2();
    assert_eq!(
        u64::from(file.version),
        want["header"]["version"].as_u64().unwrap()
    );
    assert_eq!(
        file.tensors.len() as u64,
        want["header"]["tensor_count"].as_u64().unwrap()
    );
    assert_eq!(
        file.metadata.len() as u64,
        want["header"]["kv_count"].as_u64().unwrap()
    );
    assert_eq!(file.get("general.alignment"), None);
    assert_eq!(want["alignment"], 32);
    assert_eq!(
        file.data_offset(),
        want["tensor_data_offset"].as_u64().unwrap()
    );
    assert_eq!(file.architecture().unwrap(), "llama");

    let types = want["metadata_types"].as_object().unwrap();
    let mut keys: Vec<&String> = types.keys().collect();
    keys.sort();
    assert_eq!(file.metadata.keys().collect::<Vec<_>>(), keys);
    for (key, value) in &file.metadata {
        assert_eq!(value.type_name(), types[key], "{key}");
        let expected = &want["metadata"][key];
        match value {
            Value::String(s) => assert_eq!(s, expected, "{key}"),
            Value::Bool(b) => assert_eq!(Some(*b), expected.as_bool(), "{key}"),
            Value::F32(x) => assert_eq!(*x, expected.as_f64().unwrap() as f32, "{key}"),
            Value::U32(_) => assert_eq!(value.as_u64(), expected.as_u64(), "{key}"),
            Value::Array(items) if key == "general.languages" => {
                assert_eq!(items, &[Value::String("en".into())]);
            }
            Value::Array(_) => assert!(key.starts_with("tokenizer.ggml."), "{key}"),
            other => panic!("{key}: unexpected {other:?}"),
        }
    }

    let vocab = &want["vocab"];
    let strings = |key: &str| -> Vec<&str> {
        let items = file.get(key).unwrap().as_array().unwrap();
        items.iter().map(|v| v.as_str().unwrap()).collect()
    };
    let tokens = strings("tokenizer.ggml.tokens");
    let merges = strings("tokenizer.ggml.merges");
    assert_eq!(tokens.len() as u64, vocab["n_tokens"].as_u64().unwrap());
    assert_eq!(merges.len() as u64, vocab["n_merges"].as_u64().unwrap());
    assert_eq!(
        sha256_hex(tokens.join("\n").as_bytes()),
        vocab["tokens_sha256"]
    );
    assert_eq!(
        sha256_hex(merges.join("\n").as_bytes()),
        vocab["merges_sha256"]
    );
    assert_eq!(tokens[..20], vocab["first_tokens"].as_array().unwrap()[..]);
    assert_eq!(
        tokens[tokens.len() - 5..],
        vocab["last_tokens"].as_array().unwrap()[..]
    );
    assert_eq!(merges[..10], vocab["first_merges"].as_array().unwrap()[..]);
    assert_eq!(
        merges[merges.len() - 3..],
        vocab["last_merges"].as_array().unwrap()[..]
    );
    let types = file
        .get("tokenizer.ggml.token_type")
        .unwrap()
        .as_array()
        .unwrap();
    let control: Vec<Json> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == Value::I32(3))
        .map(|(id, _)| serde_json::json!([id, tokens[id]]))
        .collect();
    assert_eq!(control, vocab["control_tokens"].as_array().unwrap()[..]);
    let normal = types.iter().filter(|t| **t == Value::I32(1)).count();
    assert_eq!(
        normal as u64,
        vocab["token_type_counts"]["1"].as_u64().unwrap()
    );

    let table = want["tensors"].as_array().unwrap();
    assert_eq!(file.tensors.len(), table.len());
    for (t, row) in file.tensors.iter().zip(table) {
        let dims: Vec<u64> = row[2]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.name, row[0], "tensor order");
        assert_eq!(t.ty.name(), row[1], "{}", t.name);
        assert_eq!(t.dims, dims, "{}", t.name);
        // gguf-py reports where the data starts in the file.
        assert_eq!(
            file.data_offset() + t.offset,
            row[3].as_u64().unwrap(),
            "{}",
            t.name
        );
        assert_eq!(t.n_bytes(), row[4].as_u64().unwrap(), "{}", t.name);
        assert_eq!(file.bytes(t).len() as u64, t.n_bytes());
    }
    for (ty, count) in want["tensor_counts"].as_object().unwrap() {
        let n = file.tensors.iter().filter(|t| t.ty.name() == ty).count();
        assert_eq!(n as u64, count.as_u64().unwrap(), "{ty}");
    }
}

#[test]
fn smollm2_whole_tensors_dequantize_to_gguf_py_values() {
    let file = smollm2();
    let checks = json("smollm2.json")["full_tensor_checks"].clone();
    assert_eq!(checks.as_array().unwrap().len(), 6);
    for check in checks.as_array().unwrap() {
        let name = check["name"].as_str().unwrap();
        let t = file.tensor(name).unwrap();
        assert_eq!(t.ty.name(), check["type"]);
        assert_eq!(
            file.data_offset() + t.offset,
            check["data_offset"].as_u64().unwrap()
        );
        assert_eq!(t.n_bytes(), check["n_bytes"].as_u64().unwrap());
        let rows_first: Vec<u64> = t.dims.iter().rev().copied().collect();
        assert_eq!(
            serde_json::json!(rows_first),
            check["dequantized_shape_rows_first"]
        );
        let values = file.dequantize(t).unwrap();
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(sha256_hex(&bytes), check["sha256_f32le"], "{name}");
        let f32s = |v: &Json| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        assert_eq!(values[..16], f32s(&check["first16"])[..], "{name}");
        assert_eq!(
            values[values.len() - 16..],
            f32s(&check["last16"])[..],
            "{name}"
        );
        // numpy sums pairwise in float64, so only the leading digits must agree.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        let sum: f64 = values.iter().map(|&x| f64::from(x)).sum();
        let sum_abs: f64 = values.iter().map(|&x| f64::from(x).abs()).sum();
        assert!(
            close(sum, check["sum"].as_f64().unwrap()),
            "{name} sum {sum}"
        );
        assert!(
            close(sum_abs, check["sum_abs"].as_f64().unwrap()),
            "{name} {sum_abs}"
        );
    }
}

// ---------------------------------------------------------------- tokenizers

#[test]
fn smollm2_tokenizer_matches_llama_cpp_on_every_fixture_string() {
    let tok = TextTokenizer::from_gguf(smollm2()).unwrap();
    let fixture = json("smollm2_tokens.json");
    assert_eq!(fixture["pre_tokenizer_in_gguf"], "smollm");
    let special = &json("smollm2.json")["special_tokens"];
    assert_eq!(tok.bos(), Some(1));
    assert_eq!(tok.eos(), Some(2));
    assert_eq!(tok.pad(), Some(2));
    for (name, id) in [("bos", tok.bos()), ("eos", tok.eos()), ("pad", tok.pad())] {
        assert_eq!(
            u64::from(id.unwrap()),
            special[name]["id"].as_u64().unwrap()
        );
        assert_eq!(tok.token_id(special[name]["token"].as_str().unwrap()), id);
    }
    assert_eq!(tok.vocab_size(), 49152);

    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 31);
    let mut differ = Vec::new();
    for case in cases {
        let (name, text) = (&case["name"], case["text"].as_str().unwrap());
        let llama_cpp = ids(&case["ids_llamacpp_smollm_pretokenizer"]);
        let got = tok.encode(text, false).unwrap();
        assert_eq!(got, llama_cpp, "{name}: {text:?}");
        // The GGUF says add_bos_token = false: adding special tokens adds nothing.
        assert_eq!(tok.encode(text, true).unwrap(), got, "{name}");
        assert_eq!(tok.decode(&got).unwrap(), case["decoded"], "{name}");
        assert_eq!(case["decoded"], text);
        // transformers' ids differ from llama.cpp's (and chorus's) only where whitespace runs
        // precede a digit: it lacks llama.cpp's `smollm` digit split (see tokenizer.rs).
        if ids(&case["ids"]) != got {
            assert_eq!(case["pretokenizers_agree"], false, "{name}");
            differ.push(name.as_str().unwrap());
        }
    }
    assert_eq!(differ, ["spaces_before_digits"]);
}

/// The tiny models' tokenizer from their GGUF and from their tokenizer.json agree with each
/// other and with transformers, on the fixture's cases and on every SmolLM2 fixture string.
#[test]
fn tiny_tokenizers_from_gguf_equal_those_from_tokenizer_json() {
    let fixture = json("tiny_logits.json");
    let more = json("smollm2_tokens.json");
    for (model, gguf) in [("llama", "tiny-llama.gguf"), ("qwen2", "tiny-qwen2.gguf")] {
        let want = &fixture["models"][model];
        let dir = fixtures().join(want["hf_dir"].as_str().unwrap());
        let from_gguf = TextTokenizer::from_gguf(&open(gguf)).unwrap();
        let from_dir = TextTokenizer::from_dir(&dir).unwrap();
        let special = &want["special_token_ids"];
        for tok in [&from_gguf, &from_dir] {
            assert_eq!(tok.vocab_size(), 288, "{model}");
            assert_eq!(tok.bos().map(u64::from), special["bos"].as_u64(), "{model}");
            assert_eq!(tok.eos().map(u64::from), special["eos"].as_u64(), "{model}");
            assert_eq!(tok.pad().map(u64::from), special["pad"].as_u64(), "{model}");
        }
        for case in want["tokenizer_cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            assert_eq!(
                from_dir.encode(text, true).unwrap(),
                ids(&case["ids"]),
                "{model} {text:?}"
            );
            assert_eq!(
                from_dir.encode(text, false).unwrap(),
                ids(&case["ids_no_special"])
            );
            assert_eq!(
                from_gguf.encode(text, true).unwrap(),
                ids(&case["gguf_transformers_ids"])
            );
            assert_eq!(
                from_gguf.encode(text, false).unwrap(),
                ids(&case["gguf_transformers_ids_no_special"])
            );
        }
        for case in more["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            for add_special in [false, true] {
                let a = from_gguf.encode(text, add_special).unwrap();
                assert_eq!(
                    a,
                    from_dir.encode(text, add_special).unwrap(),
                    "{model} {text:?}"
                );
                if !add_special {
                    assert_eq!(from_gguf.decode(&a).unwrap(), text, "{model}");
                    assert_eq!(from_dir.decode(&a).unwrap(), text, "{model}");
                }
            }
        }
    }
}

#[test]
fn tokenizer_json_merges_in_the_older_string_form_load_the_same() {
    let src = fixtures().join("tiny-qwen2");
    let dir = tempfile::tempdir().unwrap();
    let mut json: Json =
        serde_json::from_str(&std::fs::read_to_string(src.join("tokenizer.json")).unwrap())
            .unwrap();
    let merges = json["model"]["merges"].as_array_mut().unwrap();
    assert!(merges[0].is_array(), "the fixture uses the pair form");
    for m in merges.iter_mut() {
        *m = Json::String(format!(
            "{} {}",
            m[0].as_str().unwrap(),
            m[1].as_str().unwrap()
        ));
    }
    std::fs::write(dir.path().join("tokenizer.json"), json.to_string()).unwrap();
    std::fs::copy(
        src.join("tokenizer_config.json"),
        dir.path().join("tokenizer_config.json"),
    )
    .unwrap();
    let legacy = TextTokenizer::from_dir(dir.path()).unwrap();
    let pairs = TextTokenizer::from_dir(&src).unwrap();
    let text = "How important is family in your life? In 2024, 57%  of  them\n\tagreed!";
    let ids = pairs.encode(text, false).unwrap();
    assert!(
        ids.iter().any(|id| (256..285).contains(id)),
        "merged tokens are used"
    );
    assert_eq!(legacy.encode(text, false).unwrap(), ids);
}

#[test]
fn check_vocab_refuses_an_embedding_smaller_than_the_vocabulary() {
    let tok = TextTokenizer::from_gguf(&open("tiny-llama.gguf")).unwrap();
    tok.check_vocab(288).unwrap();
    tok.check_vocab(320).unwrap();
    let e = tok.check_vocab(200).unwrap_err().to_string();
    assert!(e.contains("tiny-llama.gguf: the tokenizer has 288 tokens but the model's embedding has only 200 rows"), "{e}");
    let e = tok.decode(&[5, 288]).unwrap_err().to_string();
    assert!(
        e.contains("cannot decode: id 288 is past the vocabulary of 288"),
        "{e}"
    );
}

// ---------------------------------------------------------------- chat templates

#[test]
fn smollm2_chat_template_renders_the_fixture_prompt() {
    let file = smollm2();
    let template = ChatTemplate::from_gguf(file).unwrap();
    let case = json("smollm2_tokens.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chat_template")
        .unwrap()
        .clone();
    let messages: Vec<Message> = case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message {
            role: m["role"].as_str().unwrap().into(),
            content: m["content"].as_str().unwrap().into(),
        })
        .collect();
    assert_eq!(case["add_generation_prompt"], true);
    let text = template.render(&messages, true).unwrap();
    assert_eq!(text, case["text"]);
    let tok = TextTokenizer::from_gguf(file).unwrap();
    assert_eq!(
        tok.encode(&text, false).unwrap(),
        ids(&case["ids_llamacpp_smollm_pretokenizer"])
    );
    // Without the generation prompt the assistant's turn is not opened; a system message
    // replaces the default one.
    let system = Message {
        role: "system".into(),
        content: "Be brief.".into(),
    };
    let closed = template
        .render(&[system, messages[0].clone()], false)
        .unwrap();
    assert!(closed.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"));
    assert!(closed.ends_with("only.<|im_end|>\n"), "{closed:?}");
}

#[test]
fn tiny_chat_templates_from_gguf_and_folder_render_as_transformers() {
    let fixture = json("tiny_logits.json");
    let hi = [Message {
        role: "user".into(),
        content: "Hi".into(),
    }];
    for (model, gguf) in [("llama", "tiny-llama.gguf"), ("qwen2", "tiny-qwen2.gguf")] {
        let want = &fixture["models"][model];
        let dir = fixtures().join(want["hf_dir"].as_str().unwrap());
        for template in [
            ChatTemplate::from_gguf(&open(gguf)).unwrap(),
            ChatTemplate::from_dir(&dir).unwrap(),
        ] {
            assert_eq!(
                template.render(&hi, true).unwrap(),
                want["chat_rendered"],
                "{model}"
            );
        }
    }
}

#[test]
fn a_model_folder_without_a_template_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("the model has no chat template (no chat_template.jinja, no chat_template in tokenizer_config.json)"), "{e}");
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %", "bos_token": {"content": "<s>"}}"#,
    )
    .unwrap();
    let e = ChatTemplate::from_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("the chat template does not parse"), "{e}");
}

// ---------------------------------------------------------------- other tensors

#[test]
fn f16_tiny_llama_holds_the_f32_weights_rounded_to_f16() {
    let f32s = open("tiny-llama.gguf");
    let f16s = open("tiny-llama.f16.gguf");
    assert_eq!(f32s.tensors.len(), f16s.tensors.len());
    let mut halves = 0;
    for t in &f16s.tensors {
        let full = f32s.tensor(&t.name).unwrap();
        assert_eq!(full.ty, GgmlType::F32);
        assert_eq!(full.dims, t.dims);
        let want: Vec<f32> = f32s
            .dequantize(full)
            .unwrap()
            .iter()
            .map(|&x| half::f16::from_f32(x).to_f32())
            .collect();
        let got = f16s.dequantize(t).unwrap();
        match t.ty {
            GgmlType::F16 => {
                halves += 1;
                assert_eq!(got, want, "{}", t.name);
            }
            GgmlType::F32 => assert_eq!(got, f32s.dequantize(full).unwrap(), "{}", t.name),
            other => panic!("{}: {other}", t.name),
        }
    }
    assert_eq!(halves, 15);
}

// ---------------------------------------------------------------- writing test files

/// Writes GGUF files for the tests that need shapes the fixtures do not have.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(version: u32, tensors: u64, kvs: u64) -> Writer {
        let mut w = Writer::default();
        w.buf.extend_from_slice(b"GGUF");
        w.u32(version).u64(tensors).u64(kvs);
        w
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
        self
    }
    fn kv_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.str(key).u32(8).str(value)
    }
    fn kv_u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.str(key).u32(4).u32(value)
    }
    fn kv_bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.str(key).u32(7);
        self.buf.push(value.into());
        self
    }
    fn kv_strs(&mut self, key: &str, values: &[String]) -> &mut Self {
        self.str(key).u32(9).u32(8).u64(values.len() as u64);
        for v in values {
            self.str(v);
        }
        self
    }
    fn kv_i32s(&mut self, key: &str, values: &[i32]) -> &mut Self {
        self.str(key).u32(9).u32(5).u64(values.len() as u64);
        for v in values {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn align(&mut self, to: usize) -> &mut Self {
        while !self.buf.len().is_multiple_of(to) {
            self.buf.push(0);
        }
        self
    }
    fn data(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn open_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = write(dir, name, bytes);
    let e = Gguf::open(&path).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: ", path.display())),
        "names the file: {text}"
    );
    text
}

// ---------------------------------------------------------------- tokenizers from made-up files

/// A vocabulary of the 256 byte-level symbols (ids in their sorted order), then `extra`
/// tokens, with `merges`, `pre` and BOS `<s>` (a control token).
fn tokenizer_file(
    dir: &Path,
    name: &str,
    pre: &str,
    extra: &[&str],
    merges: &[&str],
    more: impl Fn(&mut Writer),
) -> PathBuf {
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    alphabet.sort();
    let mut tokens: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
    tokens.push("<s>".into());
    tokens.extend(extra.iter().map(|s| s.to_string()));
    let mut types = vec![1; tokens.len()];
    types[256] = 3;
    let merges: Vec<String> = merges.iter().map(|s| s.to_string()).collect();
    let mut w = Writer::new(3, 0, 7);
    w.kv_str("general.architecture", "llama")
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", pre)
        .kv_strs("tokenizer.ggml.tokens", &tokens)
        .kv_i32s("tokenizer.ggml.token_type", &types)
        .kv_strs("tokenizer.ggml.merges", &merges)
        .kv_u32("tokenizer.ggml.bos_token_id", 256);
    more(&mut w);
    write(dir, name, &w.buf)
}

/// Bumps the header's key/value count by `n` (for keys `more` added).
fn with_keys(n: u64) -> impl Fn(&mut Writer) {
    move |w: &mut Writer| {
        let count = u64::from_le_bytes(w.buf[16..24].try_into().unwrap()) + n;
        w.buf[16..24].copy_from_slice(&count.to_le_bytes());
    }
}

#[test]
fn llama3_pre_tokenizers_group_digits_in_threes_and_may_ignore_merges() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["12", "123", "abc"];
    let merges = ["1 2", "12 3"];
    let tok = |pre: &str| {
        let path = tokenizer_file(
            dir.path(),
            &format!("{pre}.gguf"),
            pre,
            &extra,
            &merges,
            |_| {},
        );
        TextTokenizer::from_gguf(&Gguf::open(&path).unwrap()).unwrap()
    };
    let id = |t: &TextTokenizer, s: &str| t.token_id(s).unwrap();
    let (llama3, dbrx, gpt2, qwen2) = (tok("llama3"), tok("dbrx"), tok("gpt-2"), tok("qwen2"));
    // Llama 3 splits "4123" into "412" + "3", so "12" merges but "123" cannot form;
    // GPT-2 keeps the number whole and merges up to "123"; Qwen2 splits every digit.
    let t = &llama3;
    assert_eq!(
        t.encode("4123", false).unwrap(),
        [id(t, "4"), id(t, "12"), id(t, "3")]
    );
    assert_eq!(
        dbrx.encode("4123", false).unwrap(),
        t.encode("4123", false).unwrap()
    );
    assert_eq!(
        gpt2.encode("4123", false).unwrap(),
        [id(t, "4"), id(t, "123")]
    );
    let digits: Vec<u32> = "4123".chars().map(|c| id(t, &c.to_string())).collect();
    assert_eq!(qwen2.encode("4123", false).unwrap(), digits);
    // `llama3` takes a word that is a token as it is, without merges (ignore_merges);
    // `dbrx` has the same regex but merges as usual.
    assert_eq!(llama3.encode("abc", false).unwrap(), [id(t, "abc")]);
    let letters: Vec<u32> = "abc".chars().map(|c| id(t, &c.to_string())).collect();
    assert_eq!(dbrx.encode("abc", false).unwrap(), letters);
    // Without tokenizer.ggml.add_bos_token, llama.cpp adds BOS for `llama3` only.
    assert_eq!(llama3.encode("abc", true).unwrap(), [256, id(t, "abc")]);
    assert_eq!(dbrx.encode("abc", true).unwrap(), letters);
    // The key, when present, decides.
    let path = tokenizer_file(dir.path(), "nobos.gguf", "llama3", &extra, &merges, |w| {
        w.kv_bool("tokenizer.ggml.add_bos_token", false);
        with_keys(1)(w);
    });
    let t = TextTokenizer::from_gguf(&Gguf::open(&path).unwrap()).unwrap();
    assert_eq!(t.encode("abc", true).unwrap(), [id(&t, "abc")]);
}

#[test]
fn add_eos_and_special_ids_follow_the_file_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open_tok = |name: &str, more: &dyn Fn(&mut Writer), keys: u64| {
        let path = tokenizer_file(dir.path(), name, "gpt-2", &[], &[], |w| {
            more(w);
            with_keys(keys)(w);
        });
        TextTokenizer::from_gguf(&Gguf::open(&path).unwrap())
    };
    let t = open_tok(
        "eos.gguf",
        &|w| {
            w.kv_u32("tokenizer.ggml.eos_token_id", 256)
                .kv_bool("tokenizer.ggml.add_eos_token", true);
        },
        2,
    )
    .unwrap();
    assert_eq!(t.eos(), Some(256));
    let a = t.token_id("a").unwrap();
    assert_eq!(t.encode("a", true).unwrap(), [a, 256]);
    assert_eq!(t.encode("a<s>", false).unwrap(), [a, 256]);
    assert_eq!(t.decode(&[a, 256]).unwrap(), "a<s>");

    for (name, more, keys, want) in [
        (
            "noeos.gguf",
            &(|w: &mut Writer| {
                w.kv_bool("tokenizer.ggml.add_eos_token", true);
            }) as &dyn Fn(&mut Writer),
            1,
            "tokenizer.ggml.add_eos_token is true but tokenizer.ggml.eos_token_id is missing",
        ),
        (
            "sep.gguf",
            &|w: &mut Writer| {
                w.kv_bool("tokenizer.ggml.add_sep_token", true);
            },
            1,
            "tokenizer.ggml.add_sep_token is true (an embedding model's tokenizer)",
        ),
        (
            "badid.gguf",
            &|w: &mut Writer| {
                w.kv_u32("tokenizer.ggml.eos_token_id", 9999);
            },
            1,
            "tokenizer.ggml.eos_token_id is 9999, not a token id below 257",
        ),
        (
            "flag.gguf",
            &|w: &mut Writer| {
                w.kv_u32("tokenizer.ggml.add_bos_token", 1);
            },
            1,
            "tokenizer.ggml.add_bos_token is a UINT32, not a bool",
        ),
    ] {
        let e = open_tok(name, more, keys).unwrap_err().to_string();
        assert!(e.contains(&format!("{name}: {want}")), "{e}");
    }
}

#[test]
fn unsupported_tokenizers_are_refused_with_what_is_supported() {
    let dir = tempfile::tempdir().unwrap();
    let e = |path: PathBuf| {
        TextTokenizer::from_gguf(&Gguf::open(&path).unwrap())
            .unwrap_err()
            .to_string()
    };

    let path = tokenizer_file(dir.path(), "falcon.gguf", "falcon", &[], &[], |_| {});
    let msg = e(path);
    assert!(msg.contains("tokenizer.ggml.pre is `falcon`, a pre-tokenizer chorus does not reproduce; supported: gpt-2, "), "{msg}");
    assert!(
        msg.contains("smollm") && msg.contains("qwen2") && msg.contains("llama3"),
        "{msg}"
    );

    let mut w = Writer::new(3, 0, 2);
    w.kv_str("tokenizer.ggml.model", "llama")
        .kv_str("tokenizer.ggml.pre", "default");
    let msg = e(write(dir.path(), "spm.gguf", &w.buf));
    assert!(msg.contains("tokenizer.ggml.model is `llama` (SentencePiece); chorus reads only `gpt2` (byte-level BPE) tokenizers from GGUF files"), "{msg}");

    let mut w = Writer::new(3, 0, 1);
    w.kv_str("tokenizer.ggml.model", "gpt2");
    let msg = e(write(dir.path(), "nopre.gguf", &w.buf));
    assert!(
        msg.contains(
            "nopre.gguf: tokenizer.ggml.pre is missing, so how text is split before BPE is unknown"
        ),
        "{msg}"
    );
    assert!(msg.contains("chorus supports: gpt-2, phi-2"), "{msg}");

    let msg = e(write(dir.path(), "none.gguf", &Writer::new(3, 0, 0).buf));
    assert!(
        msg.contains("none.gguf: has no tokenizer (tokenizer.ggml.model is missing)"),
        "{msg}"
    );

    let path = tokenizer_file(dir.path(), "merge.gguf", "gpt-2", &[], &["1 2"], |_| {});
    let msg = e(path);
    assert!(
        msg.contains("the BPE vocabulary and merges do not fit"),
        "{msg}"
    );

    let path = tokenizer_file(dir.path(), "dup.gguf", "gpt-2", &["a"], &[], |_| {});
    let msg = e(path);
    assert!(msg.contains("tokens 64 and 257 are both `a`"), "{msg}");
}

// ---------------------------------------------------------------- broken GGUF files

/// A small valid file: two metadata keys (the first long enough that the header's counts
/// fit the rest of the file wherever the tests cut it after that key's start), tensors `a`
/// (F32, 4) and `b` (Q8_0, 32 × 2), and the offsets where each part starts.
fn small_file() -> (Vec<u8>, Vec<(usize, &'static str)>) {
    let mut marks = Vec::new();
    let mut w = Writer::new(3, 2, 2);
    marks.push((w.buf.len(), "kv0"));
    w.kv_str("general.description", &"a small test file. ".repeat(10));
    marks.push((w.buf.len(), "kv1"));
    w.kv_str("general.architecture", "llama");
    marks.push((w.buf.len(), "t0"));
    w.tensor("a", &[4], 0, 0);
    marks.push((w.buf.len(), "t1"));
    w.tensor("b", &[32, 2], 8, 32);
    w.align(32);
    marks.push((w.buf.len(), "data"));
    w.data(&[0; 16]).align(32);
    marks.push((w.buf.len(), "data_b"));
    w.data(&[0; 68]);
    (w.buf, marks)
}

#[test]
fn the_small_test_file_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, marks) = small_file();
    let file = Gguf::open(&write(dir.path(), "ok.gguf", &bytes)).unwrap();
    assert_eq!(file.architecture().unwrap(), "llama");
    assert_eq!(
        file.get("general.description").and_then(Value::as_str),
        Some("a small test file. ".repeat(10).as_str())
    );
    assert_eq!(file.data_offset() as usize, marks[4].0);
    assert_eq!(
        file.dequantize(file.tensor("b").unwrap()).unwrap(),
        vec![0.0; 64]
    );
    assert_eq!(file.tensor("a").unwrap().dims, [4]);
}

#[test]
fn truncated_files_say_where_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, marks) = small_file();
    let at = |mark: &str| marks.iter().find(|m| m.1 == mark).unwrap().0;
    let (data_b, len) = (at("data_b"), at("data_b") + 67);
    let last = format!(
        "the data of tensor `b` (file bytes {data_b}..{}) runs past the end of the file ({len} bytes)",
        data_b + 68
    );
    for (cut, place) in [
        (
            0,
            "the file ends inside the header: 4 bytes needed at offset 0".to_string(),
        ),
        (3, "the file ends inside the header".into()),
        (
            20,
            "the file ends inside the header: 8 bytes needed at offset 16".into(),
        ),
        // Cut this early, the counts in the header cannot fit what is left.
        (
            at("kv0") + 5,
            "the header claims 2 tensors, more than the 5 bytes left".into(),
        ),
        (
            at("kv0") + 120,
            "the file ends inside metadata key 0 (`general.description`): 190 bytes needed".into(),
        ),
        (
            at("kv1") + 5,
            "the file ends inside metadata key 1: 8 bytes needed".into(),
        ),
        (
            at("kv1") + 33,
            "the file ends inside metadata key 1 (`general.architecture`)".into(),
        ),
        (
            at("t0") + 4,
            "the file ends inside tensor info 0: 8 bytes needed".into(),
        ),
        (
            at("t0") + 12,
            "the file ends inside tensor info 0 (`a`)".into(),
        ),
        (
            at("t1") + 20,
            "the file ends inside tensor info 1 (`b`)".into(),
        ),
        (at("data") + 8, "the data of tensor `a`".into()),
        (len, last),
    ] {
        let msg = open_err(dir.path(), "cut.gguf", &bytes[..cut]);
        assert!(msg.contains(&place), "cut at {cut}: {msg}");
        assert!(msg.contains("truncated"), "{msg}");
    }
}

#[test]
fn every_prefix_of_a_real_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("tiny-llama.gguf")).unwrap();
    let data = open("tiny-llama.gguf").data_offset() as usize;
    // Every byte of the header, every 7th of the metadata and tensor table, a few in the data.
    let cuts = (0..64)
        .chain((64..data).step_by(7))
        .chain((data..bytes.len()).step_by(997));
    let path = dir.path().join("prefix.gguf");
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        match Gguf::open(&path) {
            Err(
                GgufError::Truncated { .. }
                | GgufError::Count { .. }
                | GgufError::OutOfBounds { .. },
            ) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn wrong_magic_and_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let msg = open_err(
        dir.path(),
        "zip.gguf",
        b"PK\x03\x04 not a model at all, a zip",
    );
    assert!(
        msg.contains(
            r#"not a GGUF file: it starts with b"PK\x03\x04" where a GGUF file starts with "GGUF""#
        ),
        "{msg}"
    );
    for (version, hint) in [
        (1, "mid-2023"),
        (4, "newer llama.cpp"),
        (0x0300_0000, "big-endian"),
    ] {
        let msg = open_err(dir.path(), "v.gguf", &Writer::new(version, 0, 0).buf);
        assert!(
            msg.contains(&format!(
                "GGUF version {version} is not supported; chorus reads versions 2 and 3"
            )),
            "{msg}"
        );
        assert!(msg.contains(hint), "{msg}");
    }
    // Version 2 has version 3's layout.
    let file = Gguf::open(&write(dir.path(), "v2.gguf", &Writer::new(2, 0, 0).buf)).unwrap();
    assert_eq!(file.version, 2);
    let e = file.architecture().unwrap_err().to_string();
    assert!(
        e.contains("metadata key `general.architecture` is missing"),
        "{e}"
    );
}

#[test]
fn unsupported_tensor_types_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (id, name) in [(13, "Q5_K"), (6, "Q5_0"), (23, "IQ4_XS"), (99, "unknown")] {
        let mut w = Writer::new(3, 1, 0);
        w.tensor("blk.0.ffn_down.weight", &[256, 4], id, 0)
            .align(32)
            .data(&[0; 1024]);
        let msg = open_err(dir.path(), "q.gguf", &w.buf);
        assert!(msg.contains(&format!("tensor `blk.0.ffn_down.weight` has type {name} (ggml type id {id}), which chorus cannot read")), "{msg}");
        assert!(
            msg.contains("F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K and Q6_K"),
            "{msg}"
        );
    }
}

#[test]
fn tensor_data_past_the_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(3, 2, 0);
    w.tensor("ok", &[8], 0, 0)
        .tensor("far", &[8], 0, 1 << 40)
        .align(32)
        .data(&[0; 64]);
    let msg = open_err(dir.path(), "far.gguf", &w.buf);
    assert!(msg.contains("the data of tensor `far` (file bytes 1099511627872..1099511627904) runs past the end of the file (160 bytes)"), "{msg}");
    let mut w = Writer::new(3, 1, 0);
    w.tensor("wrap", &[8], 0, u64::MAX - 4).align(32);
    let msg = open_err(dir.path(), "wrap.gguf", &w.buf);
    assert!(msg.contains("the data of tensor `wrap`"), "{msg}");
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let msg = open_err(dir.path(), "t.gguf", &Writer::new(3, u64::MAX, 0).buf);
    assert!(msg.contains("the header claims 18446744073709551615 tensors, more than the 0 bytes left in the file can hold"), "{msg}");
    let msg = open_err(dir.path(), "kv.gguf", &Writer::new(3, 0, 1 << 40).buf);
    assert!(
        msg.contains("the header claims 1099511627776 metadata keys"),
        "{msg}"
    );

    let mut w = Writer::new(3, 0, 1);
    w.str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1 << 50);
    let msg = open_err(dir.path(), "arr.gguf", &w.buf);
    assert!(
        msg.contains(
            "metadata key 0 (`tokenizer.ggml.tokens`) claims 1125899906842624 array elements"
        ),
        "{msg}"
    );

    let mut w = Writer::new(3, 0, 1);
    w.str("general.name").u32(8).u64(u64::MAX);
    let msg = open_err(dir.path(), "str.gguf", &w.buf);
    assert!(msg.contains("the file ends inside metadata key 0 (`general.name`): 18446744073709551615 bytes needed"), "{msg}");

    let mut w = Writer::new(3, 1, 0);
    w.u64(1 << 62).data(&[0; 32]);
    let msg = open_err(dir.path(), "name.gguf", &w.buf);
    assert!(
        msg.contains("the file ends inside tensor info 0: 4611686018427387904 bytes needed"),
        "{msg}"
    );

    let mut w = Writer::new(3, 1, 0);
    w.str("x").u32(u32::MAX).data(&[0; 32]);
    let msg = open_err(dir.path(), "dims.gguf", &w.buf);
    assert!(
        msg.contains("tensor info 0 (`x`): 4294967295 dimensions; ggml tensors have at most 4"),
        "{msg}"
    );

    let mut w = Writer::new(3, 1, 0);
    w.tensor("huge", &[1 << 32, 1 << 32, 1 << 32], 0, 0);
    let msg = open_err(dir.path(), "huge.gguf", &w.buf);
    assert!(msg.contains("tensor `huge` has dimensions [4294967296, 4294967296, 4294967296]: the element count overflows"), "{msg}");
}

#[test]
fn malformed_metadata_and_tensor_tables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Writer, &str)> = vec![
        ({ let mut w = Writer::new(3, 0, 1); w.str("k").u32(13); w }, "metadata key 0 (`k`): unknown value type 13"),
        ({ let mut w = Writer::new(3, 0, 1); w.str("k").u32(9).u32(42).u64(1); w }, "unknown array element type 42"),
        ({ let mut w = Writer::new(3, 0, 1); w.str("k").u32(7).data(&[2]); w }, "a bool is the byte 2, not 0 or 1"),
        ({ let mut w = Writer::new(3, 0, 1); w.str("k").u32(8).u64(2).data(&[0xff, 0xfe]); w }, "a string is not UTF-8"),
        ({ let mut w = Writer::new(3, 0, 2); w.kv_u32("k", 1).kv_u32("k", 2); w }, "metadata key 1 (`k`): the key appears twice"),
        ({ let mut w = Writer::new(3, 2, 0); w.tensor("t", &[4], 0, 0).tensor("t", &[4], 0, 0).align(32).data(&[0; 16]); w }, "tensor info 1 (`t`): a tensor of this name appears twice"),
        ({ let mut w = Writer::new(3, 1, 0); w.tensor("q", &[48, 2], 8, 0).align(32).data(&[0; 128]); w }, "tensor `q` has dimensions [48, 2]: rows of 48 elements are not whole Q8_0 blocks of 32"),
        ({
            let mut w = Writer::new(3, 0, 1);
            w.str("deep").u32(9);
            for _ in 0..9 {
                w.u32(9).u64(1);
            }
            w
        },
        "metadata key 0 (`deep`): arrays nest more than 8 deep"),
    ];
    for (w, want) in cases {
        let msg = open_err(dir.path(), "bad.gguf", &w.buf);
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn alignment_is_honoured_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::new(3, 1, 1);
    w.kv_u32("general.alignment", 64).tensor("t", &[2], 0, 0);
    // The tensor table ends at byte 90: the default alignment would start the data at 96.
    assert_eq!(w.buf.len(), 90);
    w.align(64);
    let start = w.buf.len();
    assert_eq!(start, 128);
    w.data(&1.5f32.to_le_bytes()).data(&(-2f32).to_le_bytes());
    let file = Gguf::open(&write(dir.path(), "a64.gguf", &w.buf)).unwrap();
    assert_eq!(file.data_offset() as usize, start);
    assert_eq!(file.dequantize(&file.tensors[0]).unwrap(), [1.5, -2.0]);

    for (value, shown) in [(0u32, "0 (UINT32)"), (48, "48 (UINT32)")] {
        let mut w = Writer::new(3, 0, 1);
        w.kv_u32("general.alignment", value);
        let msg = open_err(dir.path(), "align.gguf", &w.buf);
        assert!(
            msg.contains(&format!(
                "general.alignment is {shown}; it must be an unsigned integer, a power of two"
            )),
            "{msg}"
        );
    }
    let mut w = Writer::new(3, 0, 1);
    w.kv_str("general.alignment", "32");
    let msg = open_err(dir.path(), "align.gguf", &w.buf);
    assert!(
        msg.contains(r#"general.alignment is "32" (STRING)"#),
        "{msg}"
    );
}
