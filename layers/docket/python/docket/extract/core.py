"""The one entry point of extraction: detect, parse, clean, and fail only with typed errors."""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from docket.errors import CorruptDocument, EmptyDocument, ExtractionError, FileTooLarge
from docket.extract.base import Extractor, RawDocument
from docket.extract.clean import clean_text, clean_title, strip_repeated_lines
from docket.extract.detect import Detection, detect_format
from docket.models import ExtractedDocument, Page

# format -> (module, function, passes the format name first). Modules load on first use so a
# cold start pays only for the parsers it needs (pypdf alone is ~100 ms of imports).
_EXTRACTORS: dict[str, tuple[str, str, bool]] = {
    "pdf": ("pdf", "extract_pdf", False),
    "html": ("markup", "extract_html", False),
    "docx": ("word", "extract_docx", False),
    "pptx": ("ooxml", "extract_pptx", False),
    "xlsx": ("ooxml", "extract_xlsx", False),
    "odt": ("odf", "extract_odf", True),
    "ods": ("odf", "extract_odf", True),
    "odp": ("odf", "extract_odf", True),
    "epub": ("epub", "extract_epub", False),
    "rtf": ("rtf", "extract_rtf", False),
    "email": ("mail", "extract_email", False),
    "csv": ("tabular", "extract_table", True),
    "tsv": ("tabular", "extract_table", True),
    "json": ("jsondoc", "extract_json", True),
    "jsonl": ("jsondoc", "extract_json", True),
    "markdown": ("text", "extract_text_format", True),
    "text": ("text", "extract_text_format", True),
    "rst": ("text", "extract_text_format", True),
    "org": ("text", "extract_text_format", True),
}
SUPPORTED_FORMATS = frozenset(_EXTRACTORS)
_METADATA_VALUE_CHARS = 1000
_NOISY_LOGGERS = ("pypdf", "bs4")


def _extractor(fmt: str) -> Extractor:
    module_name, function_name, takes_format = _EXTRACTORS[fmt]
    module = importlib.import_module(f"docket.extract.{module_name}")
    function: Callable[..., RawDocument] = getattr(module, function_name)
    return partial(function, fmt) if takes_format else function


@contextmanager
def _quiet_parsers() -> Iterator[None]:
    """Parsers warn about every oddity of a malformed file; the typed error is what matters."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _reason(exc: BaseException, limit: int = 200) -> str:
    """The library's complaint, short enough for a status field."""
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def human_size(size: int) -> str:
    """Binary units, named as such (the limits are set in MiB: 50 MiB is 52.4 MB)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


def _finish(raw: RawDocument, detection: Detection) -> ExtractedDocument:
    texts = [
        clean_text(page.text, join_hyphenated_lines=raw.join_hyphenated_lines) for page in raw.pages
    ]
    if raw.strip_repeated_lines:
        texts = strip_repeated_lines(texts)
    pages = [
        Page(number=page.number, text=text)
        for page, text in zip(raw.pages, texts, strict=True)
        if text
    ]
    if not pages:
        raise raw.on_empty or EmptyDocument(f"{detection.label} document has no text")
    metadata = {"detected_by": detection.via}
    for key, value in raw.metadata.items():
        cleaned = clean_title(value, max_chars=_METADATA_VALUE_CHARS)
        if cleaned:
            metadata[key] = cleaned
    return ExtractedDocument(
        format=detection.format, title=clean_title(raw.title), pages=pages, metadata=metadata
    )


def extract_document(
    data: bytes, filename: str, content_type: str | None = None, *, max_bytes: int | None = None
) -> ExtractedDocument:
    """Clean text of ``data``, page by page; raises only ``docket.errors.ExtractionError``.

    The format comes from the bytes first (magic numbers), then ``filename``'s extension, then
    ``content_type``. ``max_bytes`` (None: no limit) is checked before anything is parsed.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(
            f"file is {human_size(len(data))}, over the {human_size(max_bytes)} limit"
        )
    if not data:
        raise EmptyDocument("file is empty (0 bytes)")
    with _quiet_parsers():
        try:
            detection = detect_format(data, filename, content_type)
        except ExtractionError:
            raise
        except Exception as exc:  # a container that breaks the sniffing is a broken file
            raise CorruptDocument(f"file cannot be read ({_reason(exc)})") from exc
        # Outside the try: a missing parser is a deployment fault, not a corrupt document.
        extractor = _extractor(detection.format)
        try:
            raw = extractor(data, filename=filename, charset=detection.charset)
        except ExtractionError:
            raise
        except Exception as exc:  # never let a parser's own exception escape
            raise CorruptDocument(
                f"{detection.label} file is damaged and cannot be read ({_reason(exc)})"
            ) from exc
    return _finish(raw, detection)
