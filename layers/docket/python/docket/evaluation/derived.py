"""Query sets derived from a BEIR corpus on which one retriever is much weaker than the other.

Used by ``bench/derive_datasets.py`` (writes them as BEIR folders for ``docket eval retrieval``)
and by the eval tests (fusion must not fall below the better single retriever).

- Typos (BM25 weakened): two keyboard typos in content words of each query, as in studies of
  typo robustness (Zhuang and Zuccon, 2021); ``heavy`` puts one in every content word. A
  misspelt word matches no BM25 term; the embedding model's WordPiece units keep part of it.
- Known-item (dense weakened): simulated known-item queries (Azzopardi, de Rijke and Balog,
  SIGIR 2007): four terms drawn from one document, which is the only relevant one. ``rarest``
  takes the document's four rarest terms (BM25's best case); ``sampled`` draws terms with
  probability proportional to tf * idf (their "discriminative" model). A bag of rare terms is what
  BM25 is built for and what a sentence-embedding model handles worst.

Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal

from docket.evaluation.beir import BeirDocument

# whole words only: "cryptochrome1" is one token to an analyzer, not the word "cryptochrome"
WORD = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z-]{3,}(?![\w-])")
STOP = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "against",
        "also",
        "among",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "could",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "from",
        "further",
        "have",
        "having",
        "here",
        "into",
        "itself",
        "more",
        "most",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "that",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "under",
        "until",
        "very",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "whom",
        "will",
        "with",
        "would",
        "your",
        "study",
        "studies",
        "results",
        "patients",
        "showed",
        "using",
        "used",
        "associated",
        "increased",
        "decreased",
    ]
)
_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(ch: str) -> str:
    for row in _KEYBOARD:
        i = row.find(ch)
        if i >= 0:
            return row[max(0, i - 1) : i] + row[i + 1 : i + 2]
    return ch


def typo(word: str, rng: random.Random) -> str:
    """One keyboard typo inside ``word`` (never its first letter): swap, drop, substitute or
    insert a neighbouring key."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "sub", "insert"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    near = _neighbours(word[i].lower()) or word[i]
    if kind == "sub":
        return word[:i] + rng.choice(near) + word[i + 1 :]
    return word[:i] + rng.choice(near) + word[i:]


def typo_queries(
    queries: Mapping[str, str], *, heavy: bool = False, seed: int = 13
) -> dict[str, str]:
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for qid, text in queries.items():
        words = text.split(" ")
        content = [
            i
            for i, w in enumerate(words)
            if WORD.fullmatch(w.strip(".,;:()")) and w.lower() not in STOP
        ]
        for i in content if heavy else rng.sample(content, min(2, len(content))):
            words[i] = typo(words[i], rng)
        out[qid] = " ".join(words)
    return out


def known_item_queries(
    corpus: Iterable[BeirDocument],
    *,
    count: int = 300,
    terms: int = 4,
    how: Literal["rarest", "sampled"] = "rarest",
    seed: int = 7,
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """(queries, qrels): ``count`` documents drawn at random, one query each."""
    documents = list(corpus)
    df: Counter[str] = Counter()
    words_of: dict[str, list[str]] = {}
    for doc in documents:
        words = [
            w.lower() for w in WORD.findall(f"{doc.title} {doc.text}") if w.lower() not in STOP
        ]
        words_of[doc.doc_id] = words
        df.update(set(words))
    rng = random.Random(seed)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for n, doc in enumerate(rng.sample(documents, min(count, len(documents))), start=1):
        tf = Counter(w for w in words_of[doc.doc_id] if len(w) >= 5)
        if how == "rarest":
            chosen = sorted(tf, key=lambda w: (df[w], w))[:terms]
        else:
            pool = sorted(tf)
            weights = [tf[w] * math.log(len(documents) / df[w]) for w in pool]
            chosen = []
            while pool and len(chosen) < terms:
                pick = rng.choices(range(len(pool)), weights=weights)[0]
                chosen.append(pool.pop(pick))
                weights.pop(pick)
        rng.shuffle(chosen)
        qid = f"ki{n}"
        queries[qid] = " ".join(chosen)
        qrels[qid] = {doc.doc_id: 1}
    return queries, qrels
