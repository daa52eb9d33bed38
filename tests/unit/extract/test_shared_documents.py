"""Every shared document either gives clean text or fails with a typed ExtractionError.

Each file is extracted once per module (the two 10-K PDFs, 545 pages together, take most of
the time: pypdf parses their content streams in pure Python).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from docket.errors import ExtractionError, NoTextLayer, UnsupportedFormat
from docket.extract import extract_document
from docket.models import ExtractedDocument

pytestmark = pytest.mark.shared_data

Result = ExtractedDocument | ExtractionError


def _documents(shared_data: Path) -> list[Path]:
    root = shared_data / "documents"
    return sorted(
        path for path in root.rglob("*") if path.is_file() and not path.name.startswith("LICENSE")
    )


@pytest.fixture(scope="module")
def extracted(shared_data: Path) -> Callable[[str], Result]:
    """Extract a document (path relative to documents/) once, remembering text or typed error."""
    cache: dict[str, Result] = {}

    def extract(relative: str) -> Result:
        if relative not in cache:
            path = shared_data / "documents" / relative
            try:
                cache[relative] = extract_document(path.read_bytes(), path.name)
            except ExtractionError as error:
                cache[relative] = error
        return cache[relative]

    return extract


def _document(result: Result) -> ExtractedDocument:
    assert isinstance(result, ExtractedDocument), f"expected text, got {result!r}"
    return result


@pytest.mark.slow  # extracts the two 10-K PDFs: about 17 s of CPU in all
def test_every_shared_document_gives_text_or_a_typed_error(shared_data, extracted):
    # Given every file under shared_data/documents (LICENSE files aside)
    paths = _documents(shared_data)
    assert paths, "no shared documents found"

    # When each is extracted
    results = {
        path.name: extracted(str(path.relative_to(shared_data / "documents"))) for path in paths
    }

    # Then each is either non-empty clean text on numbered pages, or a typed error with a message
    for name, result in results.items():
        if isinstance(result, ExtractionError):
            assert result.message and result.code != "extraction_failed", name
            continue
        assert result.pages and result.text.strip(), name
        numbers = [page.number for page in result.pages]
        assert numbers == sorted(set(numbers)) and numbers[0] >= 1, name
    succeeded = [name for name, result in results.items() if isinstance(result, ExtractedDocument)]
    assert len(succeeded) >= 23


@pytest.mark.parametrize(
    ("relative", "error", "fragment"),
    [
        ("supported_file_types/doc.doc", UnsupportedFormat, "unsupported format: .doc"),
        ("supported_file_types/ppt.ppt", UnsupportedFormat, "unsupported format: .ppt"),
        ("supported_file_types/xls.xls", UnsupportedFormat, "unsupported format: .xls"),
        ("supported_file_types/msg.msg", UnsupportedFormat, "unsupported format: .msg"),
        ("supported_file_types/png.png", NoTextLayer, "OCR not configured"),
    ],
)
def test_unreadable_shared_formats_fail_with_the_right_reason(extracted, relative, error, fragment):
    # Given a legacy Office file or an image from the shared set
    # When it is extracted
    result = extracted(relative)

    # Then it fails with the typed reason, naming the format
    assert isinstance(result, error)
    assert fragment in result.message


def test_deepseek_pdf_keeps_its_22_pages_and_page_one_text(extracted):
    # Given the DeepSeek-R1 paper
    # When it is extracted
    document = _document(extracted("real_world/DeepSeek_R1.pdf"))

    # Then all 22 physical pages are there, in order, and page 1 is the abstract
    assert document.format == "pdf"
    assert [page.number for page in document.pages] == list(range(1, 23))
    first = document.pages[0].text
    assert first.startswith("DeepSeek-R1: Incentivizing Reasoning Capability in LLMs")
    assert "Abstract" in first
    assert "reinforcement learning" in first
    # a word the PDF hyphenates across lines ("super-" / "vised") comes out whole
    assert "without supervised fine-tuning" in first


@pytest.mark.slow
def test_uber_10k_keeps_every_page_number(extracted):
    # Given Uber's 307-page 10-K (encrypted with an empty user password)
    # When it is extracted
    document = _document(extracted("real_world/uber_2021.pdf"))

    # Then it opens, keeps its physical page numbers, and says it was encrypted
    assert document.metadata["page_count"] == "307"
    assert document.pages[0].number == 1 and document.pages[-1].number == 307
    assert "UBER TECHNOLOGIES, INC." in document.pages[2].text
    assert document.metadata["encrypted"].startswith("true")


@pytest.mark.parametrize(
    ("relative", "title"),
    [
        ("real_world/pg_essay_1.html", "A Project of One's Own"),
        ("real_world/pg_essay_2.html", "Fierce Nerds"),
    ],
)
def test_html_essays_are_clean_text_without_script_or_style(extracted, relative, title):
    # Given a saved Paul Graham essay page (scripts, styles, table layout, windows-1252)
    # When it is extracted
    document = _document(extracted(relative))

    # Then the title is the page title, and no script or style text is left
    assert document.title == title
    for leftover in ("<script", "csell_", "storeCheckoutDomain", "function ", "font-family", "{"):
        assert leftover not in document.text
    assert "\u2014" in document.text or "\u2019" in document.text or "'" in document.text
    assert "\n\n" in document.text  # paragraphs stay apart


def test_essay_1_text_starts_with_the_essay(extracted):
    # Given the first essay
    # When it is extracted
    text = _document(extracted("real_world/pg_essay_1.html")).text

    # Then it starts with the date line and the first sentence, decoded from windows-1252
    assert text.startswith("June 2021\n\nA few days ago, on the way home from school")
    assert "say \u2014 not just because" in text


def test_eml_subject_is_the_title(extracted):
    # Given the shared e-mail
    # When it is extracted
    document = _document(extracted("supported_file_types/eml.eml"))

    # Then the subject is the title, and headers and the plain body are in the text
    assert document.title == "Meeting Summary - Q4 Planning"
    assert document.text.startswith("Subject: Meeting Summary - Q4 Planning\nFrom: sender@")
    assert "Revenue targets increased by 15%" in document.text


@pytest.mark.parametrize(
    ("relative", "fmt", "fragment"),
    [
        ("supported_file_types/csv.csv", "csv", "Product: Laptop Pro X; Quantity: 2"),
        ("supported_file_types/tsv.tsv", "tsv", "Region: Europe; Year: 2024; Quarter: Q1"),
        ("supported_file_types/json.json", "json", "dashboard.name: Product Performance Dashboard"),
        ("supported_file_types/xlsx.xlsx", "xlsx", "First Name: Dulce; Last Name: Abril"),
        ("supported_file_types/pptx.pptx", "pptx", "# This is a Sample Slide"),
        ("supported_file_types/docx.docx", "docx", "# Technical Documentation"),
        ("supported_file_types/odt.odt", "odt", "Lorem ipsum dolor sit amet"),
        ("supported_file_types/rtf.rtf", "rtf", "Lorem ipsum dolor sit amet"),
        ("supported_file_types/epub.epub", "epub", "Happiness Is a Number"),
        ("supported_file_types/html.html", "html", "# Product Performance Dashboard"),
        ("supported_file_types/md.md", "markdown", "## Block Elements"),
        ("supported_file_types/rst.rst", "rst", "# Header 1"),
        ("supported_file_types/org.org", "org", "# Headlines"),
        ("supported_file_types/txt.txt", "text", "Lorem ipsum dolor sit amet"),
        ("supported_file_types/pdf.pdf", "pdf", "Dummy PDF file"),
        ("real_world/got.txt", "text", "Eddard (Ned) Stark"),
    ],
)
def test_supported_shared_files_extract_known_text(extracted, relative, fmt, fragment):
    # Given a shared file of a supported format
    # When it is extracted
    document = _document(extracted(relative))

    # Then the format is recognised and known text is present
    assert document.format == fmt
    assert fragment in document.text
