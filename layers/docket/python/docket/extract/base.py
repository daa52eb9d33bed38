"""What every format extractor returns before cleaning, and the shape of an extractor.

Extractors only parse; the package entry point cleans the text, drops empty pages and decides
which typed error an empty result deserves, so every format is cleaned the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from docket.errors import ExtractionError


@dataclass
class RawPage:
    number: int
    text: str


@dataclass
class RawDocument:
    pages: list[RawPage]
    title: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # PDF text arrives with hard line breaks inside words and running heads on every page.
    join_hyphenated_lines: bool = False
    strip_repeated_lines: bool = False
    # The error to raise when nothing is left after cleaning (default: EmptyDocument).
    on_empty: ExtractionError | None = None

    @classmethod
    def single(
        cls, text: str, *, title: str | None = None, metadata: dict[str, str] | None = None
    ) -> RawDocument:
        """A document without pages: one page numbered 1."""
        return cls(pages=[RawPage(1, text)], title=title, metadata=metadata or {})


class Extractor(Protocol):
    """Parses one format's bytes; raises only ``docket.errors.ExtractionError`` subclasses.

    ``charset`` is the charset parameter of the declared content type, if any.
    """

    def __call__(self, data: bytes, *, filename: str, charset: str | None) -> RawDocument: ...
