"""The local cloud's stream poller: an idle check from another thread never reads at a position
the poller is moving past (a record already processed and trimmed cannot be read again)."""

from __future__ import annotations

import threading
from typing import Any

from docket.local.pollers import StreamPoller
from docket.wiring import EventSourceSpec


class Recording(StreamPoller):
    def __init__(self) -> None:
        spec = EventSourceSpec(
            function="docket-embed", kind="dynamodb_stream", source="docket-chunks", batch_size=2
        )
        super().__init__(spec, "us-east-1", "arn:stream", None)
        self.reads = 0
        self.pending: list[dict[str, Any]] = []

    def _read(self, limit: int) -> list[dict[str, Any]]:
        self.reads += 1
        return self.pending[:limit]

    def _waiting(self) -> int:  # what idle() asks of the shard
        self.reads += 1
        return len(self.pending)


def test_idle_waits_out_a_batch_in_progress_instead_of_reading_stale_positions() -> None:
    poller = Recording()
    assert poller.idle() and poller.reads == 1
    # While a batch holds the read position (poll_once between reading and advancing)...
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        with poller._position:
            started.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    started.wait(5)
    # ...the idle check neither reads nor claims idleness
    assert poller.idle() is False
    assert poller.reads == 1
    release.set()
    worker.join()
    poller.pending = [{"dynamodb": {"SequenceNumber": "7"}}]
    assert poller.idle() is False and poller.reads == 2
