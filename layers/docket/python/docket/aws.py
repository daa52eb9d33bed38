"""Lazily created, cached boto3 clients.

boto3 costs hundreds of milliseconds to import, so it is imported on first use, not when a handler
module loads; clients are created once per process and reused across invocations.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def client(service: str, region: str | None = None, endpoint_url: str | None = None) -> Any:
    return _client(service, region, endpoint_url)


def resource(service: str, region: str | None = None) -> Any:
    return _resource(service, region)


@cache
def _client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    from botocore.config import Config

    from docket.config import get_settings

    region = region or get_settings().region
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
    if service == "s3":  # presigned URLs too: Signature Version 2 is deprecated
        config = config.merge(Config(signature_version="s3v4"))
    with _lock:  # boto3 session client creation is not thread-safe
        return _session().client(
            service, region_name=region, endpoint_url=endpoint_url, config=config
        )


@cache
def _resource(service: str, region: str | None) -> Any:
    from docket.config import get_settings

    with _lock:
        return _session().resource(service, region_name=region or get_settings().region)


def reset_clients() -> None:
    """Forget cached clients (the local cloud calls this when it starts or stops its mock)."""
    _client.cache_clear()
    _resource.cache_clear()
    _session.cache_clear()
