"""Answers with citations: the answer port and the offline extractive answerer."""

from docket.answer.extractive import (
    DEFAULT_MIN_SCORE,
    Assessment,
    ExtractiveAnswerer,
)
from docket.answer.port import AnswerDelta, AnswerDone, Answerer, AnswerEvent, collect

__all__ = [
    "DEFAULT_MIN_SCORE",
    "AnswerDelta",
    "AnswerDone",
    "AnswerEvent",
    "Answerer",
    "Assessment",
    "ExtractiveAnswerer",
    "collect",
]
