"""EPUB: the spine's XHTML documents in reading order, each through the HTML cleaner.

Each spine document becomes a page numbered by its position in the spine, so a citation can
point at the chapter it came from.
"""

from __future__ import annotations

from lxml import etree

from docket.errors import CorruptDocument, EncryptedDocument
from docket.extract.archive import Package, resolve
from docket.extract.base import RawDocument, RawPage
from docket.extract.encoding import decode_text
from docket.extract.markup import html_to_text, parse_html

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_XHTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}


def _package_path(package: Package) -> str:
    if "META-INF/container.xml" in package:
        rootfile = package.xml("META-INF/container.xml").find(f".//{_CONTAINER}rootfile")
        if rootfile is not None and rootfile.get("full-path"):
            return str(rootfile.get("full-path"))
    candidates = sorted(name for name in package.names if name.endswith(".opf"))
    if not candidates:
        raise CorruptDocument("EPUB is damaged: no package document (.opf)")
    return candidates[0]


def _check_drm(package: Package) -> None:
    """Font obfuscation is common and harmless; encrypted content documents are DRM."""
    if "META-INF/encryption.xml" not in package:
        return
    for reference in package.xml("META-INF/encryption.xml").iter(f"{_ENC}CipherReference"):
        if reference.get("URI", "").lower().endswith((".html", ".xhtml", ".htm", ".xml")):
            raise EncryptedDocument("EPUB is DRM-protected and cannot be read")


def _metadata_text(opf: etree._Element, name: str) -> str | None:
    element = opf.find(f".//{_DC}{name}")
    return element.text.strip() if element is not None and element.text else None


def extract_epub(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    package = Package(data, "EPUB")
    _check_drm(package)
    opf_path = _package_path(package)
    opf = package.xml(opf_path)
    manifest = {
        item.get("id"): (resolve(opf_path, item.get("href", "")), item.get("media-type", ""))
        for item in opf.iter(f"{_OPF}item")
    }
    spine = [ref.get("idref") for ref in opf.iter(f"{_OPF}itemref")]
    pages = []
    for number, idref in enumerate(spine, start=1):
        part, media_type = manifest.get(idref, ("", ""))
        if media_type not in _XHTML_TYPES or part not in package:
            continue
        markup, _ = decode_text(package.read(part), what=f"EPUB part {part}")
        pages.append(RawPage(number, html_to_text(parse_html(markup))))
    metadata = {
        key: value
        for key, value in {
            "author": _metadata_text(opf, "creator"),
            "language": _metadata_text(opf, "language"),
            "page_count": str(len(spine)),
            "page_unit": "section",
        }.items()
        if value
    }
    return RawDocument(pages=pages, title=_metadata_text(opf, "title"), metadata=metadata)
