"""Format detection order, unsupported formats, images and the size limit."""

from __future__ import annotations

import pytest

from docket.errors import (
    CorruptDocument,
    ExtractionError,
    FileTooLarge,
    NoTextLayer,
    UnsupportedFormat,
)
from docket.extract import detect_format, extract_document

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def test_file_over_the_size_limit_is_refused_before_parsing():
    # Given 60.2 MiB of bytes that would not even parse, and a 50 MiB limit
    data = b"\x00" * int(60.2 * 1024 * 1024)

    # When it is extracted
    # Then the size is the reason, in readable units
    with pytest.raises(FileTooLarge) as error:
        extract_document(data, "huge.pdf", max_bytes=50 * 1024 * 1024)
    assert error.value.message == "file is 60.2 MiB, over the 50.0 MiB limit"
    assert error.value.code == "file_too_large"


def test_size_limit_in_small_units_and_exact_limit_allowed():
    # Given a 2 KB text file
    data = b"a" * 2048

    # When it is extracted with a 1 KB limit, and with a limit of exactly its size
    with pytest.raises(FileTooLarge, match=r"file is 2\.0 KiB, over the 1\.0 KiB limit"):
        extract_document(data, "a.txt", max_bytes=1024)
    document = extract_document(data, "a.txt", max_bytes=2048)

    # Then only the larger file is refused
    assert document.text == "a" * 2048


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("slides.ppt", None, "unsupported format: .ppt (application/vnd.ms-powerpoint"),
        ("letter.doc", None, "unsupported format: .doc (application/msword"),
        ("budget.xls", None, "unsupported format: .xls (application/vnd.ms-excel"),
        ("mail.msg", None, "unsupported format: .msg (application/vnd.ms-outlook"),
        ("upload", "application/vnd.ms-powerpoint", "unsupported format: .ppt (application/vnd"),
    ],
)
def test_legacy_office_files_are_unsupported_with_a_named_format(filename, content_type, expected):
    # Given a legacy Office (OLE2) file
    # When it is extracted
    # Then UnsupportedFormat names the format and suggests what to do
    with pytest.raises(UnsupportedFormat) as error:
        extract_document(OLE2, filename, content_type)
    assert error.value.message.startswith(expected)
    assert error.value.code == "unsupported_format"


@pytest.mark.parametrize("filename", ["photo.png", "photo.txt", "photo"])
def test_images_have_no_text_layer(filename):
    # Given PNG bytes, whatever the name says
    # When they are extracted
    # Then the error says OCR is not configured
    with pytest.raises(NoTextLayer, match="PNG image without text layer; OCR not configured"):
        extract_document(PNG, filename)


def test_known_binary_container_is_unsupported():
    # Given a gzip stream named .gz
    data = b"\x1f\x8b\x08\x00" + b"\x00" * 32

    # When it is extracted
    # Then it is unsupported and says what it looked like
    with pytest.raises(UnsupportedFormat, match=r"\.gz .*gzip archive"):
        extract_document(data, "logs.gz")


def test_extension_wins_over_content_type():
    # Given CSV text named .csv but sent as text/plain
    # When it is extracted
    document = extract_document(b"a,b\n1,2\n", "t.csv", "text/plain")

    # Then the extension decides
    assert document.format == "csv"
    assert document.metadata["detected_by"] == "extension"


def test_content_type_is_used_when_the_name_has_no_known_extension():
    # Given CSV text with no extension and a CSV content type
    detection = detect_format(b"a,b\n1,2\n", "export", "text/csv; charset=utf-8")

    # When detected
    # Then the content type decides, and its charset is kept for decoding
    assert (detection.format, detection.via, detection.charset) == ("csv", "content_type", "utf-8")


def test_text_mentioning_pdf_header_is_not_a_pdf():
    # Given a text file that quotes a PDF header a few lines in
    data = b"How PDFs start:\n%PDF-1.7 is the first line of a PDF.\n"

    # When it is extracted
    document = extract_document(data, "howto.txt")

    # Then it stays text
    assert document.format == "text"


def test_every_error_is_an_extraction_error_with_a_message():
    # Given inputs that fail in each typed way
    cases = [b"", b"%PDF-1.4 garbage", OLE2, PNG]

    # When each is extracted
    # Then each failure is an ExtractionError with a non-empty message and a code
    for data in cases:
        with pytest.raises(ExtractionError) as error:
            extract_document(data, "f.pdf")
        assert error.value.message
        assert error.value.to_dict()["code"] != "extraction_failed"


def test_corrupt_damage_keeps_the_library_exception_as_cause(make_zip):
    # Given a DOCX-shaped ZIP whose document part is not XML
    data = make_zip({"word/document.xml": "<<<"})

    # When it is extracted
    with pytest.raises(CorruptDocument) as error:
        extract_document(data, "x.docx")

    # Then the original exception is chained for the logs
    assert error.value.__cause__ is not None
