"""Bytes to text without mojibake: BOM, declared charset, UTF-8, UTF-16 sniffing, then cp1252.

Binary data is refused here (a typed CorruptDocument) instead of being decoded into garbage:
after decoding, text must be almost free of control characters.
"""

from __future__ import annotations

import codecs
import re

from docket.errors import CorruptDocument

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# C0 and C1 controls other than the whitespace ones, plus the replacement character.
_SUSPICIOUS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")
_SAMPLE_CHARS = 1 << 20
_MAX_SUSPICIOUS_RATIO = 0.01


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark announces and the mark's length."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return None


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul = even.count(0) / len(even)
    odd_nul = odd.count(0) / len(odd)
    if odd_nul > 0.3 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.3 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def _known(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip("\"'")).name
    except LookupError:
        return None


def looks_binary(text: str) -> bool:
    sample = text[:_SAMPLE_CHARS]
    if not sample:
        return False
    return len(_SUSPICIOUS.findall(sample)) / len(sample) > _MAX_SUSPICIOUS_RATIO


def decode_text(data: bytes, *, declared: str | None = None, what: str = "file") -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)``; raise CorruptDocument for binary data."""
    candidates: list[str] = []
    body = data
    bom = bom_encoding(data)
    if bom:
        candidates.append(bom[0])
        body = data[bom[1] :]
    else:
        declared_name = _known(declared)
        if declared_name:
            candidates.append(declared_name)
        utf16 = _utf16_without_bom(data)
        if utf16:
            candidates.append(utf16)
        candidates += ["utf-8", "cp1252"]
    for encoding in candidates:
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if "\x00" in text or looks_binary(text):
            continue
        return text, encoding
    else:
        # Every byte maps to a character in Latin-1, so this is the last resort for real text.
        text = body.decode("latin-1")
        if "\x00" not in text and not looks_binary(text):
            return text, "latin-1"
    raise CorruptDocument(f"{what} holds binary data, not text")
