"""Chooses the search index adapter from settings; one instance per process and index.

The embedded index is keyed by its directory; an OpenSearch index by endpoint, index prefix and
version, and embedding model (each model has its own index and aliases).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from docket.config import Settings

_lock = threading.Lock()
_indexes: dict[Hashable, Any] = {}


def _key(settings: Settings, model: Any) -> Hashable:
    if settings.search_backend == "opensearch":
        return (
            "opensearch",
            settings.opensearch_endpoint,
            settings.opensearch_index_prefix,
            settings.opensearch_index_version,
            model.tag,
            model.dimension,
        )
    return (settings.search_backend, str(settings.index_dir))


def get_index(settings: Settings) -> Any:
    from docket.embedding.factory import get_embedder

    model = get_embedder(settings).model
    key = _key(settings, model)
    with _lock:
        if key not in _indexes:
            _indexes[key] = _open(settings, model)
        return _indexes[key]


def _open(settings: Settings, model: Any) -> Any:
    if settings.search_backend == "opensearch":
        from docket.search.opensearch import OpenSearchIndex, opensearch_client

        return OpenSearchIndex(opensearch_client(settings), model, settings, close_client=True)
    from docket.search.embedded import EmbeddedIndex

    return EmbeddedIndex(settings.index_dir, model)


def drop_index(settings: Settings) -> None:
    """Delete the index ``settings`` name (a generation's), closing this process's handle."""
    from docket.embedding.factory import get_embedder

    model = get_embedder(settings).model
    key = _key(settings, model)
    with _lock:
        index = _indexes.pop(key, None)
        if index is None:
            index = _open(settings, model)
        index.drop()


def close_indexes() -> None:
    with _lock:
        for index in _indexes.values():
            index.close()
        _indexes.clear()
