"""RTF: body text without control words, font tables or other destinations."""

from __future__ import annotations

from docket.extract import extract_document


def test_rtf_text_title_and_escapes(fixture_bytes):
    # Given an RTF with a font table, a colour table, an info title, hex and Unicode escapes
    data = fixture_bytes("memo.rtf")

    # When it is extracted
    document = extract_document(data, "memo.rtf")

    # Then only the body text is left, with escapes decoded once
    assert document.format == "rtf"
    assert document.title == "Shipping Memo"
    assert document.text == (
        "Caf\u00e9 orders ship on Mondays.\n"
        "Priority orders ship the same day \u2014 even on weekends.\n"
        "Carriers: UPS"
    )


def test_rtf_detected_by_magic_under_a_doc_name():
    # Given RTF saved with a .doc extension (Word does this)
    data = rb"{\rtf1\ansi Hello from a doc file.\par}"

    # When it is extracted
    document = extract_document(data, "letter.doc")

    # Then the bytes decide: it is RTF
    assert document.format == "rtf"
    assert document.text == "Hello from a doc file."
