"""HTML: boilerplate out, headings as "# " lines, paragraphs and tables kept readable."""

from __future__ import annotations

from docket.extract import extract_document


def test_html_boilerplate_is_dropped_and_content_kept(fixture_bytes):
    # Given a page with scripts, navigation, a site header and footer, a form and an aside
    page = fixture_bytes("boilerplate.html")

    # When it is extracted
    document = extract_document(page, "refunds.html", "text/html")

    # Then none of the chrome is left, only the article
    text = document.text
    for noise in (
        "SCRIPT-SHOULD-NOT-APPEAR", "INLINE-SCRIPT-TEXT", "NAV-LINK-TEXT", "SITE-HEADER-TEXT",
        "FOOTER-TEXT", "ASIDE-TEXT", "FORM-TEXT", "NOSCRIPT-TEXT", "HIDDEN-TEXT", "COMMENT-TEXT",
        "font-family",
    ):  # fmt: skip
        assert noise not in text
    assert "You can return any item within 30 days of delivery." in text
    assert document.format == "html"


def test_html_headings_become_markdown_lines_and_paragraphs_stay_apart(fixture_bytes):
    # Given a page with h1/h2 headings, paragraphs, a list and a data table
    page = fixture_bytes("boilerplate.html")

    # When it is extracted
    blocks = extract_document(page, "refunds.html").text.split("\n\n")

    # Then headings are "# " lines, the article's own header keeps its title, lists and table
    # rows are readable lines, and paragraphs are separate blocks
    assert blocks[0] == "# Refund Policy"
    assert "## Exceptions" in blocks
    assert "- Gift cards\n- Opened software" in blocks
    assert "Item | Window\nElectronics | 15 days" in blocks
    assert "Questions?\nWrite to support." in blocks


def test_html_title_from_title_tag_else_first_h1():
    # Given one page with a <title> and one with only an <h1>
    with_title = b"<html><head><title> Pricing  FAQ </title></head><body><p>Hi</p></body></html>"
    only_h1 = b"<html><body><h1>Release notes</h1><p>Version 2 is out.</p></body></html>"

    # When they are extracted
    # Then the title comes from <title>, else from the first <h1>
    assert extract_document(with_title, "faq.html").title == "Pricing FAQ"
    assert extract_document(only_h1, "notes.htm").title == "Release notes"


def test_html_meta_charset_is_honoured():
    # Given a windows-1252 page that says so in a <meta> tag (0x97 is an em dash there)
    page = (
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
        b"</head><body><p>caf\xe9 \x97 open</p></body></html>"
    )

    # When it is extracted
    document = extract_document(page, "cafe.html")

    # Then the text is decoded correctly, no mojibake
    assert document.text == "caf\u00e9 \u2014 open"


def test_html_layout_tables_are_read_as_blocks_not_rows():
    # Given an old-style page laid out in a table with <br><br> paragraph breaks
    page = (
        b"<html><body><table><tr><td><img src=logo.gif></td><td>"
        b"<font>First paragraph of the essay.<br><br>Second paragraph.</font>"
        b"</td></tr></table></body></html>"
    )

    # When it is extracted
    document = extract_document(page, "essay.html")

    # Then the paragraphs stay apart instead of being flattened into a " | " row
    assert document.text == "First paragraph of the essay.\n\nSecond paragraph."


def test_html_detected_by_sniffing_without_name_or_type():
    # Given HTML with no extension and no content type
    page = b"<!DOCTYPE html><html><body><h2>Status</h2><p>All systems go.</p></body></html>"

    # When it is extracted
    document = extract_document(page, "upload")

    # Then it is recognised as HTML
    assert document.format == "html"
    assert document.text == "## Status\n\nAll systems go."
