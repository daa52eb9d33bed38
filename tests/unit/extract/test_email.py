"""E-mail: subject as title, header lines, the text body, attachment names in metadata."""

from __future__ import annotations

from docket.extract import extract_document


def test_eml_subject_headers_and_plain_body(make_eml):
    # Given a message with a plain and an HTML alternative
    data = make_eml(plain="Revenue grew 15%.\n\nCosts fell.", html="<p>HTML VERSION</p>")

    # When it is extracted
    document = extract_document(data, "message.eml")

    # Then the subject is the title, headers lead the text, and the plain body is preferred
    assert document.format == "email"
    assert document.title == "Quarterly numbers"
    assert document.text == (
        "Subject: Quarterly numbers\n"
        "From: Alice Example <alice@example.com>\n"
        "To: bob@example.com\n"
        "Date: Mon, 16 Dec 2024 10:30:00 -0500\n\n"
        "Revenue grew 15%.\n\nCosts fell."
    )
    assert "HTML VERSION" not in document.text
    assert document.metadata["from"] == "Alice Example <alice@example.com>"


def test_eml_html_only_body_goes_through_the_html_cleaner(make_eml):
    # Given a message whose only body is HTML with a script and a heading
    html = "<html><body><script>alert('x')</script><h1>Outage</h1><p>DB is down.</p></body></html>"
    data = make_eml(plain=None, html=html)

    # When it is extracted
    document = extract_document(data, "alert.eml")

    # Then the body is clean structured text
    assert document.text.endswith("# Outage\n\nDB is down.")
    assert "alert(" not in document.text


def test_eml_attachments_are_listed_in_metadata(make_eml):
    # Given a message with two attachments
    data = make_eml(attachments=[("q4.xlsx", b"\x00\x01binary"), ("notes.pdf", b"%PDF-1.4")])

    # When it is extracted
    document = extract_document(data, "with-files.eml", "message/rfc822")

    # Then their names are in the metadata and their bytes are not in the text
    assert document.metadata["attachments"] == "q4.xlsx, notes.pdf"
    assert "binary" not in document.text


def test_eml_non_utf8_body_is_decoded(make_eml):
    # Given a body encoded as ISO-8859-1
    data = make_eml(plain="Gr\u00fc\u00dfe aus K\u00f6ln", charset="iso-8859-1")

    # When it is extracted
    document = extract_document(data, "gruss.eml")

    # Then the body reads correctly
    assert document.text.endswith("Gr\u00fc\u00dfe aus K\u00f6ln")


def test_eml_detected_by_sniffing_headers():
    # Given a raw message with no name hint
    data = b"From: a@example.com\nTo: b@example.com\nSubject: Hello\n\nJust checking in.\n"

    # When it is extracted
    document = extract_document(data, "incoming")

    # Then it is parsed as e-mail
    assert document.format == "email"
    assert document.title == "Hello"
