"""The answer port: turns a question and ranked search hits into an Answer with citations.

Two kinds of answerer sit behind it. The offline default, ``ExtractiveAnswerer``, quotes retrieved
sentences verbatim. The LLM answerer (``GenerativeAnswerer``, behind ``docket/providers/``) does this:

- number the sources it puts in the prompt ``[1]..[k]``, one per hit, and ask the model to cite
  them inline; ``[n]`` in ``Answer.text`` always means ``Answer.citations[n-1]``, so it renumbers
  the sources it actually cited by first appearance and drops the rest;
- run a verifier step before the final event: every citation's ``quote`` must be a verbatim
  substring of its chunk's text, and a claim whose source does not support it is removed or the
  answer becomes "not found" (``NOT_FOUND_TEXT``, ``found=False``);
- abstain without a model call when retrieval confidence is low (the extractive answerer's
  ``assess`` gives that figure from the hits alone).

Streaming: ``stream`` yields ``AnswerDelta`` events whose texts, concatenated, are exactly
``Answer.text``, then one ``AnswerDone`` carrying the whole Answer (citations, confidence, found).
An LLM answerer streams ``unit="token"`` deltas; it may only know the citation numbers at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from docket.models import Answer, SearchHit


class AnswerDelta(BaseModel):
    """A piece of the answer text: a whole sentence (extractive) or a few tokens (LLM)."""

    model_config = ConfigDict(frozen=True)

    type: Literal["delta"] = "delta"
    unit: Literal["sentence", "token"] = "sentence"
    text: str
    citations: list[int] = Field(
        default_factory=list, description="the citation numbers this piece refers to, if known"
    )


class AnswerDone(BaseModel):
    """The last event: the complete answer, with its citations and confidence."""

    model_config = ConfigDict(frozen=True)

    type: Literal["done"] = "done"
    answer: Answer


AnswerEvent = Annotated[AnswerDelta | AnswerDone, Field(discriminator="type")]


@runtime_checkable
class Answerer(Protocol):
    """Answers a question from ranked hits (best first); never raises for "no answer"."""

    def answer(self, question: str, hits: Sequence[SearchHit]) -> Answer: ...

    def stream(self, question: str, hits: Sequence[SearchHit]) -> Iterator[AnswerEvent]:
        """``AnswerDelta`` events, then exactly one ``AnswerDone``."""
        ...


def collect(events: Iterable[AnswerEvent]) -> Answer:
    """The final Answer of a stream (for answerers that implement ``stream`` natively)."""
    for event in events:
        if isinstance(event, AnswerDone):
            return event.answer
    raise ValueError("answer stream ended without a done event")
