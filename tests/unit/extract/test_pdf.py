"""PDF extraction: page numbers kept, encrypted and damaged files fail with typed errors."""

from __future__ import annotations

import pytest

from docket.errors import CorruptDocument, EmptyDocument, EncryptedDocument, NoTextLayer
from docket.extract import extract_document


def test_pdf_text_keeps_physical_page_numbers_and_title(make_pdf):
    # Given a three-page PDF with a title in its metadata
    pdf = make_pdf(["Alpha page one", "Bravo page two", "Charlie page three"], title="Field Guide")

    # When it is extracted
    document = extract_document(pdf, "guide.pdf", "application/pdf")

    # Then each page keeps its 1-based number and text, and the title comes from metadata
    assert document.format == "pdf"
    assert document.title == "Field Guide"
    assert [(page.number, page.text) for page in document.pages] == [
        (1, "Alpha page one"),
        (2, "Bravo page two"),
        (3, "Charlie page three"),
    ]
    assert document.metadata["page_count"] == "3"


def test_pdf_blank_page_is_dropped_but_numbering_stays_physical(make_pdf):
    # Given a PDF whose middle page has no text
    pdf = make_pdf(["First words", "", "Last words"])

    # When it is extracted
    document = extract_document(pdf, "gap.pdf")

    # Then the blank page is left out and the others keep their physical numbers
    assert [page.number for page in document.pages] == [1, 3]
    assert document.metadata["page_count"] == "3"


def test_pdf_hyphenated_line_breaks_are_joined(make_pdf):
    # Given a PDF line that breaks a word with a hyphen, and one that breaks before a capital
    pdf = make_pdf(["An exam-\nple of text", "Deep-\nSeek stays apart"])

    # When it is extracted
    document = extract_document(pdf, "hyphen.pdf")

    # Then the broken word is whole again, and a hyphen before a capital is kept
    assert document.pages[0].text == "An example of text"
    assert document.pages[1].text == "Deep-\nSeek stays apart"


def test_pdf_running_header_and_page_numbers_are_stripped(make_pdf):
    # Given five pages that all start with the same header and end with their page number
    bodies = ["Revenue grew.", "Costs fell.", "Margins rose.", "Cash held.", "Outlook is fine."]
    pages = [f"ACME Confidential\n{body}\nPage {n} of 5" for n, body in enumerate(bodies, 1)]

    # When the PDF is extracted
    document = extract_document(make_pdf(pages), "report.pdf")

    # Then only the body text is left on each page
    assert [page.text for page in document.pages] == bodies


def test_pdf_placeholder_title_is_ignored(make_pdf):
    # Given a PDF whose metadata title is an accession number, not a title
    pdf = make_pdf(["Annual report"], title="0001543151-22-000008")

    # When it is extracted
    document = extract_document(pdf, "10k.pdf")

    # Then no title is claimed
    assert document.title is None


def test_encrypted_pdf_raises_encrypted_document(make_pdf, make_encrypted_pdf):
    # Given a PDF that needs a password to open
    pdf = make_encrypted_pdf(make_pdf(["Top secret plans"]), "s3cret")

    # When it is extracted
    # Then it fails with a typed, readable error
    with pytest.raises(EncryptedDocument) as error:
        extract_document(pdf, "secret.pdf")
    assert error.value.message == "PDF is encrypted and cannot be read without a password"
    assert error.value.code == "encrypted_document"


def test_pdf_encrypted_with_empty_user_password_is_extracted(make_pdf, make_encrypted_pdf):
    # Given a PDF encrypted only with an owner password (it opens with an empty password)
    pdf = make_encrypted_pdf(make_pdf(["Readable by anyone"]), "", "owner-only")

    # When it is extracted
    document = extract_document(pdf, "restricted.pdf")

    # Then its text comes out and the metadata says it was encrypted
    assert document.pages[0].text == "Readable by anyone"
    assert document.metadata["encrypted"].startswith("true")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda pdf: pdf[: len(pdf) // 2], id="truncated"),
        pytest.param(lambda pdf: b"%PDF-1.4\n" + bytes(range(256)) * 8, id="garbage-after-header"),
        pytest.param(lambda pdf: pdf.replace(b"xref", b"xxxx"), id="no-cross-reference-table"),
    ],
)
def test_corrupt_pdf_raises_corrupt_document(make_pdf, damage):
    # Given a PDF that is damaged
    pdf = damage(make_pdf(["Some text", "More text"]))

    # When it is extracted
    # Then it fails with CorruptDocument (never a pypdf exception)
    with pytest.raises(CorruptDocument) as error:
        extract_document(pdf, "broken.pdf")
    assert "PDF" in error.value.message


def test_pdf_name_without_pdf_bytes_is_corrupt():
    # Given a file named .pdf that holds no PDF header
    data = b"this is not a pdf at all"

    # When it is extracted
    # Then the mismatch is reported as a corrupt PDF
    with pytest.raises(CorruptDocument, match="no %PDF header"):
        extract_document(data, "invoice.pdf")


def test_pdf_without_text_layer_raises_no_text_layer(make_pdf):
    # Given a PDF with three pages and no text on any (a scan without OCR looks like this)
    pdf = make_pdf(["", "", ""])

    # When it is extracted
    # Then NoTextLayer names the page count
    with pytest.raises(NoTextLayer) as error:
        extract_document(pdf, "scan.pdf")
    assert error.value.message == "PDF has 3 pages but no text layer (scanned image?)"


def test_pdf_without_pages_raises_empty_document(make_pdf):
    # Given a valid PDF with an empty page tree
    pdf = make_pdf([])

    # When it is extracted
    # Then it is an empty document
    with pytest.raises(EmptyDocument, match="no pages"):
        extract_document(pdf, "empty.pdf")


def test_pdf_is_detected_by_its_bytes_whatever_its_name(make_pdf):
    # Given a PDF uploaded under a misleading name and content type
    pdf = make_pdf(["Detected by magic"])

    # When it is extracted
    document = extract_document(pdf, "notes.txt", "text/plain")

    # Then the bytes win
    assert document.format == "pdf"
    assert document.metadata["detected_by"] == "magic"
