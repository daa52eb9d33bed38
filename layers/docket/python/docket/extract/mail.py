"""E-mail (.eml) with the standard library parser: headers, the text body, attachment names."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import cast

from docket.extract.base import RawDocument
from docket.extract.encoding import decode_text

_HEADERS = (("subject", "Subject"), ("from", "From"), ("to", "To"), ("cc", "Cc"), ("date", "Date"))


def _header(message: EmailMessage, name: str) -> str | None:
    try:
        value = message.get(name)
        return " ".join(str(value).split()) or None if value is not None else None
    except Exception:  # a malformed header should not lose the rest of the message
        return None


def _part_text(part: EmailMessage) -> str:
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, ValueError, AssertionError):  # unknown charset, bad transfer encoding
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_text(payload, declared=part.get_content_charset(), what="e-mail body")[0]


def _body(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = _part_text(body)  # type: ignore[arg-type]
    if body.get_content_subtype() == "html":
        from docket.extract.markup import html_to_text, parse_html

        return html_to_text(parse_html(text))
    return text


def extract_email(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    decode_text(data, what="e-mail file")  # refuse binary data before parsing it as a message
    message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(data))
    headers = {key: _header(message, key) for key, _ in _HEADERS}
    lines = [f"{label}: {headers[key]}" for key, label in _HEADERS if headers[key]]
    attachments = [
        part.get_filename() or part.get_content_type() for part in message.iter_attachments()
    ]
    metadata = {key: value for key, value in headers.items() if value and key != "subject"}
    if attachments:
        metadata["attachments"] = ", ".join(attachments)
    message_id = _header(message, "message-id")
    if message_id:
        metadata["message_id"] = message_id
    text = "\n".join(lines) + "\n\n" + _body(message)
    return RawDocument.single(text, title=headers["subject"], metadata=metadata)
