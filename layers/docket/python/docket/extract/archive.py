"""Safe reading of ZIP-packaged formats (OOXML, OpenDocument, EPUB) and of their XML parts.

Members are size-checked before they are inflated (no ZIP bombs) and XML is parsed without
DTDs, entity expansion or network access (no XXE, no billion laughs).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from urllib.parse import unquote

from lxml import etree

from docket.errors import CorruptDocument, FileTooLarge
from docket.extract.core import human_size

MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
)


class Package:
    """A ZIP container; ``read`` and ``xml`` refuse members that would inflate past the limits."""

    def __init__(self, data: bytes, label: str) -> None:
        self.label = label
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise CorruptDocument(f"{label} is damaged (broken ZIP container)") from exc
        self.names = set(self.zip.namelist())
        self._inflated = 0

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def read(self, name: str) -> bytes:
        try:
            info = self.zip.getinfo(name)
        except KeyError as exc:
            raise CorruptDocument(f"{self.label} is damaged: part {name} is missing") from exc
        self._inflated += info.file_size
        if info.file_size > MAX_MEMBER_BYTES:
            raise FileTooLarge(
                f"{self.label} part {name} inflates to {human_size(info.file_size)}, "
                f"over the {human_size(MAX_MEMBER_BYTES)} limit for one part"
            )
        if self._inflated > MAX_TOTAL_BYTES:
            raise FileTooLarge(
                f"{self.label} inflates to more than {human_size(MAX_TOTAL_BYTES)}, over the limit"
            )
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise CorruptDocument(f"{self.label} is damaged: part {name} cannot be read") from exc

    def xml(self, name: str) -> etree._Element:
        return parse_xml(self.read(name), f"{self.label} part {name}")


def parse_xml(data: bytes, what: str) -> etree._Element:
    try:
        return etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise CorruptDocument(f"{what} is not well-formed XML: {exc}") from exc


def resolve(base_part: str, target: str) -> str:
    """A relationship target relative to the part that refers to it, as a ZIP member name."""
    target = unquote(target.split("#", 1)[0])
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def local_name(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""
