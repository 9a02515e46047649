#!/usr/bin/env python3
"""Independent check of the WVS rules documented in surveys/src/wvs.rs.

The expected numbers in tests/real_wvs.rs and tests/wvs_rules.rs come from this script, not
from the Rust code: it reads the raw JSON with Python's own parser and applies the documented
rules in their documented order. Run it by hand when a rule changes:

    python3 surveys/tests/independent_check.py --dir ../shared/data/wvs7 --groups CN,JP,US --text-from US
    python3 surveys/tests/independent_check.py --dir ../shared/data/wvs7 --groups CN,JP,US --text-from US --min-answered 0.8
    python3 surveys/tests/independent_check.py --dir ../shared/data/wvs7 --groups CN,JP --text-from JP
    python3 surveys/tests/independent_check.py --dir surveys/tests/fixtures/wvs/rules --groups A,B --text-from A
"""
import argparse
import collections
import json
import re

OPTION = re.compile(r"^\s*(\d+)\.(\s*)(.*?)\s*$", re.S)


def number_or_none(key):
    return int(key) if re.fullmatch(r"\d+", key) else None


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# A kept sum further than this below 1 counts as renormalised over substantive answers (people
# who chose none of the listed options left out); closer, as a rounding correction.
ROUNDING = 0.05
# Float slack: a sum written as exactly a bound counts as inside it.
EXACT = 1e-9


def per_group(e, duplicated, is_text, min_answered, max_excess):
    """Rules 1-10: (reason, None) or ('ok', info)."""
    if not isinstance(e, dict) or not isinstance(e.get("id"), str) or not e["id"].strip():
        return "missing_field(id)", None
    if e["id"] in duplicated:
        return "duplicate_id", None
    options, dist = e.get("options"), e.get("distribution")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        return "missing_field(options)", None
    if not isinstance(dist, dict):
        return "missing_field(distribution)", None
    if is_text and (not isinstance(e.get("question_text"), str) or not e["question_text"].strip()):
        return "missing_field(question_text)", None
    repairs, numbers, texts = set(), [], []
    for o in options:
        m = OPTION.match(o)
        if not m or not m.group(3):
            return "unnumbered_option", None
        if m.group(2) == "":
            repairs.add("unspaced_number")
        numbers.append(int(m.group(1)))
        texts.append(m.group(3))
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        return "numbering_not_1_to_k", None
    if len(numbers) < 2:
        return "too_few_options", None
    if numbers != sorted(numbers):
        repairs.add("options_reordered")
    if not all(is_number(v) and v >= 0 for v in dist.values()):
        return "invalid_share", None
    shares = {}
    for k, v in dist.items():
        n = number_or_none(k)
        if n not in numbers:
            if v == 0:
                repairs.add("zero_share_key_removed")
                continue
            return "distribution_mismatch", None
        if n in shares:
            return "distribution_mismatch", None
        shares[n] = v
    if set(shares) != set(numbers):
        return "distribution_mismatch", None
    total = sum(shares.values())
    if total < min_answered - EXACT:
        return "too_little_answered", None
    if total > 1 + max_excess + EXACT:
        return "sum_above_one", None
    options_sorted = tuple(t for _, t in sorted(zip(numbers, texts)))
    return "ok", {
        "k": len(numbers),
        "renormalised": abs(total - 1) > EXACT,
        "substantive": total < 1 - ROUNDING - EXACT,
        "repairs": repairs,
        "shares": shares,
        "most_common": e.get("most_common_response"),
        "reading": (e.get("question_text", "").strip() if is_text else None, options_sorted),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--groups", required=True)
    ap.add_argument("--text-from", required=True)
    ap.add_argument("--min-answered", type=float, default=0.5)
    ap.add_argument("--max-excess", type=float, default=0.05)
    args = ap.parse_args()
    groups = args.groups.split(",")
    examples = {g: json.load(open(f"{args.dir}/{g}.json"))["examples"] for g in groups}

    # Raw shares by id, for rule 11 (identical to another group's).
    raw = {g: collections.defaultdict(list) for g in groups}
    for g in groups:
        for e in examples[g]:
            d = e.get("distribution") if isinstance(e, dict) else None
            if isinstance(e, dict) and isinstance(d, dict) and all(is_number(v) for v in d.values()):
                raw[g][e.get("id")].append({k: float(v) for k, v in d.items()})

    results, identical = {}, collections.defaultdict(set)
    for g in groups:
        ids = collections.Counter(e.get("id") for e in examples[g] if isinstance(e, dict))
        duplicated = {i for i, n in ids.items() if n > 1}
        out = []
        for e in examples[g]:
            reason, info = per_group(
                e, duplicated, g == args.text_from, args.min_answered, args.max_excess
            )
            i = e.get("id") if isinstance(e, dict) and isinstance(e.get("id"), str) else None
            if i and i not in duplicated and isinstance(e.get("distribution"), dict):
                d = e["distribution"]
                if all(is_number(v) for v in d.values()):
                    mine = {k: float(v) for k, v in d.items()}
                    twins = [h for h in groups if h != g and mine in raw[h].get(i, [])]
                    for h in twins:
                        identical[tuple(sorted((g, h)))].add(i)
                    if twins and reason == "ok":
                        reason, info = "identical_to_another_group", None
            out.append((i, reason, info))
        results[g] = out
    valid = {g: {i: (r, info) for i, r, info in results[g] if i} for g in groups}

    def cross(i):
        if any(i not in valid[h] for h in groups):
            return "not_in_every_group"
        if any(valid[h][i][0] != "ok" for h in groups):
            return "dropped_in_another_group"
        if len({valid[h][i][1]["k"] for h in groups}) > 1:
            return "options_disagree_across_groups"
        return None

    joinable = [i for i, r, _ in results[args.text_from] if r == "ok" and cross(i) is None]
    readings = collections.Counter(valid[args.text_from][i][1]["reading"] for i in joinable)
    ambiguous = {i for i in joinable if readings[valid[args.text_from][i][1]["reading"]] > 1}

    for g in groups:
        dropped, repaired = collections.Counter(), collections.Counter()
        kept = renormalised = substantive = disagree = absent = 0
        for i, reason, info in results[g]:
            if reason == "ok":
                reason = cross(i) or ("duplicate_text" if i in ambiguous else "ok")
            if reason != "ok":
                dropped[reason] += 1
                continue
            kept += 1
            renormalised += info["renormalised"]
            substantive += info["substantive"]
            repaired.update(info["repairs"])
            m = info["most_common"]
            if m is None:
                absent += 1
            elif not (re.fullmatch(r"\d+", str(m)) and info["shares"].get(int(m)) == max(info["shares"].values())):
                disagree += 1
        assert len(results[g]) == kept + sum(dropped.values())
        print(
            f"{g}: found {len(results[g])}, kept {kept}, renormalised {renormalised} "
            f"(over substantive answers {substantive}, rounding {renormalised - substantive})"
        )
        print(f"  dropped {dict(sorted(dropped.items()))}")
        print(f"  repaired {dict(sorted(repaired.items()))}")
        print(f"  most_common_response disagrees {disagree}, absent {absent}")
    kept_ids = [i for i in joinable if i not in ambiguous]
    print(f"kept ids ({len(kept_ids)}): {', '.join(kept_ids)}")
    ks = [valid[args.text_from][i][1]["k"] for i in kept_ids]
    if ks:
        print(f"options per kept question: {min(ks)} to {max(ks)}")
    for pair, ids in sorted(identical.items()):
        print(f"identical shares {pair}: {len(ids)}")


if __name__ == "__main__":
    main()
