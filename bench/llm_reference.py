"""The transformers side of bench/llm_compare.sh: SmolLM2-135M-Instruct (the same GGUF chorus
loads, dequantized to fp32 by transformers' GGUF loader) on the CPU, at the thread count given.

    python bench/llm_reference.py GGUF PROMPTS.json THREADS

PROMPTS.json (written by this script when absent, so both sides read the same token ids):
16 chat-templated World Values Survey questions with lettered options, each ~100 tokens.
Prints one `name value` line per measurement (medians over repetitions, after a warm-up):
  forward_tokens_per_s   one full forward pass over the left-padded batch, no cache
  letters_ms             the next-token distribution over the four option letters at the
                         last position (transformers computes the head at the last position
                         only, `logits_to_keep=1`, as an informed user would ask it to)
  greedy_tokens_per_s    greedy generation of 32 new tokens per prompt, KV cache, batch 16
"""
import json
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

GREEDY_TOKENS = 32
REPS = 5


def prompts(tokenizer, path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    wvs = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "wvs7", "US.json")
    with open(wvs) as f:
        questions = json.load(f)["examples"]
    batch = []
    for q in questions:
        options = [o.split(". ", 1)[-1] for o in q["options"]][:4]
        if len(options) < 4:
            continue
        text = (
            "Imagine you are taking part in the World Values Survey, a study of people's "
            "values and beliefs in many countries. Read the question and the options below.\n"
            f"{q['question_text']}\n"
            + "\n".join(f"{letter}. {o}" for letter, o in zip("ABCD", options))
            + "\nAnswer with the letter of one option."
        )
        messages = [{"role": "user", "content": text}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        if 80 <= len(ids) <= 130:
            batch.append(ids)
        if len(batch) == 16:
            break
    letters = [tokenizer.convert_tokens_to_ids(c) for c in "ABCD"]
    out = {"ids": batch, "letters": letters, "pad": tokenizer.pad_token_id, "greedy_tokens": GREEDY_TOKENS}
    with open(path, "w") as f:
        json.dump(out, f)
    return out


def left_pad(batch, pad):
    width = max(len(ids) for ids in batch)
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in batch])
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in batch])
    return ids, mask


def median_seconds(fn):
    fn()
    times = []
    for _ in range(REPS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    gguf, prompts_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    folder, name = os.path.split(os.path.abspath(gguf))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    p = prompts(tokenizer, prompts_path)
    ids, mask = left_pad(p["ids"], p["pad"])
    tokens = int(mask.sum())
    letters = torch.tensor(p["letters"])

    with torch.inference_mode():
        def forward():
            model(input_ids=ids, attention_mask=mask, use_cache=False)

        def next_letters():
            out = model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=1)
            out.logits[:, -1, letters].softmax(-1)

        def greedy():
            model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=GREEDY_TOKENS,
                min_new_tokens=GREEDY_TOKENS,
                pad_token_id=p["pad"],
            )

        print(f"forward_tokens_per_s {tokens / median_seconds(forward):.1f}")
        print(f"letters_ms {median_seconds(next_letters) * 1e3:.1f}")
        print(f"greedy_tokens_per_s {len(p['ids']) * GREEDY_TOKENS / median_seconds(greedy):.1f}")
    print(f"batch {len(p['ids'])} prompt_tokens {tokens} width {ids.shape[1]} threads {threads}")


if __name__ == "__main__":
    main()
