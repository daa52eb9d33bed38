"""The answer cache's semantic tier: hit rate and precision on a paraphrase set, the similarity
threshold that keeps precision at 99 % or more, and cross-ACL isolation on adversarial pairs;
optionally (``--latency``) a hit against a miss through the local cloud.

The set is built here from intent templates, each with several phrasings of one question
(paraphrases: a hit is right) and hard negatives that an embedding places close by (a hit is
wrong): the same question about another person or thing, with a negation, with another number,
with two names swapped. Every base question is stored, then every variant is looked up with the
project's embedder (all-MiniLM-L6-v2) in the same partition.

Cross-ACL: each of ``--adversarial`` pairs stores a question for one group set and looks up the
same question, or a paraphrase, for another group set of the same tenant: any hit is a leak.

Usage: python bench/bench_cache.py [--adversarial N] [--latency] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

from common import gateway_client, percentiles, scifact_rows, scifact_test_questions

ROLES = ["contractors", "interns", "managers", "engineers", "nurses", "drivers", "teachers"]
THINGS = ["remote work", "overtime", "parking", "gym membership", "travel insurance", "a laptop"]
LEAVES = ["parental leave", "sick leave", "annual leave", "study leave"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark"]
SYSTEMS = ["the VPN", "the payroll system", "the CRM", "the wiki", "email"]

# (phrasings of one intent, slots); {a}/{b} are two names of the same kind
TEMPLATES: list[tuple[list[str], dict[str, list[str]]]] = [
    (
        [
            "How many days of {leave} do {role} get?",
            "how many days of {leave} do {role} get",
            "How many {leave} days do {role} get?",
            "How many days of {leave} are {role} entitled to?",
            "What is the number of days of {leave} that {role} get?",
        ],
        {"leave": LEAVES, "role": ROLES},
    ),
    (
        [
            "Is {thing} allowed for {role}?",
            "Is {thing} permitted for {role}?",
            "is {thing} allowed for {role}",
            "Are {role} allowed {thing}?",
        ],
        {"thing": THINGS, "role": ROLES},
    ),
    (
        [
            "Who approves expenses of {role}?",
            "Who approves the expenses of {role}?",
            "Who has to approve expenses for {role}?",
            "who approves {role} expenses",
        ],
        {"role": ROLES},
    ),
    (
        [
            "How do I reset my password for {system}?",
            "How can I reset my password for {system}?",
            "How do I reset the password of {system}?",
            "how do i reset my {system} password",
        ],
        {"system": SYSTEMS},
    ),
    (
        [
            "Does {a} pay {b} for support?",
            "Does {a} pay {b} for the support?",
            "Is {b} paid by {a} for support?",
            "does {a} pay {b} for support",
        ],
        {"a": COMPANIES, "b": COMPANIES},
    ),
    (
        [
            "What is the refund period for orders over {n} euros?",
            "What's the refund period for orders over {n} euros?",
            "What is the refund window for orders above {n} euros?",
            "refund period for orders over {n} euros?",
        ],
        {"n": ["50", "100", "500", "1000"]},
    ),
    (
        [
            "Why does {system} disconnect every hour?",
            "Why does {system} drop every hour?",
            "Why is {system} disconnecting every hour?",
            "why does {system} disconnect every hour",
        ],
        {"system": SYSTEMS},
    ),
    (
        [
            "When is the deadline for {role} to submit timesheets?",
            "What is the deadline for {role} to submit timesheets?",
            "When must {role} submit timesheets?",
            "By when do {role} have to submit their timesheets?",
        ],
        {"role": ROLES},
    ),
]


def negations(text: str) -> list[str]:
    """The same question turned negative: what an embedding barely tells apart."""
    out = []
    for before, after in (
        (" allowed", " not allowed"),
        (" permitted", " not permitted"),
        ("Does ", "Doesn't "),
        ("Is ", "Isn't "),
        (" get?", " not get?"),
        (" pay ", " not pay "),
        (" approves ", " never approves "),
        (" disconnect ", " not disconnect "),
    ):
        if before in text:
            out.append(text.replace(before, after, 1))
    return out


def build(rng: random.Random) -> list[tuple[str, str, bool, str]]:
    """(stored question, looked-up question, same meaning?, kind) over every template."""
    pairs: list[tuple[str, str, bool, str]] = []
    for phrasings, slots in TEMPLATES:
        names = list(slots)
        combos = list(itertools.product(*(slots[n] for n in names)))
        rng.shuffle(combos)
        for values in combos[:12]:
            fill = dict(zip(names, values, strict=True))
            if "a" in fill and fill["a"] == fill["b"]:
                continue
            base = phrasings[0].format(**fill)
            for other in phrasings[1:]:
                pairs.append((base, other.format(**fill), True, "paraphrase"))
            for name in names:  # another person, thing, number: another question
                for value in slots[name]:
                    if value != fill[name]:
                        changed = {**fill, name: value}
                        if "a" in changed and changed["a"] == changed["b"]:
                            continue
                        pairs.append((base, phrasings[0].format(**changed), False, f"other {name}"))
                        break
            for negated in negations(base):
                pairs.append((base, negated, False, "negation"))
            if "a" in fill:
                swapped = {**fill, "a": fill["b"], "b": fill["a"]}
                for phrasing in phrasings[:2]:
                    pairs.append((base, phrasing.format(**swapped), False, "swapped names"))
    return pairs


def evaluate(
    pairs: list[tuple[str, str, bool, str]], embed: Any, threshold: float
) -> dict[str, Any]:
    from docket.cache.memory import MemoryCacheStore
    from docket.cache.service import AnswerCache
    from docket.config import Settings
    from docket.models import Principal

    settings = Settings(
        answer_cache_tenants=frozenset({"bench"}), answer_cache_similarity=threshold
    )
    cache = AnswerCache(settings, MemoryCacheStore())
    who = Principal(subject="b", tenant="bench", groups=frozenset({"staff"}))
    results: dict[str, list[bool]] = {}
    hits_right = hits_wrong = positives_hit = positives = 0
    by_base: dict[str, list[tuple[str, bool, str]]] = {}
    for base, variant, same, kind in pairs:
        by_base.setdefault(base, []).append((variant, same, kind))
    for base, variants in by_base.items():
        partition = cache.partition(who, "bench", {"base": base})  # one entry per partition
        cache.store_answer(partition, who, base, embed[base], json.dumps({"q": base}), ["c"])
        for variant, same, kind in variants:
            hit = cache.lookup(partition, variant, embed[variant]) is not None
            results.setdefault(kind, []).append(hit)
            positives += same
            positives_hit += same and hit
            hits_right += same and hit
            hits_wrong += (not same) and hit
    hits = hits_right + hits_wrong
    return {
        "threshold": threshold,
        "hit_rate": round(positives_hit / positives, 4) if positives else 0.0,
        "precision": round(hits_right / hits, 4) if hits else 1.0,
        "hits": hits,
        "wrong_hits": hits_wrong,
        "by_kind_hit_rate": {k: round(sum(v) / len(v), 3) for k, v in sorted(results.items())},
    }


def cross_acl(
    pairs: list[tuple[str, str, bool, str]], embed: Any, n: int, rng: random.Random
) -> int:
    """Leaks: hits of a question stored for one group set, asked by another."""
    from docket.cache.memory import MemoryCacheStore
    from docket.cache.service import AnswerCache
    from docket.config import Settings
    from docket.models import Principal

    settings = Settings(answer_cache_tenants=frozenset({"bench"}), answer_cache_similarity=0.5)
    groups = ["hr", "finance", "legal", "it", "sales", "support"]
    positives = [(b, v) for b, v, same, _ in pairs if same] + [(b, b) for b, *_ in pairs]
    leaks = 0
    for _ in range(n):
        base, asked = rng.choice(positives)
        owner = frozenset(rng.sample(groups, rng.randint(0, 3)))
        other = owner
        while other == owner:
            other = frozenset(rng.sample(groups, rng.randint(0, 3)))
        # a cache holding only the owner's entry (the loosest threshold): any hit is a leak
        cache = AnswerCache(settings, MemoryCacheStore())
        stored_by = Principal(subject="o", tenant="bench", groups=owner)
        asker = Principal(subject="a", tenant="bench", groups=other)
        options = {"top_k": 10}
        cache.store_answer(
            cache.partition(stored_by, "g", options), stored_by, base, embed[base], "{}", ["c"]
        )
        leaks += cache.lookup(cache.partition(asker, "g", options), asked, embed[asked]) is not None
    return leaks


def latency(limit: int, queries: int) -> dict[str, Any]:
    """A miss, then the same question again (a hit), through the local cloud's gateway."""
    docs = scifact_rows(limit=limit) or []
    questions = scifact_test_questions(queries)
    env = {"DOCKET_ANSWER_CACHE_TENANTS": "bench", "DOCKET_QUERY_RPM": "0"}
    with gateway_client(env, "docket-bench-cache-", docs) as (_, http, headers):
        baseline: list[float] = []
        miss: list[float] = []
        hit: list[float] = []
        served = found = 0
        for question in questions[:10]:  # warm the path
            http.post("/query", json={"question": question, "no_cache": True}, headers=headers)
        for question in questions:
            # the same question three times: without the cache, a miss (stored when found), a hit
            for timings, extra in ((baseline, {"no_cache": True}), (miss, {}), (hit, {})):
                started = time.perf_counter()
                body = http.post(
                    "/query", json={"question": question, **extra}, headers=headers
                ).json()
                elapsed = (time.perf_counter() - started) * 1000
                if timings is hit:
                    served += body["cached"]
                    if body["cached"]:
                        timings.append(elapsed)
                else:
                    found += timings is miss and body["found"]
                    timings.append(elapsed)
        return {
            "documents": len(docs),
            "questions": len(questions),
            "found": found,
            "served_from_cache": served,
            "no_cache_ms": percentiles(baseline, 1),
            "miss_ms": percentiles(miss, 1),
            "hit_ms": percentiles(hit, 1) if hit else None,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adversarial", type=int, default=1000)
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--limit", type=int, default=1000, help="SciFact documents for --latency")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(20261205)
    pairs = build(rng)

    import numpy as np

    from docket.config import get_settings
    from docket.embedding.factory import get_embedder

    texts = sorted({t for b, v, *_ in pairs for t in (b, v)})
    vectors = get_embedder().embed_documents(texts)
    embed = {t: np.asarray(vectors[i]) for i, t in enumerate(texts)}
    kinds: dict[str, int] = {}
    for *_, kind in pairs:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"{len(pairs)} pairs: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    sweep = [evaluate(pairs, embed, t) for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98)]
    for row in sweep:
        print(
            f"threshold {row['threshold']:.2f}: hit rate {row['hit_rate']:.3f}, precision "
            f"{row['precision']:.4f} ({row['wrong_hits']} wrong of {row['hits']} hits)"
        )
    chosen = next((r for r in sweep if r["precision"] >= 0.99), sweep[-1])
    default = get_settings().answer_cache_similarity
    at_default = next((r for r in sweep if abs(r["threshold"] - default) < 1e-9), None)
    print(f"lowest threshold with precision >= 0.99: {chosen['threshold']:.2f}; default {default}")
    if at_default:
        print(f"at the default: {json.dumps(at_default['by_kind_hit_rate'])}")
    leaks = cross_acl(pairs, embed, args.adversarial, rng)
    print(f"cross-ACL adversarial pairs: {args.adversarial}, hits across group sets: {leaks}")
    results: dict[str, Any] = {
        "pairs": len(pairs),
        "kinds": kinds,
        "sweep": sweep,
        "chosen_threshold": chosen["threshold"],
        "default_threshold": default,
        "cross_acl_pairs": args.adversarial,
        "cross_acl_hits": leaks,
    }
    if args.latency:
        results["latency"] = lat = latency(args.limit, args.queries)
        print(
            f"through the gateway ({lat['documents']} SciFact documents, {lat['questions']} "
            f"questions, {lat['found']} answered, {lat['served_from_cache']} served again from "
            f"the cache): without the cache p50 {lat['no_cache_ms']['p50']} / p95 "
            f"{lat['no_cache_ms']['p95']} ms, miss p50 {lat['miss_ms']['p50']} / p95 "
            f"{lat['miss_ms']['p95']} ms, "
            f"hit p50 {lat['hit_ms']['p50']} / p95 {lat['hit_ms']['p95']} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if leaks == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
