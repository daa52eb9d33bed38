"""A live response that an invoker may offer a handler, as Lambda response streaming does.

API Gateway HTTP API calls Lambda and sends the response it returns, whole: nothing is offered
there, and routes return their whole body. The local gateway offers one for the length of an
invocation (the api handler runs in the gateway's request thread, so a context variable carries
it through the same handler, decorators and routes), and a route that streams writes to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class LiveResponse(Protocol):
    def start(self, status: int, headers: Mapping[str, str]) -> None:
        """Sends the status line and headers; the body follows in ``write``s."""
        ...

    def write(self, chunk: bytes) -> bool:
        """Sends ``chunk`` now; False once the client has gone (stop producing)."""
        ...


_offered: ContextVar[LiveResponse | None] = ContextVar("docket_live_response", default=None)


def live_response() -> LiveResponse | None:
    """The live response offered to this invocation, if any (never on AWS behind HTTP API)."""
    return _offered.get()


@contextmanager
def offering(response: LiveResponse) -> Iterator[LiveResponse]:
    token = _offered.set(response)
    try:
        yield response
    finally:
        _offered.reset(token)
