"""Server-Sent Events (``text/event-stream``): framing one event, and parsing a stream as it arrives.

Follows the WHATWG HTML "server-sent events" parsing rules. Lines end with CRLF, LF or CR only:
``str.splitlines`` (and httpx's ``iter_lines``) also break on U+2028, U+0085 and friends, which
JSON may carry unescaped, so the stream is split here.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MEDIA_TYPE = "text/event-stream"

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def encode(event: ServerSentEvent) -> str:
    """One event, ending with the blank line that dispatches it; multi-line data is kept."""
    if _LINE_END.search(event.event) or (event.id is not None and _LINE_END.search(event.id)):
        raise ValueError("an event name or id cannot contain a line break")
    if event.id is not None and "\0" in event.id:
        raise ValueError("an event id cannot contain NUL")
    lines = []
    if event.id is not None:
        lines.append(f"id: {event.id}")
    if event.event != "message":
        lines.append(f"event: {event.event}")
    lines.extend(f"data: {line}" for line in _LINE_END.split(event.data))
    return "\n".join(lines) + "\n\n"


def accepts(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for an event stream (named, with a non-zero q)."""
    for media_range in (accept or "").split(","):
        media_type, *params = (part.strip().lower() for part in media_range.split(";"))
        if media_type == MEDIA_TYPE:
            quality = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(quality) > 0
            except ValueError:
                return True
    return False


def iter_lines(chunks: Iterable[bytes | str]) -> Iterator[str]:
    """Lines (without their ends) from chunks split anywhere, even inside a UTF-8 sequence or a
    CRLF; the last line is yielded even without a line end."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    for chunk in chunks:
        buffer += decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        start = 0
        for match in _LINE_END.finditer(buffer):
            if match.group() == "\r" and match.end() == len(buffer):
                break  # a CR at the end may be the first half of a CRLF
            yield buffer[start : match.start()]
            start = match.end()
        buffer = buffer[start:]
    buffer += decoder.decode(b"", final=True)
    if buffer:
        yield buffer.removesuffix("\r")


def iter_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Events as their blank lines arrive. Comments and other fields (retry) are skipped; an event
    the stream ends in the middle of is dropped, as the standard says."""
    event, first = "", True
    data: list[str] = []
    last_id: str | None = None
    for line in lines:
        if first:
            line, first = line.removeprefix("\ufeff"), False
        if not line:
            if data:
                yield ServerSentEvent(event or "message", "\n".join(data), last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            last_id = value or None


def parse(body: str | bytes) -> list[ServerSentEvent]:
    """Every event of a whole body (a buffered response)."""
    return list(iter_events(iter_lines([body])))
