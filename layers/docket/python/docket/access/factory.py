"""The key service and the limiter the functions use, built once per settings (a test or the
local cloud that changes the settings gets new ones)."""

from __future__ import annotations

import threading
from typing import Any

from docket.access.keys import KeyService
from docket.access.limits import Limiter
from docket.config import Settings, get_settings

_built: dict[str, tuple[Settings, Any]] = {}
_lock = threading.Lock()


def _for_settings(name: str, build: Any) -> Any:
    settings = get_settings()
    with _lock:
        held = _built.get(name)
        if held is None or held[0] is not settings:
            held = _built[name] = (settings, build(settings))
        return held[1]


def _build_keys(settings: Settings) -> KeyService:
    if settings.keys_table:
        from docket.access.dynamodb import DynamoKeyStore

        return KeyService(DynamoKeyStore(settings.keys_table))
    from docket.access.memory import MemoryKeyStore

    return KeyService(MemoryKeyStore())


def _build_limiter(settings: Settings) -> Limiter:
    if settings.limits_table:
        from docket.access.dynamodb import DynamoBuckets

        return Limiter(settings, DynamoBuckets(settings.limits_table))
    from docket.access.memory import MemoryBuckets

    return Limiter(settings, MemoryBuckets())


def keys() -> KeyService:
    return _for_settings("keys", _build_keys)  # type: ignore[no-any-return]


def limiter() -> Limiter:
    return _for_settings("limiter", _build_limiter)  # type: ignore[no-any-return]
