"""DOCX: headings as "# " lines by level, paragraphs, lists and tables in document order."""

from __future__ import annotations

import io

import docx
import pytest

from docket.errors import CorruptDocument
from docket.extract import extract_document


def _docx() -> bytes:
    document = docx.Document()
    document.core_properties.author = "Ops Team"
    document.add_heading("Incident Review", level=0)  # the "Title" style
    document.add_paragraph("The API was down for 12 minutes.")
    document.add_heading("Timeline", level=1)
    document.add_paragraph("Alert fired", style="List Bullet")
    document.add_paragraph("Rollback done", style="List Bullet")
    document.add_heading("Impact", level=2)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Region", "Errors"
    table.cell(1, 0).text, table.cell(1, 1).text = "eu-west-1", "4,312"
    document.add_paragraph("Follow-ups are tracked separately.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_structure_is_kept_in_document_order():
    # Given a DOCX with a title, headings, a bulleted list, a table and paragraphs
    data = _docx()

    # When it is extracted
    document = extract_document(data, "review.docx")

    # Then headings are "# " lines by level, list items are "- " lines, table rows are
    # " | "-joined, and everything stays in the order of the document
    assert document.format == "docx"
    assert document.title == "Incident Review"
    assert document.text == (
        "# Incident Review\n\n"
        "The API was down for 12 minutes.\n\n"
        "# Timeline\n\n"
        "- Alert fired\n- Rollback done\n\n"
        "## Impact\n\n"
        "Region | Errors\neu-west-1 | 4,312\n\n"
        "Follow-ups are tracked separately."
    )
    assert document.metadata["author"] == "Ops Team"


def test_docx_merged_cells_are_not_repeated():
    # Given a table whose first row is one merged cell
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 2))
    merged.text = "Totals"
    for column, value in enumerate(["1", "2", "3"]):
        table.cell(1, column).text = value
    buffer = io.BytesIO()
    document.save(buffer)

    # When it is extracted
    text = extract_document(buffer.getvalue(), "totals.docx").text

    # Then the merged cell appears once
    assert text == "Totals\n1 | 2 | 3"


def test_docx_that_is_not_a_zip_is_corrupt():
    # Given a .docx file that is not a ZIP container
    # When it is extracted
    # Then it fails as corrupt
    with pytest.raises(CorruptDocument, match="not a valid DOCX"):
        extract_document(b"plain words in a docx name", "report.docx")


def test_docx_with_damaged_document_part_is_corrupt(make_zip):
    # Given a ZIP that claims to be a DOCX but whose main part is not XML
    data = make_zip({"[Content_Types].xml": "<Types/>", "word/document.xml": "not xml <<<"})

    # When it is extracted
    # Then the library failure comes out as CorruptDocument
    with pytest.raises(CorruptDocument, match="DOCX"):
        extract_document(data, "broken.docx")
