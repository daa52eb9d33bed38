"""ZIP + XML formats read with the standard library: PPTX, XLSX, ODT, EPUB."""

from __future__ import annotations

import io
import zipfile

import pytest

from docket.errors import CorruptDocument, EncryptedDocument, FileTooLarge, UnsupportedFormat
from docket.extract import archive, extract_document


def test_pptx_slides_are_pages_in_presentation_order_with_notes(make_pptx):
    # Given a deck whose slide files are numbered against the presentation order
    data = make_pptx(
        [("Roadmap 2025", ["Ship search", "Cut costs"]), ("Risks", ["Hiring"])],
        notes={2: "Mention the budget freeze."},
    )

    # When it is extracted
    document = extract_document(data, "deck.pptx")

    # Then slide n is page n, titles are "# " lines, speaker notes are kept
    assert document.format == "pptx"
    assert document.title == "Roadmap 2025"
    assert [(page.number, page.text) for page in document.pages] == [
        (1, "# Roadmap 2025\nShip search\nCut costs"),
        (2, "# Risks\nHiring\n\nNotes: Mention the budget freeze."),
    ]
    assert document.metadata["page_unit"] == "slide"


def test_xlsx_rows_keep_column_names(make_xlsx):
    # Given a sheet with a header row, strings, numbers and an empty cell
    data = make_xlsx([["Product", "Units", "Region"], ["Laptop", 3, "EU"], ["Mouse", None, "US"]])

    # When it is extracted
    document = extract_document(data, "stock.xlsx")

    # Then the sheet is a page headed by its name, with one "column: value" line per row
    assert document.format == "xlsx"
    assert document.pages[0].text == (
        "# Sales\n\nColumns: Product, Units, Region\n"
        "Product: Laptop; Units: 3; Region: EU\nProduct: Mouse; Region: US"
    )
    assert document.metadata["sheets"] == "Sales"


def test_odt_headings_paragraphs_lists_and_tables(make_odt):
    # Given an ODT with a heading, encoded spaces, a list and a table
    body = (
        '<text:h text:outline-level="1">Meeting notes</text:h>'
        '<text:p>Budget<text:s text:c="3"/>approved.</text:p>'
        "<text:list><text:list-item><text:p>Hire two people</text:p></text:list-item></text:list>"
        "<table:table><table:table-row><table:table-cell><text:p>Owner</text:p></table:table-cell>"
        "<table:table-cell><text:p>Dana</text:p></table:table-cell></table:table-row></table:table>"
    )
    data = make_odt(body, title="Weekly sync")

    # When it is extracted
    document = extract_document(data, "notes.odt")

    # Then the structure survives and the title comes from meta.xml
    assert document.format == "odt"
    assert document.title == "Weekly sync"
    assert document.text == (
        "# Meeting notes\n\nBudget approved.\n\n- Hire two people\n\nOwner | Dana"
    )


def test_epub_spine_order_and_html_cleaning(make_epub):
    # Given an EPUB whose spine order differs from its file names, with a script inside
    data = make_epub(
        ["<h1>Chapter 1</h1><p>It began.</p><script>var x = 'SCRIPT';</script>", "<p>The end.</p>"],
        title="Short Story",
    )

    # When it is extracted
    document = extract_document(data, "story.epub")

    # Then spine documents are pages in reading order, cleaned like HTML
    assert document.format == "epub"
    assert document.title == "Short Story"
    assert [(page.number, page.text) for page in document.pages] == [
        (1, "# Chapter 1\n\nIt began."),
        (2, "The end."),
    ]
    assert document.metadata["author"] == "A. Writer"


def test_epub_with_encrypted_content_raises_encrypted_document(make_zip, make_epub):
    # Given an EPUB whose encryption.xml covers a content document (DRM)
    source = zipfile.ZipFile(io.BytesIO(make_epub(["<p>x</p>"])))
    files = {name: source.read(name) for name in source.namelist()}
    files["META-INF/encryption.xml"] = (
        '<encryption xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/text/part1.xhtml"/></enc:CipherData>'
        "</enc:EncryptedData></encryption>"
    )

    # When it is extracted
    # Then it is reported as DRM-protected
    with pytest.raises(EncryptedDocument, match="DRM"):
        extract_document(make_zip(files), "locked.epub")


def test_plain_zip_archive_is_unsupported(make_zip):
    # Given an ordinary ZIP archive
    data = make_zip({"readme.txt": "hello", "data.csv": "a,b"})

    # When it is extracted
    # Then it is an unsupported format, named as a ZIP
    with pytest.raises(UnsupportedFormat, match=r"unsupported format: \.zip \(.*ZIP archive\)"):
        extract_document(data, "bundle.zip")


def test_damaged_zip_container_is_corrupt(make_pptx):
    # Given a PPTX cut in half
    data = make_pptx([("Title", ["Body"])])[:200]

    # When it is extracted
    # Then it fails as a damaged PPTX
    with pytest.raises(CorruptDocument, match="PPTX"):
        extract_document(data, "cut.pptx")


def test_password_protected_office_file_is_encrypted():
    # Given the OLE2 container Office writes for a password-protected DOCX
    data = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64 + "EncryptedPackage".encode("utf-16-le")
    )

    # When it is extracted
    # Then it is reported as encrypted, not as an unsupported format
    with pytest.raises(EncryptedDocument, match="DOCX is encrypted"):
        extract_document(data, "locked.docx")


def test_zip_member_that_inflates_past_the_limit_is_too_large(make_xlsx, monkeypatch):
    # Given an XLSX and a member size limit smaller than its parts (a stand-in for a ZIP bomb)
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 100)

    # When it is extracted
    # Then it stops before inflating the part
    with pytest.raises(FileTooLarge, match="inflates to"):
        extract_document(make_xlsx([["a", "b"], ["1", "2"]]), "big.xlsx")


def test_xml_entities_are_not_expanded(make_zip):
    # Given package XML that declares an external entity pointing at a local file (XXE)
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<r>before &xxe; after</r>"
    )

    # When the part is parsed
    root = archive.parse_xml(xml, "test part")

    # Then the entity is left unresolved: nothing from the file gets in
    assert "root:" not in "".join(root.itertext())
    assert "before" in "".join(root.itertext())
