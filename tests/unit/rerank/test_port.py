"""The port's shared behaviour: document text, reordering, argument checks, fallback."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from collections.abc import Sequence

import pytest

from docket.errors import RerankUnavailable
from docket.models import SearchHit
from docket.rerank import (
    Reranker,
    ServiceReranker,
    document_text,
    ranked_hits,
    rerank_or_fallback,
)

from .conftest import DOCUMENTS, QUERY, make_hit, texts


class ScriptedReranker(ServiceReranker):
    """Answers with fixed (index, score) pairs, or raises; records what it was sent."""

    def __init__(self, scored: list[tuple[int, float]] | Exception, max_chars: int = 4000):
        super().__init__(max_chars)
        self.scored = scored
        self.calls: list[tuple[str, list[str], int]] = []

    @property
    def name(self) -> str:
        return "scripted:test"

    def _score(self, query: str, documents: Sequence[str], top_n: int) -> list[tuple[int, float]]:
        self.calls.append((query, list(documents), top_n))
        if isinstance(self.scored, Exception):
            raise self.scored
        return self.scored


class RecordingLogger:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict]] = []

    def warning(self, msg, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.warnings.append((msg, kwargs.get("extra", {})))


# --- document text --------------------------------------------------------------------------------


def test_document_text_puts_title_and_section_over_the_text(hits: list[SearchHit]):
    assert [document_text(h.chunk) for h in hits] == DOCUMENTS


def test_document_text_skips_blank_and_repeated_header_parts():
    # Given a section that repeats the title and a blank title
    same = make_hit("Body.", rank=1, title="Guide", section="Guide").chunk
    blank = make_hit("Body.", rank=1, title="  ", section="Setup").chunk
    # Then each header part appears once and blanks not at all
    assert document_text(same) == "Guide\n\nBody."
    assert document_text(blank) == "Setup\n\nBody."


def test_document_text_is_cut_to_max_chars():
    chunk = make_hit("x" * 100, rank=1, title="Title").chunk
    text = document_text(chunk, max_chars=20)
    assert text == "Title\n\n" + "x" * 13
    assert len(text) == 20


# --- reordering -------------------------------------------------------------------------------------


def test_ranked_hits_reorders_by_score_and_keeps_the_fused_evidence(hits: list[SearchHit]):
    # Given the service scores C > A > D > B
    scored = [(1, 0.01), (3, 0.2), (0, 0.5), (2, 0.9)]
    # When the best three are taken
    out = ranked_hits(hits, scored, top_n=3)
    # Then they come best first as new rerank hits
    assert texts(out) == [hits[2].chunk.text, hits[0].chunk.text, hits[3].chunk.text]
    assert [h.rank for h in out] == [1, 2, 3]
    assert [h.score for h in out] == [0.9, 0.5, 0.2]
    assert all(h.retriever == "rerank" for h in out)
    # And each keeps the retrievers' ranks and scores, its fused position, and its rerank position
    c = out[0]
    assert c.ranks == {"bm25": 3, "hybrid": 3, "knn": 4, "rerank": 1}
    assert c.scores == {"bm25": 7.0, "hybrid": 1 / 63, "knn": pytest.approx(0.6), "rerank": 0.9}
    # And the incoming hits are untouched
    assert hits[2].retriever == "hybrid" and hits[2].rank == 3 and "rerank" not in hits[2].ranks


def test_ranked_hits_breaks_ties_by_the_fused_order(hits: list[SearchHit]):
    out = ranked_hits(hits, [(3, 0.5), (1, 0.5), (2, 0.5), (0, 0.1)], top_n=4)
    assert [h.chunk.text for h in out] == texts([hits[1], hits[2], hits[3], hits[0]])


def test_ranked_hits_returns_what_the_service_returned_when_it_returns_fewer(hits):
    out = ranked_hits(hits, [(2, 0.7)], top_n=3)
    assert texts(out) == [hits[2].chunk.text]


@pytest.mark.parametrize(
    ("scored", "reason"),
    [
        ([(4, 0.5)], "index 4 for 4 documents"),
        ([(-1, 0.5)], "index -1"),
        ([(0, 0.5), (0, 0.4)], "index 0 twice"),
        ([(0, math.nan)], "score nan"),
        ([(0, math.inf)], "score inf"),
    ],
)
def test_ranked_hits_refuses_an_answer_to_another_question(hits, scored, reason):
    with pytest.raises(RerankUnavailable, match=reason):
        ranked_hits(hits, scored, top_n=3)


# --- the service reranker's steps ---------------------------------------------------------------------


def test_rerank_sends_contextual_documents_and_a_clamped_top_n(hits: list[SearchHit]):
    reranker = ScriptedReranker([(2, 0.9), (0, 0.4)])
    out = reranker.rerank(QUERY, hits, top_n=10)
    assert reranker.calls == [(QUERY, DOCUMENTS, 4)]
    assert texts(out) == [hits[2].chunk.text, hits[0].chunk.text]


def test_rerank_cuts_documents_to_max_chars(hits: list[SearchHit]):
    reranker = ScriptedReranker([(0, 0.9)], max_chars=12)
    reranker.rerank(QUERY, hits, top_n=1)
    assert reranker.calls[0][1] == [d[:12] for d in DOCUMENTS]


def test_no_hits_means_no_call():
    reranker = ScriptedReranker(RerankUnavailable("must not be called"))
    assert reranker.rerank(QUERY, [], top_n=5) == []
    assert reranker.calls == []


def test_bad_arguments_are_refused_before_any_call(hits: list[SearchHit]):
    reranker = ScriptedReranker([(0, 0.9)])
    with pytest.raises(ValueError, match="top_n"):
        reranker.rerank(QUERY, hits, top_n=0)
    with pytest.raises(ValueError, match="blank query"):
        reranker.rerank("   ", hits, top_n=3)
    with pytest.raises(ValueError, match="max_chars"):
        ScriptedReranker([], max_chars=0)
    assert reranker.calls == []


def test_a_service_reranker_is_a_reranker():
    assert isinstance(ScriptedReranker([]), Reranker)


# --- fallback -----------------------------------------------------------------------------------------


def test_fallback_uses_the_reranker_when_it_answers(hits: list[SearchHit]):
    logger = RecordingLogger()
    out, used = rerank_or_fallback(ScriptedReranker([(3, 0.8)]), QUERY, hits, 2, logger)
    assert used is True
    assert texts(out) == [hits[3].chunk.text]
    assert logger.warnings == []


def test_fallback_keeps_the_fused_order_and_warns_when_the_service_fails(hits):
    # Given a reranker whose service is down
    logger = RecordingLogger()
    reranker = ScriptedReranker(RerankUnavailable("cohere rerank failed: HTTP 503"))
    # When the query path reranks
    out, used = rerank_or_fallback(reranker, QUERY, hits, 3, logger)
    # Then it gets the first three fused hits, unchanged, and a warning says why
    assert used is False
    assert out == hits[:3]
    [(message, extra)] = logger.warnings
    assert "fused order" in message
    assert extra == {
        "reranker": "scripted:test",
        "error_code": "rerank_unavailable",
        "reason": "cohere rerank failed: HTTP 503",
        "candidates": 4,
    }


def test_fallback_works_with_a_standard_logger(hits, caplog: pytest.LogCaptureFixture):
    reranker = ScriptedReranker(RerankUnavailable("down"))
    with caplog.at_level(logging.WARNING, logger="rerank-test"):
        out, used = rerank_or_fallback(reranker, QUERY, hits, 1, logging.getLogger("rerank-test"))
    assert (out, used) == (hits[:1], False)
    assert caplog.records[0].reason == "down"  # type: ignore[attr-defined]


def test_fallback_without_a_reranker_or_hits_is_silent(hits: list[SearchHit]):
    logger = RecordingLogger()
    assert rerank_or_fallback(None, QUERY, hits, 2, logger) == (hits[:2], False)
    assert rerank_or_fallback(ScriptedReranker([]), QUERY, [], 2, logger) == ([], False)
    assert logger.warnings == []


def test_fallback_lets_bugs_through(hits: list[SearchHit]):
    reranker = ScriptedReranker(KeyError("a bug, not an outage"))
    with pytest.raises(KeyError):
        rerank_or_fallback(reranker, QUERY, hits, 2, RecordingLogger())


# --- the Lambda layer ---------------------------------------------------------------------------------

PROBE = """
import json, sys
import docket.rerank
from docket.config import Settings
from docket.rerank.factory import get_reranker
for provider, extra in [
    ("cohere", {"cohere_api_key": "k"}),
    ("bedrock", {"rerank_model": "amazon.rerank-v1:0"}),
    ("sagemaker", {"rerank_endpoint": "reranker"}),
]:
    get_reranker(Settings(rerank_provider=provider, **extra))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"boto3", "botocore", "cohere", "httpx"})))
"""


def test_the_port_and_factory_import_no_sdk():
    # Given a fresh interpreter that imports the port and builds every adapter
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    # Then no SDK was imported: that waits for the first rerank
    assert json.loads(out.strip().splitlines()[-1]) == []
