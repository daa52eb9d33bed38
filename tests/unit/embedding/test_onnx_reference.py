"""The ONNX export reproduces the original sentence-transformers model (torch reference).

tests/fixtures/embedding/minilm_reference.json holds vectors computed with torch + transformers
by tests/fixtures/embedding/make_reference.py (cross-checked there against SentenceTransformer).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "embedding" / "minilm_reference.json"
MIN_COSINE = 0.999

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def reference() -> dict:  # type: ignore[type-arg]
    return json.loads(FIXTURE.read_text())


def test_reference_was_made_from_these_weights(reference: dict, minilm_dir: Path) -> None:  # type: ignore[type-arg]
    manifest = json.loads((minilm_dir / "manifest.json").read_text())
    assert manifest["weights_sha256"] == reference["weights_sha256"]
    assert manifest["max_seq_length"] == reference["max_seq_length"] == 256


def test_vectors_match_sentence_transformers(
    reference: dict,  # type: ignore[type-arg]
    minilm,  # type: ignore[no-untyped-def]
    record_property: pytest.RecordProperty,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the reference texts: short, long (truncated at 256), unicode, numbers, empty
    texts = reference["texts"]
    expected = np.asarray(reference["vectors"], dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)  # undo the 6-decimal rounding
    # When the exported model embeds them in one call
    got = minilm.embed_documents(texts).astype(np.float64)
    # Then every vector points where the original model's does
    cosines = np.sum(got * expected, axis=1)
    worst = int(np.argmin(cosines))
    record_property("min_cosine", float(cosines[worst]))
    with capsys.disabled():
        print(
            f"\nmin cosine vs sentence-transformers: {cosines[worst]:.7f} ({texts[worst][:40]!r})"
        )
    failures = {texts[i][:40]: round(float(c), 6) for i, c in enumerate(cosines) if c < MIN_COSINE}
    assert not failures


def test_tokenization_matches_the_reference(reference: dict, minilm) -> None:  # type: ignore[no-untyped-def,type-arg]
    # truncation at 256 and special tokens as sentence-transformers counts them
    assert minilm.count_tokens(reference["texts"]) == reference["token_counts"]
    assert max(reference["token_counts"]) == 256
