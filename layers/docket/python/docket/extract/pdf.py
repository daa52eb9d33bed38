"""PDF text, page by page, with pypdf. Page numbers are the physical pages (1-based).

Text comes from pypdf's layout mode: it places each glyph run by its position on the page, so
words keep their spaces ("attributable", not "attributab le"), lines end where the page's lines
end (no "newdynamics"), and text is in reading order, top to bottom; a two-column page is read
column by column. Tables, which layout mode leaves as cells spread over wide gaps, are then
rewritten as `` | ``-separated rows under their column headers (``docket.extract.layout``). A
page layout mode cannot read, or finds empty, is read again in pypdf's plain mode (content-stream
order).
"""

from __future__ import annotations

import io
import logging
import re

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PdfStreamError

from docket.errors import CorruptDocument, EmptyDocument, EncryptedDocument, NoTextLayer
from docket.extract.base import RawDocument, RawPage
from docket.extract.layout import split_columns, tabulate

logger = logging.getLogger(__name__)

_ENCRYPTED = "PDF is encrypted and cannot be read without a password"
_LETTERS = re.compile(r"[^\W\d_]")
_OFFICE_PREFIX = re.compile(r"^microsoft (word|powerpoint|excel) - ", re.I)
_FILE_SUFFIX = re.compile(r"\.(docx?|pptx?|xlsx?|odt|rtf|pdf)$", re.I)
# A dense page is ~10,000 characters, ~40,000 with layout mode's padding.
_MAX_LAYOUT_CHARS = 1_000_000


def _title(reader: PdfReader) -> str | None:
    """The title the PDF declares, unless it is an obvious placeholder (an id, "untitled")."""
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken Info dictionary must not fail the whole document
        return None
    if not isinstance(title, str):
        return None
    title = _FILE_SUFFIX.sub("", _OFFICE_PREFIX.sub("", title.strip())).strip()
    if len(_LETTERS.findall(title)) < 2 or title.lower() in {"untitled", "title", "document"}:
        return None
    return title


def _info(reader: PdfReader) -> dict[str, str]:
    try:
        info: dict[str, object] = dict(reader.metadata or {})
        fields = {"author": "/Author", "subject": "/Subject", "created": "/CreationDate"}
        return {key: str(info[name]) for key, name in fields.items() if info.get(name)}
    except Exception:
        return {}


def _open(data: bytes) -> tuple[PdfReader, bool]:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
        if encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise EncryptedDocument(_ENCRYPTED)
    except (FileNotDecryptedError, DependencyError, NotImplementedError) as exc:
        # NotImplementedError/DependencyError: an encryption scheme pypdf cannot open.
        raise EncryptedDocument(f"{_ENCRYPTED} ({exc})") from exc
    except (PdfReadError, PdfStreamError) as exc:
        raise CorruptDocument(f"PDF is damaged and cannot be read: {exc}") from exc
    return reader, encrypted


def _page_text(page: PageObject) -> str:
    """Layout-mode text with tables as rows; plain mode when layout mode fails, finds nothing,
    or pads a page with stray far-off coordinates into megabytes of spaces."""
    try:
        # Rotated runs (a landscape table on a portrait page) are kept, not dropped.
        text = page.extract_text(extraction_mode="layout", layout_mode_strip_rotated=False)
    except Exception as exc:  # layout mode is younger and stricter than plain mode
        logger.debug("pdf layout mode failed", extra={"error": repr(exc)})
        text = ""
    if text.strip() and len(text) <= _MAX_LAYOUT_CHARS:
        return tabulate(split_columns(text))
    return page.extract_text() or ""


def extract_pdf(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    reader, encrypted = _open(data)
    try:
        page_count = len(reader.pages)
    except FileNotDecryptedError as exc:
        raise EncryptedDocument(_ENCRYPTED) from exc
    except Exception as exc:
        raise CorruptDocument(f"PDF is damaged: its page tree cannot be read ({exc})") from exc
    if page_count == 0:
        raise EmptyDocument("PDF has no pages")

    pages: list[RawPage] = []
    failed: list[int] = []
    for number in range(1, page_count + 1):
        try:
            text = _page_text(reader.pages[number - 1])
        except Exception as exc:  # one broken page should not lose the other pages
            logger.debug("pdf page failed", extra={"page": number, "error": repr(exc)})
            failed.append(number)
            continue
        pages.append(RawPage(number, text))
    if not pages:
        raise CorruptDocument(f"PDF is damaged: none of its {page_count} pages could be read")

    metadata = {"page_count": str(page_count), "page_unit": "page", **_info(reader)}
    if encrypted:
        metadata["encrypted"] = "true (opened with an empty password)"
    if failed:
        metadata["pages_failed"] = ",".join(map(str, failed))
    noun = "page" if page_count == 1 else "pages"
    return RawDocument(
        pages=pages,
        title=_title(reader),
        metadata=metadata,
        join_hyphenated_lines=True,
        strip_repeated_lines=True,
        on_empty=NoTextLayer(f"PDF has {page_count} {noun} but no text layer (scanned image?)"),
    )
