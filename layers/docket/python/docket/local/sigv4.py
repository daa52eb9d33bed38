"""The local AWS endpoint (``docket serve``'s port+1) checks AWS Signature Version 4, as AWS does.

moto's server accepts any request, so anyone on the machine could list every tenant's objects or
plant a file under another tenant's prefix, and a presigned URL stayed valid with its key swapped.
``SigV4Guard`` wraps the server's WSGI app: a request must be signed (the ``Authorization`` header,
or a presigned URL's query) with the data directory's own secret (``local_credentials``), within
its validity, for exactly the method, path, query and signed headers it carries, and with the body
whose SHA-256 it declares. Everything else gets S3's XML error with 403. moto's own control API
(``/moto-api``, which can reset the whole state) is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGN = timedelta(days=7)
_UNHASHED = {"UNSIGNED-PAYLOAD"}  # and STREAMING-…: the signature covers the declared value

StartResponse = Callable[..., Any]


class SignatureError(Exception):
    """Why a request is refused; its text goes back in the error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def local_credentials(data_dir: Path) -> tuple[str, str]:
    """The data directory's access key and secret, made once (readable by its owner only)."""
    path = data_dir / "credentials.json"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(
                {
                    "aws_access_key_id": "DOCKETLOCAL" + secrets.token_hex(4).upper(),
                    "aws_secret_access_key": secrets.token_urlsafe(30),
                },
                fh,
            )
        os.replace(tmp, path)
    data = json.loads(path.read_text())
    return str(data["aws_access_key_id"]), str(data["aws_secret_access_key"])


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _parse_authorization(header: str) -> dict[str, str]:
    algorithm, _, rest = header.partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError("AccessDenied", f"only {ALGORITHM} signatures are accepted")
    fields = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
        raise SignatureError(
            "AuthorizationHeaderMalformed", "the Authorization header is malformed"
        )
    return fields


def verify(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: Callable[[], bytes],
    secrets_by_key: dict[str, str],
    now: datetime | None = None,
) -> None:
    """Raise ``SignatureError`` unless the request carries a valid SigV4 signature. ``headers``
    have lower-case names; ``body`` reads the payload (called only when its hash is needed)."""
    now = now or datetime.now(UTC)
    pairs = _query_pairs(query)
    params = dict(pairs)
    if "authorization" in headers:
        auth = _parse_authorization(headers["authorization"])
        credential, signed, signature = auth["Credential"], auth["SignedHeaders"], auth["Signature"]
        amz_date = headers.get("x-amz-date", "")
        expires: timedelta | None = None
        presigned = False
    elif params.get("X-Amz-Algorithm") == ALGORITHM:
        try:
            credential, signed = params["X-Amz-Credential"], params["X-Amz-SignedHeaders"]
            signature, amz_date = params["X-Amz-Signature"], params["X-Amz-Date"]
            expires = timedelta(seconds=int(params["X-Amz-Expires"]))
        except (KeyError, ValueError) as exc:
            raise SignatureError(
                "AuthorizationQueryParametersError", "the presigned URL is incomplete"
            ) from exc
        pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
        presigned = True
    else:
        raise SignatureError("AccessDenied", "the request is not signed")
    try:
        key_id, date, region, service, terminal = credential.split("/")
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError("AuthorizationHeaderMalformed", "bad credential or date") from exc
    if terminal != "aws4_request" or not amz_date.startswith(date):
        raise SignatureError("AuthorizationHeaderMalformed", "bad credential scope")
    secret = secrets_by_key.get(key_id)
    if secret is None:
        raise SignatureError("InvalidAccessKeyId", "the access key is not this local cloud's")
    if expires is not None:
        if expires > MAX_PRESIGN or now > when + expires:
            raise SignatureError("AccessDenied", "the presigned URL has expired")
        if when - now > CLOCK_SKEW:
            raise SignatureError("AccessDenied", "the presigned URL is not valid yet")
    elif abs(now - when) > CLOCK_SKEW:
        raise SignatureError("RequestTimeTooSkewed", "the request time is too far from now")
    names = signed.split(";")
    if "host" not in names or any(n not in headers for n in names):
        raise SignatureError("AccessDenied", "a signed header is missing")
    declared = headers.get("x-amz-content-sha256") or params.get("X-Amz-Content-Sha256")
    if presigned and declared is None:
        payload_hash = "UNSIGNED-PAYLOAD"
    elif declared is not None and (declared in _UNHASHED or declared.startswith("STREAMING-")):
        payload_hash = declared
    else:
        payload_hash = hashlib.sha256(body()).hexdigest()
        if declared is not None and declared != payload_hash:
            raise SignatureError("XAmzContentSHA256Mismatch", "the body is not the one signed")
    canonical = "\n".join(
        [
            method,
            quote(unquote(raw_path), safe="/~"),
            "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs)),
            "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
            signed,
            payload_hash,
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureError(
            "SignatureDoesNotMatch",
            "the signature does not match the request (method, key, query or signed headers)",
        )


class SigV4Guard:
    """WSGI middleware: only correctly signed requests reach the wrapped app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], secrets_by_key: dict[str, str]):
        self.app = app
        self.secrets_by_key = secrets_by_key

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        raw_path, _, raw_query = path.partition("?")
        query = raw_query or environ.get("QUERY_STRING", "")
        if raw_path.startswith("/moto-api"):
            return _refuse(start_response, SignatureError("AccessDenied", "not available"))
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = str(environ[name])
        cached: list[bytes] = []

        def body() -> bytes:
            if not cached:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                cached.append(environ["wsgi.input"].read(length) if length else b"")
                environ["wsgi.input"] = io.BytesIO(cached[0])
            return cached[0]

        try:
            verify(environ["REQUEST_METHOD"], raw_path, query, headers, body, self.secrets_by_key)
        except SignatureError as exc:
            return _refuse(start_response, exc)
        return self.app(environ, start_response)


def _refuse(start_response: StartResponse, exc: SignatureError) -> list[bytes]:
    from xml.sax.saxutils import escape

    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{exc.code}</Code><Message>{escape(str(exc))}</Message></Error>"
    ).encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]
