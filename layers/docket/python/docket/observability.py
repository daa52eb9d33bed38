"""Powertools logger, tracer and metrics, one instance each per process.

The X-Ray SDK (and the botocore it pulls in) costs a few hundred milliseconds to import, so the
tracer is built on the first invocation instead of at import time: handler modules stay cheap to
import, and bench/bench_cold_import.py reports the first-invocation cost separately.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

# A batch with nothing to count is normal; Powertools warns on every such flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")

SERVICE = "docket"
NAMESPACE = "Docket"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class LazyTracer:
    """Powertools Tracer with the same decorators, instantiated on first use; with tracing
    disabled (POWERTOOLS_TRACE_DISABLED, as in the local cloud) the functions run unwrapped."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Any = None

    @property
    def enabled(self) -> bool:
        import os

        return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("true", "1")

    @property
    def real(self) -> Any:
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self.service)
        return self._tracer

    def capture_lambda_handler(
        self, handler: Callable[..., Any] | None = None, **kwargs: Any
    ) -> Callable[..., Any]:
        if handler is None:
            return functools.partial(self.capture_lambda_handler, **kwargs)
        wrapped: list[Callable[..., Any]] = []

        @functools.wraps(handler)
        def entry(event: Any, context: Any) -> Any:
            if not wrapped:
                traced = self.enabled
                wrapped.append(
                    self.real.capture_lambda_handler(handler, **kwargs) if traced else handler
                )
            return wrapped[0](event, context)

        return entry

    def capture_method(
        self, method: Callable[..., Any] | None = None, **kwargs: Any
    ) -> Callable[..., Any]:
        if method is None:
            return functools.partial(self.capture_method, **kwargs)
        wrapped: list[Callable[..., Any]] = []

        @functools.wraps(method)
        def call(*args: Any, **kw: Any) -> Any:
            if not wrapped:
                traced = self.enabled
                wrapped.append(self.real.capture_method(method, **kwargs) if traced else method)
            return wrapped[0](*args, **kw)

        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


tracer = LazyTracer(SERVICE)
