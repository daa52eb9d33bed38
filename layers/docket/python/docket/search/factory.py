"""Chooses the search index adapter from settings; one instance per process."""

from __future__ import annotations

import threading
from typing import Any

from docket.config import Settings

_lock = threading.Lock()
_indexes: dict[tuple[str, str], Any] = {}


def get_index(settings: Settings) -> Any:
    key = (settings.search_backend, str(settings.index_dir))
    with _lock:
        if key not in _indexes:
            from docket.embedding.factory import get_embedder
            from docket.search.embedded import EmbeddedIndex

            _indexes[key] = EmbeddedIndex(settings.index_dir, get_embedder(settings).model)
        return _indexes[key]


def close_indexes() -> None:
    with _lock:
        for index in _indexes.values():
            index.close()
        _indexes.clear()
