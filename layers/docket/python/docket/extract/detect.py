"""Which format a file is: magic bytes first, then the file name's extension, then the content type.

A file whose bytes contradict its name fails here with a typed error instead of being parsed as
the wrong thing (a PDF without ``%PDF``, a ZIP that is not a DOCX, an image named .txt).
"""

from __future__ import annotations

import io
import mimetypes
import re
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath

from docket.errors import CorruptDocument, EncryptedDocument, NoTextLayer, UnsupportedFormat
from docket.extract.encoding import decode_text

LABELS = {
    "pdf": "PDF",
    "html": "HTML",
    "docx": "DOCX",
    "pptx": "PPTX",
    "xlsx": "XLSX",
    "odt": "ODT",
    "ods": "ODS",
    "odp": "ODP",
    "epub": "EPUB",
    "rtf": "RTF",
    "email": "e-mail",
    "csv": "CSV",
    "tsv": "TSV",
    "json": "JSON",
    "jsonl": "JSON Lines",
    "markdown": "Markdown",
    "text": "text",
    "rst": "reStructuredText",
    "org": "Org",
}

EXTENSIONS = {
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".odt": "odt",
    ".ods": "ods",
    ".odp": "odp",
    ".epub": "epub",
    ".rtf": "rtf",
    ".eml": "email",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "rst",
    ".org": "org",
}

CONTENT_TYPES = {
    "application/pdf": "pdf",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/epub+zip": "epub",
    "application/rtf": "rtf",
    "text/rtf": "rtf",
    "message/rfc822": "email",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "text/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "text/x-rst": "rst",
    "text/org": "org",
}

ZIP_FORMATS = {"docx", "pptx", "xlsx", "odt", "ods", "odp", "epub"}
BINARY_FORMATS = ZIP_FORMATS | {"pdf"}

_ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/epub+zip": "epub",
}
_OOXML_MAIN_PARTS = {
    "word/document.xml": "docx",
    "ppt/presentation.xml": "pptx",
    "xl/workbook.xml": "xlsx",
}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"BZh", "bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"\x7fELF", "executable"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\x00asm", "WebAssembly module"),
    (b"OggS", "Ogg media"),
    (b"fLaC", "FLAC audio"),
    (b"ID3", "MP3 audio"),
)
_HINTS = {
    ".doc": "legacy Word binary format, save it as .docx",
    ".xls": "legacy Excel binary format, save it as .xlsx",
    ".ppt": "legacy PowerPoint binary format, save it as .pptx",
    ".msg": "Outlook message, save it as .eml",
}
_EXTRA_TYPES = {".msg": "application/vnd.ms-outlook", ".md": "text/markdown"}
_HTML_SNIFF = re.compile(rb"^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I)
_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:[ \t]", re.M)
_EMAIL_HEADERS = {"from", "to", "subject", "date", "message-id", "received", "mime-version"}


@dataclass(frozen=True)
class Detection:
    format: str
    via: str  # magic | extension | content_type | sniff
    charset: str | None = None

    @property
    def label(self) -> str:
        return LABELS.get(self.format, self.format)


def _parse_content_type(content_type: str | None) -> tuple[str | None, str | None]:
    if not content_type:
        return None, None
    message = Message()
    message["content-type"] = content_type
    parsed = message.get_content_type()
    # email falls back to text/plain for an unparsable header; do not pretend we were told that.
    mime = parsed if content_type.strip().lower().split(";")[0].strip() == parsed else None
    charset = message.get_param("charset")
    return mime, charset if isinstance(charset, str) else None


def _extension(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def unsupported_message(ext: str, mime: str | None, kind: str | None = None) -> str:
    if not ext and mime:
        ext = mimetypes.guess_extension(mime) or ""
    shown_type = (
        mime or _EXTRA_TYPES.get(ext) or (mimetypes.guess_type(f"x{ext}")[0] if ext else None)
    )
    what = ext or "file without extension"
    detail = ", ".join(part for part in (shown_type, kind) if part) or "unknown type"
    message = f"unsupported format: {what} ({detail})"
    hint = _HINTS.get(ext)
    return f"{message}; {hint}" if hint else message


def _zip_format(data: bytes, name: str, claimed: str | None, ext: str, mime: str | None) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = {info.filename for info in infos}
            mimetype = b""
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
                mimetype = archive.read("mimetype").strip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        what = LABELS[claimed] if claimed in ZIP_FORMATS else "ZIP archive"
        raise CorruptDocument(f"{name} is a damaged {what} (broken ZIP container)") from exc
    except NotImplementedError as exc:
        raise UnsupportedFormat(unsupported_message(ext, mime, "ZIP archive")) from exc
    found = _ODF_MIMETYPES.get(mimetype)
    if found is None:
        found = next((fmt for part, fmt in _OOXML_MAIN_PARTS.items() if part in names), None)
    if found is None and "META-INF/container.xml" in names:
        found = "epub"
    if found is None:
        if claimed in ZIP_FORMATS:
            raise CorruptDocument(
                f"{name} is not a valid {LABELS[claimed]}: unexpected ZIP contents"
            )
        raise UnsupportedFormat(unsupported_message(ext, mime, "ZIP archive"))
    if any(info.flag_bits & 0x1 for info in infos):
        raise EncryptedDocument(
            f"{LABELS[found]} is encrypted and cannot be read without a password"
        )
    return found


def _ole_format(data: bytes, ext: str, mime: str | None) -> str:
    if "EncryptedPackage".encode("utf-16-le") in data:
        # Password-protected DOCX/XLSX/PPTX are stored inside an OLE2 container.
        label = LABELS.get(EXTENSIONS.get(ext, ""), "Office document")
        raise EncryptedDocument(f"{label} is encrypted and cannot be read without a password")
    raise UnsupportedFormat(unsupported_message(ext, mime, "OLE2 compound file"))


def _sniff_text(data: bytes, charset: str | None) -> str:
    if _HTML_SNIFF.match(data[:1024].lstrip(b"\xef\xbb\xbf")):
        return "html"
    text, _ = decode_text(data[:65536], declared=charset)
    stripped = text.lstrip("\ufeff").lstrip()
    if stripped[:1] in ("{", "[") and data[-64:].rstrip()[-1:] in (b"}", b"]"):
        return "json"
    header_block = stripped.split("\n\n", 1)[0]
    names = {line.split(":", 1)[0].lower() for line in _HEADER_LINE.findall(header_block)}
    if len(names & _EMAIL_HEADERS) >= 2 and "from" in names:
        return "email"
    return "text"


def detect_format(data: bytes, filename: str, content_type: str | None = None) -> Detection:
    """Decide the format of ``data``; raise a typed ExtractionError when it cannot be read."""
    ext = _extension(filename)
    mime, charset = _parse_content_type(content_type)
    name = PurePosixPath(filename.replace("\\", "/")).name or "file"
    claimed = EXTENSIONS.get(ext) or (CONTENT_TYPES.get(mime) if mime else None)

    # Readers accept junk before the PDF header; only trust that when the name says PDF too.
    head = data[:1024]
    if head.lstrip()[:5] == b"%PDF-" or (claimed == "pdf" and b"%PDF-" in head):
        return Detection("pdf", "magic", charset)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Detection(_zip_format(data, name, claimed, ext, mime), "magic", charset)
    if data.startswith(_OLE_MAGIC):
        return Detection(_ole_format(data, ext, mime), "magic", charset)
    if head.lstrip()[:5] == b"{\\rtf":
        return Detection("rtf", "magic", charset)
    for magic, kind in _IMAGE_MAGIC:
        if data.startswith(magic):
            raise NoTextLayer(f"{kind} image without text layer; OCR not configured")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        raise NoTextLayer("WebP image without text layer; OCR not configured")
    for magic, kind in _BINARY_MAGIC:
        if data.startswith(magic):
            raise UnsupportedFormat(unsupported_message(ext, mime, kind))

    if claimed == "pdf":
        raise CorruptDocument(f"{name} is not a valid PDF (no %PDF header)")
    if claimed in ZIP_FORMATS:
        raise CorruptDocument(f"{name} is not a valid {LABELS[claimed]} (not a ZIP container)")
    if claimed == "rtf":
        raise CorruptDocument(f"{name} is not a valid RTF (no {{\\rtf header)")
    if ext in EXTENSIONS:
        return Detection(EXTENSIONS[ext], "extension", charset)
    if mime in CONTENT_TYPES:
        return Detection(CONTENT_TYPES[mime], "content_type", charset)
    try:
        return Detection(_sniff_text(data, charset), "sniff", charset)
    except CorruptDocument as exc:
        raise UnsupportedFormat(unsupported_message(ext, mime, "binary data")) from exc
