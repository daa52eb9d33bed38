"""Builders for small documents of every format, made in memory so tests own their fixtures."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage

_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def build_pdf(pages: Sequence[str], title: str | None = None) -> bytes:
    """A minimal valid PDF written by hand: each page shows its lines in Helvetica."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = add(b"")  # filled in once the kids are known
    kids = []
    for page in pages:
        lines = page.split("\n") if page else []
        ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(b"(" + escaped.encode("latin-1") + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops) if lines else b""
        content = add(b"<< /Length %d >>\nstream\n%b\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_id, font, content)
            )
        )
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%b] /Count %d >>" % (refs, len(kids))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    info = add(b"<< /Title (%b) >>" % title.encode("latin-1")) if title else None
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n%b >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def build_placed_pdf(
    pages: Sequence[Sequence[tuple[float, float, str]]], *, rotated: bool = False
) -> bytes:
    """A PDF whose pages draw text runs at given places: (x, y, text), in drawing order, in
    10-point Helvetica on a US Letter page (y counts up from the bottom edge). ``rotated`` turns
    every run a quarter turn (text running up the page)."""
    matrix = b"0 1 -1 0" if rotated else b"1 0 0 1"
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = add(b"")
    kids = []
    for runs in pages:
        ops = []
        for x, y, text in runs:
            escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(
                b"BT /F1 10 Tf %b %.2f %.2f Tm (%b) Tj ET"
                % (matrix, x, y, escaped.encode("latin-1"))
            )
        stream = b"\n".join(ops)
        content = add(b"<< /Length %d >>\nstream\n%b\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_id, font, content)
            )
        )
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%b] /Count %d >>" % (refs, len(kids))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"<< /Size %d /Root %d 0 R >>" % (len(objects) + 1, catalog)
    out += b"trailer\n%b\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def encrypt_pdf(pdf: bytes, user_password: str, owner_password: str | None = None) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def build_zip(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _rels(*targets: tuple[str, str, str]) -> str:
    body = "".join(
        f'<Relationship Id="{rid}" Type="{_R}/{kind}" Target="{target}"/>'
        for rid, kind, target in targets
    )
    return f'<Relationships xmlns="{_PKG}">{body}</Relationships>'


def _shape(paragraphs: Sequence[str], placeholder: str | None = None) -> str:
    ph = f'<p:ph type="{placeholder}"/>' if placeholder else ""
    body = "".join(f"<a:p><a:r><a:t>{text}</a:t></a:r></a:p>" for text in paragraphs)
    return (
        f'<p:sp><p:nvSpPr><p:cNvPr id="2" name="s"/><p:cNvSpPr/><p:nvPr>{ph}</p:nvPr>'
        f"</p:nvSpPr><p:txBody><a:bodyPr/>{body}</p:txBody></p:sp>"
    )


def _slide(shapes: str) -> str:
    return (
        f'<p:sld xmlns:a="{_A}" xmlns:p="{_P}" xmlns:r="{_R}">'
        f"<p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:sld>"
    )


def build_pptx(
    slides: Sequence[tuple[str, Sequence[str]]], notes: dict[int, str] | None = None
) -> bytes:
    """Slides (title, bullet lines); the file parts are numbered in reverse of the slide order."""
    notes = notes or {}
    members: dict[str, str | bytes] = {}
    ids, rels = [], []
    count = len(slides)
    for index, (title, bullets) in enumerate(slides, start=1):
        part_number = count - index + 1
        rid = f"rId{index + 10}"
        ids.append(f'<p:sldId id="{255 + index}" r:id="{rid}"/>')
        rels.append((rid, "slide", f"slides/slide{part_number}.xml"))
        members[f"ppt/slides/slide{part_number}.xml"] = _slide(
            _shape([title], "title") + _shape(bullets)
        )
        if index in notes:
            members[f"ppt/slides/_rels/slide{part_number}.xml.rels"] = _rels(
                ("rId1", "notesSlide", f"../notesSlides/notesSlide{part_number}.xml")
            )
            members[f"ppt/notesSlides/notesSlide{part_number}.xml"] = (
                _slide(_shape(["slide image"], "sldImg") + _shape([notes[index]], "body"))
                .replace("p:sld ", "p:notes ")
                .replace("</p:sld>", "</p:notes>")
            )
    members["ppt/presentation.xml"] = (
        f'<p:presentation xmlns:p="{_P}" xmlns:r="{_R}"><p:sldIdLst>{"".join(ids)}'
        "</p:sldIdLst></p:presentation>"
    )
    members["ppt/_rels/presentation.xml.rels"] = _rels(*rels)
    return build_zip(members)


def build_xlsx(rows: Sequence[Sequence[str | int | float | None]], sheet: str = "Sales") -> bytes:
    """One worksheet; strings go to the shared-string table, numbers stay numbers."""
    strings: list[str] = []
    xml_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(ord('A') + c)}{r}"
            if value is None:
                continue
            if isinstance(value, str):
                if value not in strings:
                    strings.append(value)
                cells.append(f'<c r="{ref}" t="s"><v>{strings.index(value)}</v></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        xml_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    shared = "".join(f"<si><t>{text}</t></si>" for text in strings)
    return build_zip(
        {
            "xl/workbook.xml": (
                f'<workbook xmlns="{_S}" xmlns:r="{_R}"><sheets>'
                f'<sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'
            ),
            "xl/_rels/workbook.xml.rels": _rels(
                ("rId1", "worksheet", "worksheets/sheet1.xml"),
                ("rId2", "sharedStrings", "sharedStrings.xml"),
            ),
            "xl/sharedStrings.xml": f'<sst xmlns="{_S}">{shared}</sst>',
            "xl/worksheets/sheet1.xml": (
                f'<worksheet xmlns="{_S}"><sheetData>{"".join(xml_rows)}</sheetData></worksheet>'
            ),
        }
    )


def build_odt(body: str, title: str | None = None) -> bytes:
    """``body`` is the XML inside <office:text>, with the text: and table: prefixes."""
    namespaces = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"'
    )
    members: dict[str, str | bytes] = {
        "mimetype": "application/vnd.oasis.opendocument.text",
        "content.xml": (
            f"<office:document-content {namespaces}><office:body><office:text>{body}"
            "</office:text></office:body></office:document-content>"
        ),
    }
    if title:
        members["meta.xml"] = (
            f"<office:document-meta {namespaces}><office:meta><dc:title>{title}</dc:title>"
            "</office:meta></office:document-meta>"
        )
    return build_zip(members)


def build_epub(chapters: Sequence[str], title: str = "A Small Book") -> bytes:
    """Chapters are XHTML bodies; the spine lists them in reverse of their file names."""
    members: dict[str, str | bytes] = {
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": (
            '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" '
            'media-type="application/oebps-package+xml"/></rootfiles></container>'
        ),
    }
    items, refs = [], []
    for index, body in enumerate(chapters):
        name = f"part{len(chapters) - index}.xhtml"
        members[f"OEBPS/text/{name}"] = (
            '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>{title}</title></head><body>{body}</body></html>"
        )
        items.append(f'<item id="c{index}" href="text/{name}" media-type="application/xhtml+xml"/>')
        refs.append(f'<itemref idref="c{index}"/>')
    members["OEBPS/content.opf"] = (
        '<package xmlns="http://www.idpf.org/2007/opf" version="2.0"><metadata '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
        f"<dc:creator>A. Writer</dc:creator></metadata><manifest>{''.join(items)}</manifest>"
        f"<spine>{''.join(refs)}</spine></package>"
    )
    return build_zip(members)


def build_eml(
    *,
    subject: str = "Quarterly numbers",
    plain: str | None = "Revenue grew 15% this quarter.",
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
    charset: str = "utf-8",
) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "bob@example.com"
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Dec 2024 10:30:00 -0500"
    if plain is not None:
        message.set_content(plain, charset=charset)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()
