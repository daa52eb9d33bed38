"""Plain text, Markdown, reStructuredText and Org: safe decoding and structure kept."""

from __future__ import annotations

import codecs
import random

import pytest

from docket.errors import CorruptDocument, EmptyDocument
from docket.extract import extract_document

TEXT = "Caf\u00e9 r\u00e9sum\u00e9 na\u00efve \u2014 \u201cquoted\u201d"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        pytest.param(TEXT.encode("utf-8"), "utf-8", id="utf-8"),
        pytest.param(codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8", id="utf-8-bom"),
        pytest.param(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le", id="utf-16-le"),
        pytest.param(codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be", id="utf-16-be"),
        pytest.param(TEXT.encode("utf-16-le"), "utf-16-le", id="utf-16-le-no-bom"),
        pytest.param(TEXT.encode("cp1252"), "cp1252", id="cp1252-fallback"),
    ],
)
def test_text_is_decoded_without_mojibake(data, encoding):
    # Given the same text in several encodings
    # When it is extracted
    document = extract_document(data, "note.txt")

    # Then the text is the same every time and the encoding is reported
    assert document.text == TEXT
    assert document.metadata["encoding"] == encoding


def test_declared_charset_is_used_for_text():
    # Given Latin-1 text whose content type declares the charset
    data = "\u00bfQu\u00e9 tal? \u00a9".encode("latin-1")

    # When it is extracted with that content type and no extension
    document = extract_document(data, "greeting", "text/plain; charset=ISO-8859-1")

    # Then the declared charset decodes it
    assert document.text == "\u00bfQu\u00e9 tal? \u00a9"
    assert document.metadata["detected_by"] == "content_type"


def test_text_keeps_paragraph_breaks():
    # Given text with paragraphs, trailing spaces and a run of blank lines
    data = b"First paragraph line one\nline two   \n\n\n\n\nSecond   paragraph.\r\n"

    # When it is extracted
    document = extract_document(data, "story.txt")

    # Then the paragraphs are kept apart by exactly one blank line
    assert document.text == "First paragraph line one\nline two\n\nSecond paragraph."
    assert document.title is None


def test_binary_garbage_named_txt_raises_corrupt_document():
    # Given random bytes uploaded as a .txt file
    data = random.Random(7).randbytes(4096)

    # When it is extracted
    # Then it is refused as binary instead of becoming mojibake
    with pytest.raises(CorruptDocument, match="binary data, not text"):
        extract_document(data, "notes.txt", "text/plain")


def test_text_with_nul_bytes_is_binary():
    # Given a "text" file that is mostly text but holds NUL bytes (a binary record format)
    data = b"header\x00\x00\x01\x02record one\x00\x00\x07record two" * 20

    # When it is extracted
    # Then it is refused as binary
    with pytest.raises(CorruptDocument):
        extract_document(data, "dump.txt")


def test_empty_file_raises_empty_document():
    # Given zero bytes
    # When they are extracted
    # Then EmptyDocument says so
    with pytest.raises(EmptyDocument, match=r"file is empty \(0 bytes\)"):
        extract_document(b"", "empty.txt")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"   \n\t\n\r\n   ", id="whitespace"),
        pytest.param("\u200b\u200c\ufeff\u00ad \n".encode(), id="invisible-characters"),
    ],
)
def test_text_without_visible_characters_raises_empty_document(data):
    # Given a file with nothing but whitespace or invisible characters
    # When it is extracted
    # Then it is an empty document, not an empty page
    with pytest.raises(EmptyDocument, match="has no text"):
        extract_document(data, "blank.txt")


def test_markdown_title_and_setext_headings():
    # Given Markdown with YAML front matter, a setext heading and an ATX heading
    data = (
        b"---\ntitle: Onboarding Guide\nauthor: ops\n---\n"
        b"Getting started\n===============\n\nInstall the CLI.\n\n## Configure\n\nSet the region.\n"
    )

    # When it is extracted
    document = extract_document(data, "guide.md")

    # Then the front matter gives the title and every heading is a "# " line
    assert document.format == "markdown"
    assert document.title == "Onboarding Guide"
    assert document.text == (
        "# Getting started\n\nInstall the CLI.\n\n## Configure\n\nSet the region."
    )


def test_markdown_title_from_first_heading():
    # Given Markdown without front matter
    data = b"Intro line.\n\n# Deployment Runbook\n\nStep one.\n"

    # When it is extracted
    # Then the first top-level heading is the title
    assert extract_document(data, "runbook.markdown").title == "Deployment Runbook"


def test_rst_section_titles_become_heading_lines():
    # Given reStructuredText with an overlined title and underlined sections
    data = (
        b"=========\nUser Guide\n=========\n\nIntro.\n\nInstall\n-------\n\nRun pip.\n\n"
        b"Upgrade\n-------\n\nRun pip again.\n"
    )

    # When it is extracted
    document = extract_document(data, "guide.rst")

    # Then the title is the first section and the levels follow the adornment styles
    assert document.title == "User Guide"
    assert document.text == (
        "# User Guide\n\nIntro.\n\n## Install\n\nRun pip.\n\n## Upgrade\n\nRun pip again."
    )


def test_org_headlines_become_heading_lines():
    # Given an Org file with a #+title and nested headlines
    data = b"#+title: Garden Notes\n\n* Tomatoes\nWater daily.\n** Pests\nAphids.\n"

    # When it is extracted
    document = extract_document(data, "garden.org")

    # Then the title comes from #+title and headlines are "# " lines by depth
    assert document.format == "org"
    assert document.title == "Garden Notes"
    assert "# Tomatoes\nWater daily.\n## Pests\nAphids." in document.text


def test_unknown_extension_with_text_content_is_read_as_text():
    # Given a text file with an extension we do not know
    data = b"2024-01-01 12:00 service started\n2024-01-01 12:01 ready\n"

    # When it is extracted
    document = extract_document(data, "service.out")

    # Then it is treated as plain text, found by sniffing
    assert document.format == "text"
    assert document.metadata["detected_by"] == "sniff"


def test_large_random_binary_with_unknown_name_is_unsupported():
    # Given random bytes with an unknown extension
    from docket.errors import UnsupportedFormat

    data = random.Random(11).randbytes(2048)

    # When they are extracted
    # Then the format is unsupported (not "corrupt": nothing claimed it was text)
    with pytest.raises(UnsupportedFormat, match=r"unsupported format: \.bin"):
        extract_document(data, "blob.bin")
