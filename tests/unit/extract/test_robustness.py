"""Whatever bytes arrive, extraction returns clean pages or raises a typed ExtractionError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docket.errors import ExtractionError
from docket.extract import extract_document
from docket.models import ExtractedDocument

from .builders import build_eml, build_epub, build_pdf, build_pptx, build_xlsx

NAMES = [
    "a.txt", "a.pdf", "a.html", "a.csv", "a.tsv", "a.json", "a.jsonl", "a.eml", "a.md", "a.rst",
    "a.docx", "a.pptx", "a.xlsx", "a.odt", "a.epub", "a.rtf", "a.doc", "a.png", "noext",
]  # fmt: skip
PREFIXES = [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"{\\rtf1 ", b"<html><body>", b"{", b"From: a\n"]
VALID = [
    ("v.pdf", build_pdf(["Hello world", "Second page"])),
    ("v.pptx", build_pptx([("Title", ["Bullet"])])),
    ("v.xlsx", build_xlsx([["h1", "h2"], ["x", 1]])),
    ("v.epub", build_epub(["<p>Chapter</p>"])),
    ("v.eml", build_eml()),
]


def _check(document: ExtractedDocument) -> None:
    numbers = [page.number for page in document.pages]
    assert document.pages, "a document is returned only with text"
    assert all(page.text.strip() for page in document.pages)
    assert numbers == sorted(set(numbers))


def _extract(data: bytes, name: str) -> None:
    try:
        document = extract_document(data, name)
    except ExtractionError as error:
        assert error.message
        return
    _check(document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=2048), name=st.sampled_from(NAMES))
def test_arbitrary_bytes_never_escape_as_library_errors(prefix, body, name):
    # Given any bytes, sometimes behind a real format's magic number, under any name
    # When they are extracted
    # Then the result is clean pages or a typed error with a message
    _extract(prefix + body, name)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid=st.sampled_from(VALID),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    cut=st.floats(0.05, 1),
)
def test_damaged_documents_fail_with_typed_errors(valid, edits, cut):
    # Given a valid document with some bytes overwritten and maybe its tail cut off
    name, data = valid
    damaged = bytearray(data[: max(1, int(len(data) * cut))])
    for where, value in edits:
        damaged[int(where * len(damaged))] = value

    # When it is extracted
    # Then it still gives clean pages or a typed error
    _extract(bytes(damaged), name)
