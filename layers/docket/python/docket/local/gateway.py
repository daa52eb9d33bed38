"""The local API Gateway: HTTP requests → API Gateway HTTP API (v2) events → the api function.

Like the deployed HTTP API, it has the authorizer function (docket.api.authorizer) verify the
bearer token, a JWT or an API key, before any route runs (401 without one, or when the authorizer
says ``Unauthorized``) and passes the caller's claims in ``requestContext.authorizer.lambda``.
Unlike API Gateway it caches no authorization: a revoked key stops at once. One extra route exists
only here: ``POST /_local/token`` issues signed development tokens.

Unlike an HTTP API, it streams: a request that accepts ``text/event-stream`` is offered a live
response (docket.api.streaming) for the length of the invocation, and a route that streams
(``POST /query``) has each event sent, chunked, as it is produced.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from docket.api import sse, streaming
from docket.api.mcp_server import PATH as MCP_PATH
from docket.api.mcp_server import unauthorized
from docket.auth import issue_token
from docket.config import get_settings

log = logging.getLogger("docket.local")

PUBLIC_PATHS = {"/health", "/openapi.json"}
# routes that authenticate themselves: the signed approval link page and Slack's callbacks
SELF_AUTHENTICATED = (
    (frozenset({"GET", "POST"}), re.compile(r"^/approvals/apv_[0-9a-f]{24}$")),
    (frozenset({"POST"}), re.compile(r"^/slack/interactions$")),
)
TOKEN_PATH = "/_local/token"
MAX_BODY = 10 * 1024 * 1024


def build_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    context: dict[str, Any] | None,
) -> dict[str, Any]:
    """The v2 event of a request; ``context``: what the authorizer allowed it with."""
    parts = urlsplit(raw_path)
    query: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    text_types = ("json", "text", "xml", "x-www-form-urlencoded", "event-stream")
    ctype = headers.get("content-type", "")
    is_text = not body or any(t in ctype for t in text_types)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if "cookie" in headers:
        event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = (
            body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode()
        )
    if context is not None:
        event["requestContext"]["authorizer"] = {"lambda": context}
    return event


def authorizer_event(event: dict[str, Any]) -> dict[str, Any]:
    """The authorizer's request (payload 2.0, identity source the Authorization header)."""
    ctx = event["requestContext"]
    return {
        **event,
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:local:{ctx['accountId']}:{ctx['apiId']}/"
        f"{ctx['stage']}/{ctx['http']['method']}{ctx['http']['path']}",
        "identitySource": [event["headers"].get("authorization", "")],
    }


class _LiveResponse:
    """The live response offered to a streaming invocation: each write is sent and flushed at
    once, as an HTTP/1.1 chunk (close-delimited for an HTTP/1.0 client)."""

    def __init__(self, handler: _Handler, started: float) -> None:
        self.handler = handler
        self.started_at = started
        self.chunked = handler.request_version != "HTTP/1.0"
        self.started = False
        self.gone = False

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        handler = self.handler
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("x-docket-gateway-ms", _ms_since(self.started_at))
        if self.chunked:
            handler.send_header("transfer-encoding", "chunked")
        else:
            handler.send_header("connection", "close")
            handler.close_connection = True
        self.started = True
        self._send(handler.end_headers)

    def write(self, chunk: bytes) -> bool:
        if chunk and not self.gone:
            framed = b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked else chunk
            self._send(lambda: self.handler.wfile.write(framed))
        return not self.gone

    def finish(self) -> None:
        if self.chunked and not self.gone:
            self._send(lambda: self.handler.wfile.write(b"0\r\n\r\n"))

    def _send(self, send: Callable[[], object]) -> None:
        try:
            send()
            self.handler.wfile.flush()
        except OSError:  # the client went away: stop writing, drop the connection
            self.gone = True
            self.handler.close_connection = True


def _is_public(method: str, path: str) -> bool:
    if path in PUBLIC_PATHS:
        return True
    return any(method in methods and pattern.match(path) for methods, pattern in SELF_AUTHENTICATED)


def _ms_since(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "docket-local"
    protocol_version = "HTTP/1.1"
    cloud: Any = None

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        cookies: list[str] | None = None,
    ) -> None:
        self.send_response(status)
        headers = {"content-type": "application/json", **(headers or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        for cookie in cookies or ():  # one Set-Cookie each: cookies cannot be comma-joined
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True  # the body's end is unknown: nothing after it is read
            self._json(400, {"message": "Bad Request: invalid Content-Length"})
            return None
        if length > MAX_BODY:
            self._json(413, {"message": "Request Entity Too Large"})
            return None
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        started = time.perf_counter()
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path == TOKEN_PATH and self.command == "POST":
            self._issue_token(body)
            return
        mcp = path == MCP_PATH
        # HEAD is GET without the body (_send leaves it out), as HTTP defines it
        method = "GET" if self.command == "HEAD" else self.command
        event = build_event(method, self.path, headers, body, None)
        if not _is_public(self.command, path):
            allowed = self._authorize(event)
            if not isinstance(allowed, dict):
                if allowed == 401 and mcp:  # the MCP error shape: a JSON-RPC error, the challenge
                    self._lambda_response(unauthorized(), started)
                else:
                    self._json(allowed, {"message": _GATEWAY_MESSAGES[allowed]})
                return
            event["requestContext"]["authorizer"] = {"lambda": allowed}
        live = (
            _LiveResponse(self, started)
            if self.command != "HEAD" and sse.accepts(headers.get("accept"))
            else None
        )
        # API Gateway calls its integration directly (not through the Lambda Invoke API)
        with streaming.offering(live) if live else nullcontext():
            wiring = self.cloud.wiring
            function = wiring.mcp_function if mcp else wiring.api_function
            result, _errored = self.cloud.runtime.invoke(function, event)
        if live is not None and live.started:
            if not isinstance(result, dict) or "statusCode" not in result:
                log.error("api function failed while streaming: %s", result)
            live.finish()
            return
        if not isinstance(result, dict) or "statusCode" not in result:
            log.error("api function failed: %s", result)
            self._json(500, {"message": "Internal Server Error"})
            return
        self._lambda_response(result, started)

    def _authorize(self, event: dict[str, Any]) -> dict[str, Any] | int:
        """The authorizer's context for this request, or the status API Gateway would answer:
        401 without a bearer token or when the authorizer says Unauthorized, 403 when it says
        ``isAuthorized: false``, 500 when it fails otherwise."""
        if not event["headers"].get("authorization", "").strip():
            return 401  # no identity source: the authorizer is not called
        result, errored = self.cloud.runtime.invoke(
            self.cloud.wiring.authorizer_function, authorizer_event(event)
        )
        if errored:
            if isinstance(result, dict) and result.get("errorMessage") == "Unauthorized":
                return 401
            log.error("authorizer failed: %s", result)
            return 500
        if not isinstance(result, dict) or not result.get("isAuthorized"):
            return 403
        context = result.get("context") or {}
        return context if isinstance(context, dict) else 500

    def _lambda_response(self, result: dict[str, Any], started: float) -> None:
        """A Lambda proxy response (v2 payload) written as the HTTP response."""
        out_headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[name.lower()] = ", ".join(values)
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        out_headers["x-docket-gateway-ms"] = _ms_since(started)
        cookies = [str(c) for c in result.get("cookies") or []]
        self._send(int(result["statusCode"]), payload, out_headers, cookies)

    def _issue_token(self, body: bytes) -> None:
        try:
            req = json.loads(body or b"{}")
            tenant = str(req["tenant"])
            raw_groups = req.get("groups") or []
            if not isinstance(raw_groups, list) or not all(isinstance(g, str) for g in raw_groups):
                raise TypeError("groups must be a list of strings")
            groups = list(raw_groups)
            raw_scopes = req.get("scopes")
            if raw_scopes is not None and (
                not isinstance(raw_scopes, list) or not all(isinstance(s, str) for s in raw_scopes)
            ):
                raise TypeError("scopes must be a list of strings")
            subject = str(req.get("subject") or f"dev-user@{tenant}")
        except (ValueError, KeyError, TypeError) as exc:
            self._json(
                400, {"error": {"code": "invalid_request", "message": f"bad token request: {exc}"}}
            )
            return
        from docket.models import Principal

        try:
            Principal(subject=subject, tenant=tenant, groups=frozenset(groups))
        except ValueError as exc:
            self._json(400, {"error": {"code": "invalid_request", "message": str(exc)}})
            return
        token = issue_token(
            get_settings(), subject=subject, tenant=tenant, groups=groups, scopes=raw_scopes
        )
        self._json(200, {"token": token, "tenant": tenant, "groups": sorted(set(groups))})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _not_allowed(self) -> None:
        if self._read_body() is None:
            return
        self._send(405, json.dumps({"message": "Method Not Allowed"}).encode(), {"allow": _ALLOW})

    do_TRACE = do_CONNECT = _not_allowed

    def __getattr__(self, name: str) -> Any:
        # any other method (QUERY, PROPFIND...): a JSON 405, not http.server's HTML 501
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)


_ALLOW = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"
_GATEWAY_MESSAGES = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}


class _Server(ThreadingHTTPServer):
    """A client that hangs up (a CLI exiting with a kept-alive connection) is not an error worth
    a traceback on the console; anything else still goes to the default report."""

    # socketserver's default backlog is 5: thirty clients connecting at once overflowed it and
    # some of their connections were reset (bench/bench_load.py saw 2 in 2,901 requests)
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


class Gateway:
    def __init__(self, cloud: Any, host: str = "127.0.0.1", port: int = 8787) -> None:
        self.cloud = cloud
        handler = type("BoundHandler", (_Handler,), {"cloud": cloud})
        self.server = _Server((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="gateway", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> Gateway:
        """Serve; e-mailed approval links point here (DOCKET_APPROVAL_BASE_URL, unless set)."""
        from docket.agent import factory
        from docket.config import reset_settings

        if "DOCKET_APPROVAL_BASE_URL" not in getattr(self.cloud, "extra_env", {}):
            os.environ["DOCKET_APPROVAL_BASE_URL"] = self.url
            reset_settings()
            factory.reset()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
