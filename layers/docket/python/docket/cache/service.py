"""The answer cache: exact question first, then a semantic match, inside one exact partition.

**Partition.** An entry is found only under the exact key it was stored with: the tenant, a hash
of the caller's groups, the index generation (its embedding model's tag), the answerer's
configuration and the request's options (top_k, mode, filters, rerank). Two callers whose groups
differ never share a partition, whatever their questions; similarity never crosses a partition.

**Exact, then semantic.** The question normalised (case, spacing, punctuation) is the exact key.
Otherwise the partition's entries are compared with the question's embedding: a hit needs cosine
similarity at least ``answer_cache_similarity`` and the same meaning-bearing tokens, which an
embedding barely sees: the same negations ("is X allowed" / "is X not allowed"), the same numbers
and names, and the words the two share in the same order ("does A pay B" / "does B pay A").

**Freshness.** An entry records the chunks it cited and retrieved; the embed step evicts every
entry depending on a chunk that changed or left (docket.ingest.service). It also records their
documents with the content each had indexed, and a hit is served only while every one of them
is still there, not being deleted, indexed with that content and readable by the caller: a
document deleted a moment ago (its chunks not yet through the pipeline) is never quoted. Entries expire at a
fixed time after they were stored (a hit does not extend them). Only found answers are stored:
a "not found" could be answered by the next upload.

Off unless the tenant is in ``answer_cache_tenants`` ("*": every tenant); ``no_cache: true`` and
``rerank: false`` skip it, and so do event streams (their deltas are the answerer's own).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from docket.answer.lexical import content_terms
from docket.cache.port import AnswerCacheStore, CacheEntry
from docket.config import Settings
from docket.models import Principal

NEGATIONS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "without",
        "cannot",
        "cant",
        "can't",
        "dont",
        "don't",
        "doesnt",
        "doesn't",
        "isnt",
        "isn't",
        "arent",
        "aren't",
        "wasnt",
        "wasn't",
        "werent",
        "weren't",
        "wont",
        "won't",
        "shouldnt",
        "shouldn't",
        "wouldnt",
        "wouldn't",
        "couldnt",
        "couldn't",
        "didnt",
        "didn't",
        "hasnt",
        "hasn't",
        "havent",
        "haven't",
        "mustn't",
    ]
)
_TOKEN_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).casefold().replace("\u2019", "'")
    return " ".join(_TOKEN_RE.findall(text))


def signature(question: str) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """What must be equal for two questions to share an answer: negations, numbers, names."""
    text = unicodedata.normalize("NFKC", question).replace("\u2019", "'")
    tokens = [t.casefold() for t in _TOKEN_RE.findall(text)]
    negations = frozenset(t for t in tokens if t in NEGATIONS or t.endswith("n't"))
    numbers = frozenset(_NUMBER_RE.findall(text))
    words = _TOKEN_RE.findall(text)
    # capitalised words past the first (which any question capitalises): names, acronyms
    names = frozenset(w.casefold() for w in words[1:] if w[:1].isupper() and w != "I")
    return negations, numbers, names


def same_order(a: list[str], b: list[str]) -> bool:
    """The terms both questions have come in the same order, give or take neighbours trading
    places ("remote work" / "working remotely"): no shared term moves more than one place, so
    "does A pay B" / "does B pay A" differ."""
    shared = set(a) & set(b)
    first_a = [t for t in dict.fromkeys(a) if t in shared]
    where_b = {t: i for i, t in enumerate(t for t in dict.fromkeys(b) if t in shared)}
    return all(abs(i - where_b[t]) <= 1 for i, t in enumerate(first_a))


@dataclass(frozen=True)
class Hit:
    response: str  # the QueryResponse as JSON
    age_s: float
    kind: str  # "exact" or "semantic"
    similarity: float
    documents: dict[str, str]  # what the answer drew on: document id → its indexed hash


class AnswerCache:
    def __init__(
        self,
        settings: Settings,
        store: AnswerCacheStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    def enabled_for(self, tenant: str) -> bool:
        tenants = self.settings.answer_cache_tenants
        return "*" in tenants or tenant in tenants

    def partition(self, principal: Principal, generation: str, request: dict[str, Any]) -> str:
        s = self.settings
        key = {
            "groups": sorted(principal.groups),
            "generation": generation,
            "answerer": [s.answerer, s.llm_provider, s.llm_model, s.min_answer_score],
            "strict": principal.tenant in s.strict_citation_tenants,
            "request": request,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return f"{principal.tenant}#{digest[:32]}"

    @staticmethod
    def entry_id(question: str) -> str:
        return hashlib.sha256(normalise(question).encode()).hexdigest()[:32]

    def lookup(
        self,
        partition: str,
        question: str,
        vector: np.ndarray | Callable[[], np.ndarray | None] | None,
    ) -> Hit | None:
        """The freshest matching entry; ``vector``: the question's embedding, or what computes
        it (asked only when the exact tier misses)."""
        now = self.clock()
        exact = self.store.get(partition, self.entry_id(question))
        if exact is not None and exact.expires_at > now:
            return Hit(exact.response, now - exact.created_at, "exact", 1.0, exact.documents)
        if callable(vector):
            vector = vector()
        if vector is None:
            return None
        terms, sig = content_terms(question), signature(question)
        best: tuple[float, CacheEntry] | None = None
        q = _unit(vector)
        for entry in self.store.candidates(partition, self.settings.answer_cache_candidates):
            if entry.expires_at <= now or len(entry.vector) != len(q):
                continue
            similarity = float(np.dot(q, np.asarray(entry.vector, dtype=np.float32)))
            if similarity < self.settings.answer_cache_similarity:
                continue
            if signature(entry.question) != sig or not same_order(terms, entry.terms):
                continue
            if best is None or similarity > best[0]:
                best = (similarity, entry)
        if best is None:
            return None
        whole = self.store.get(partition, best[1].entry_id)  # its response, its documents
        if whole is None:  # evicted meanwhile
            return None
        return Hit(whole.response, now - whole.created_at, "semantic", best[0], whole.documents)

    def store_answer(
        self,
        partition: str,
        principal: Principal,
        question: str,
        vector: np.ndarray | None,
        response: str,
        chunk_ids: Iterable[str],
        documents: dict[str, str] | None = None,
    ) -> None:
        now = self.clock()
        self.store.put(
            CacheEntry(
                partition=partition,
                entry_id=self.entry_id(question),
                tenant=principal.tenant,
                question=question,
                terms=content_terms(question),
                vector=[] if vector is None else _unit(vector).tolist(),
                response=response,
                chunk_ids=list(dict.fromkeys(chunk_ids)),
                documents=documents or {},
                created_at=now,
                expires_at=now + self.settings.answer_cache_ttl_seconds,
            )
        )

    def evict(self, tenant: str, chunk_ids: Iterable[str]) -> int:
        return self.store.evict(tenant, chunk_ids)


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def get_answer_cache(settings: Settings) -> AnswerCache | None:
    """The cache, when some tenant has it on; DynamoDB when a table is configured."""
    if not settings.answer_cache_tenants:
        return None
    if settings.answer_cache_table:
        from docket.cache.dynamodb import DynamoCacheStore

        return AnswerCache(settings, DynamoCacheStore(settings.answer_cache_table))
    global _process_store
    if _process_store is None:  # one per process, shared by its query and embed services
        from docket.cache.memory import MemoryCacheStore

        _process_store = MemoryCacheStore()
    return AnswerCache(settings, _process_store)


_process_store: Any = None
