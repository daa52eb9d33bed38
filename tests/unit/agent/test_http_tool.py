"""http_request: the SSRF guard, redirects, errors and the outbox, over httpx.MockTransport and a
fake resolver (no DNS, no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from docket.agent.tools import default_registry
from docket.agent.tools.base import ToolContext
from docket.agent.tools.http import host_allowed, refused_address
from docket.agent.tools.services import ToolServices
from docket.config import Settings
from docket.errors import (
    DestinationNotAllowed,
    InvalidToolArguments,
    ToolError,
    ToolTimeout,
    ToolUnavailable,
)
from docket.models import Principal

PUBLIC = "93.184.216.34"
DNS = {
    "api.example.com": [PUBLIC],
    "docs.example.org": ["93.184.216.35"],
    "internal.example.com": ["192.168.1.5"],
    "mixed.example.org": ["93.184.216.36", "10.1.2.3"],
    "metadata.example.org": ["169.254.169.254"],
}
ALLOWED = frozenset(
    {
        "api.example.com",
        "*.example.org",
        "internal.example.com",
        # IP literals allow-listed on purpose: the address check must refuse them anyway
        "10.0.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "::1",
    }
)


class MemoryOutbox:
    def __init__(self) -> None:
        self.done: dict[str, dict[str, Any]] = {}

    def once(self, key: str, effect: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        if key in self.done:
            return self.done[key], True
        self.done[key] = effect()
        return self.done[key], False


class Server:
    """Routes requests by their Host header (the URL carries the checked IP) and records them."""

    def __init__(self, routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]]):
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.headers["host"], request.url.path))
        return handler(request) if handler else httpx.Response(404, text="no route")


def resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise ToolUnavailable(f"cannot resolve {host}")
    return DNS[host]


def call(
    args: dict[str, Any],
    server: Server,
    outbox: MemoryOutbox | None = None,
    limit: int = 20_000,
    key: str = "k1",
) -> str:
    services = ToolServices(
        settings=Settings(http_allowed_hosts=ALLOWED, tool_result_max_chars=limit),
        search=None,  # type: ignore[arg-type]
        documents=None,  # type: ignore[arg-type]
        emailer=None,  # type: ignore[arg-type]
        slack=None,  # type: ignore[arg-type]
        tables=None,  # type: ignore[arg-type]
        outbox=outbox or MemoryOutbox(),
        http_transport=httpx.MockTransport(server),
        resolve=resolver,
    )
    checked = default_registry().validate("http_request", args)
    ctx = ToolContext(
        task_id="task_" + "0" * 24,
        principal=Principal(subject="alice", tenant="acme"),
        execution="exec",
        step=1,
        call_id="call_1",
        idempotency_key=key,
        timeout_s=5.0,
        services=services,
    )
    return checked.tool.run(ctx, checked.args).content


def ok(text: str = "hello", **kw: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, text=text, **kw)


def redirect(to: str, status: int = 302) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers={"location": to})


# --- the guard ----------------------------------------------------------------------------------


def test_a_get_to_an_allowed_host_connects_to_the_checked_address():
    server = Server(
        {
            ("api.example.com", "/v1/items"): ok(
                '{"items": []}', headers={"content-type": "application/json"}
            )
        }
    )
    out = call({"url": "https://api.example.com/v1/items?x=1"}, server)
    assert out.startswith("HTTP 200 OK (GET https://api.example.com/v1/items?x=1)")
    assert out.endswith('{"items": []}')
    (request,) = server.requests
    # the connection goes to the address that was checked; the name is in Host and TLS SNI
    assert request.url.host == PUBLIC and request.url.query == b"x=1"
    assert request.headers["host"] == "api.example.com"
    assert request.extensions["sni_hostname"] == "api.example.com"


@pytest.mark.parametrize(
    "url",
    ["https://evil.example.net/", "https://example.org/", "https://api.example.com.evil.net/"],
)
def test_hosts_off_the_allow_list_are_refused(url: str):
    server = Server({})
    with pytest.raises(DestinationNotAllowed, match="not an allowed host"):
        call({"url": url}, server)
    assert server.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "private"),
        ("http://127.0.0.1:8080/admin", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]/", "loopback"),
        ("https://internal.example.com/", "192.168.1.5, a private address"),
        ("https://mixed.example.org/", "10.1.2.3"),  # one bad address is enough
        ("https://metadata.example.org/", "metadata"),
    ],
)
def test_private_loopback_and_metadata_addresses_are_refused(url: str, reason: str):
    server = Server({})
    with pytest.raises(DestinationNotAllowed, match=reason):
        call({"url": url}, server)
    assert server.requests == []


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.5",
        "127.0.0.1",
        "169.254.169.254",
        "169.254.170.2",
        "100.64.0.1",  # carrier-grade NAT: not public
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1%eth0",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_refused_addresses(address: str):
    assert refused_address(address) is not None


@pytest.mark.parametrize("address", [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"])
def test_public_addresses_pass(address: str):
    assert refused_address(address) is None


def test_wildcards_match_subdomains_only():
    assert host_allowed("a.example.org", ["*.example.org"])
    assert host_allowed("a.b.example.org", ["*.example.org"])
    assert not host_allowed("example.org", ["*.example.org"])
    assert not host_allowed("badexample.org", ["*.example.org"])
    assert host_allowed("api.example.com", ["API.example.com."])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"url": "ftp://api.example.com/file"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://user:pw@api.example.com/"}, "url"),
        ({"url": "https://api.example.com@10.0.0.1/"}, "url"),
        (
            {"url": "https://api.example.com/", "headers": {"Host": "internal.example.com"}},
            "headers",
        ),
        ({"url": "https://api.example.com/", "headers": {"X-A": "1\r\nX-B: 2"}}, "headers"),
        ({"url": "https://api.example.com/", "body": "x"}, "GET request has no body"),
        ({"url": "https://api.example.com/", "method": "TRACE"}, "method"),
    ],
)
def test_bad_requests_are_refused_before_anything_runs(args: dict[str, Any], field: str):
    with pytest.raises(InvalidToolArguments, match=field):
        default_registry().validate("http_request", args)


# --- redirects ----------------------------------------------------------------------------------


def test_a_redirect_to_a_private_address_is_refused():
    server = Server({("api.example.com", "/go"): redirect("http://internal.example.com/secret")})
    with pytest.raises(DestinationNotAllowed, match=r"192\.168\.1\.5"):
        call({"url": "https://api.example.com/go"}, server)
    assert [r.headers["host"] for r in server.requests] == ["api.example.com"]


def test_a_redirect_to_the_metadata_address_is_refused():
    server = Server(
        {("api.example.com", "/go"): redirect("http://169.254.169.254/latest/meta-data/")}
    )
    with pytest.raises(DestinationNotAllowed, match="metadata"):
        call({"url": "https://api.example.com/go"}, server)
    assert len(server.requests) == 1


def test_a_redirect_to_an_allowed_host_is_followed_without_credentials():
    server = Server(
        {
            ("api.example.com", "/old"): redirect("https://docs.example.org/new", 301),
            ("docs.example.org", "/new"): ok("moved here"),
        }
    )
    out = call(
        {"url": "https://api.example.com/old", "headers": {"Authorization": "Bearer t"}}, server
    )
    assert "HTTP 200" in out and out.endswith("moved here")
    assert "Redirected from: https://api.example.com/old" in out
    first, second = server.requests
    assert first.headers["authorization"] == "Bearer t"
    assert "authorization" not in second.headers  # another origin gets no credentials
    assert second.url.host == "93.184.216.35"


def test_a_relative_redirect_stays_on_the_host():
    server = Server({("api.example.com", "/a"): redirect("/b"), ("api.example.com", "/b"): ok("b")})
    assert call({"url": "https://api.example.com/a"}, server).endswith("b")


def test_more_than_three_redirects_are_refused():
    routes = {("api.example.com", f"/{i}"): redirect(f"/{i + 1}") for i in range(5)}
    server = Server(routes)
    with pytest.raises(ToolError, match="more than 3 redirects"):
        call({"url": "https://api.example.com/0"}, server)
    assert len(server.requests) == 4


# --- errors -----------------------------------------------------------------------------------------


def test_a_5xx_is_unavailable():
    server = Server({("api.example.com", "/"): lambda r: httpx.Response(503, text="busy")})
    with pytest.raises(ToolUnavailable, match="503"):
        call({"url": "https://api.example.com/"}, server)


def test_a_4xx_is_a_result_the_model_sees():
    server = Server({})
    out = call({"url": "https://api.example.com/missing"}, server)
    assert out.startswith("HTTP 404") and out.endswith("no route")


def test_a_timeout_is_a_tool_timeout():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ToolTimeout):
        call({"url": "https://api.example.com/"}, Server({("api.example.com", "/"): slow}))


def test_a_connection_error_is_unavailable():
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ToolUnavailable, match="cannot reach"):
        call({"url": "https://api.example.com/"}, Server({("api.example.com", "/"): refused}))


def test_a_long_body_is_cut_with_a_note():
    server = Server({("api.example.com", "/big"): ok("z" * 50_000)})
    out = call({"url": "https://api.example.com/big"}, server, limit=1000)
    assert "The body is cut" in out
    assert len(out) < 1200


def test_binary_bodies_are_described_not_shown():
    server = Server(
        {("api.example.com", "/img"): ok("\x89PNG....", headers={"content-type": "image/png"})}
    )
    out = call({"url": "https://api.example.com/img"}, server)
    assert "of image/png, not shown" in out and "PNG" not in out.split("\n\n", 1)[1].replace(
        "image/png", ""
    )


# --- side effects -----------------------------------------------------------------------------------


def test_a_post_goes_through_the_outbox_exactly_once():
    server = Server(
        {
            ("api.example.com", "/orders"): lambda r: httpx.Response(
                201, text="created " + r.content.decode()
            )
        }
    )
    outbox = MemoryOutbox()
    args = {
        "method": "POST",
        "url": "https://api.example.com/orders",
        "body": '{"n": 1}',
        "headers": {"Content-Type": "application/json"},
    }
    first = call(args, server, outbox)
    second = call(args, server, outbox)
    assert [r.method for r in server.requests] == ["POST"]
    assert server.requests[0].content == b'{"n": 1}'
    assert first.startswith("HTTP 201") and "Replayed" not in first
    assert (
        second.startswith("HTTP 201")
        and "Replayed" in second
        and second.endswith('created {"n": 1}')
    )


def test_a_refused_post_never_claims_the_outbox():
    outbox = MemoryOutbox()
    with pytest.raises(DestinationNotAllowed):
        call(
            {"method": "POST", "url": "https://internal.example.com/x", "body": "b"},
            Server({}),
            outbox,
        )
    assert outbox.done == {}


def test_a_get_does_not_use_the_outbox():
    outbox = MemoryOutbox()
    server = Server({("api.example.com", "/"): ok()})
    call({"url": "https://api.example.com/"}, server, outbox)
    call({"url": "https://api.example.com/"}, server, outbox)
    assert outbox.done == {} and len(server.requests) == 2


def test_a_303_after_a_post_is_fetched_with_get_and_no_body():
    server = Server(
        {
            ("api.example.com", "/submit"): redirect("/result", 303),
            ("api.example.com", "/result"): ok("thanks"),
        }
    )
    out = call({"method": "POST", "url": "https://api.example.com/submit", "body": "form"}, server)
    assert out.endswith("thanks")
    assert [(r.method, r.content) for r in server.requests] == [("POST", b"form"), ("GET", b"")]


def test_an_approved_post_is_not_redirected_to_another_origin():
    server = Server(
        {
            ("api.example.com", "/submit"): redirect("https://docs.example.org/elsewhere", 307),
            ("docs.example.org", "/elsewhere"): ok("took it"),
        }
    )
    with pytest.raises(DestinationNotAllowed, match="another origin"):
        call({"method": "POST", "url": "https://api.example.com/submit", "body": "b"}, server)
    assert [r.headers["host"] for r in server.requests] == ["api.example.com"]
