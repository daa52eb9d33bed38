"""In-process Lambda runtime: moto's Lambda invocations are dispatched to functions/*/handler.py.

moto runs a Lambda through ``LambdaFunction._invoke_lambda(self, event)``; replacing it makes
direct invokes, event source mappings and state machine tasks all call our handlers in-process.
Each function gets a small pool of "containers" (separately imported handler modules), so a
handler's module-level state is never shared by two concurrent invocations, as on Lambda.
"""

from __future__ import annotations

import importlib.util
import json
import queue
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from docket.wiring import FunctionSpec


@dataclass
class LambdaContext:
    """What Powertools reads from a Lambda context object."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


@dataclass
class InvocationStats:
    invocations: int = 0
    errors: int = 0
    total_ms: float = 0.0


_COLD_START = threading.RLock()


class FunctionRuntime:
    def __init__(self, functions_dir: Path, specs: tuple[FunctionSpec, ...], region: str) -> None:
        self.functions_dir = functions_dir
        self.specs = {s.name: s for s in specs}
        self.region = region
        self._pools: dict[str, queue.LifoQueue[ModuleType]] = {}
        self._loaded: dict[str, int] = {}
        self._lock = threading.Lock()
        self.stats: dict[str, InvocationStats] = {name: InvocationStats() for name in self.specs}
        self.in_flight = 0

    def _load(self, spec: FunctionSpec, n: int) -> ModuleType:
        path = self.functions_dir / spec.code_dir / (spec.handler.split(".")[0] + ".py")
        mod_name = f"docket_local_fn_{spec.code_dir}_{n}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        if module_spec is None or module_spec.loader is None:
            raise RuntimeError(f"cannot load handler {path}")
        module = importlib.util.module_from_spec(module_spec)
        # One cold start at a time: two threads importing the same packages for the first time
        # (a handler's Powertools imports) can each see the other's half-initialised module and
        # fail with KeyError / ImportError. Warm containers never take this lock.
        with _COLD_START:
            sys.modules[mod_name] = module
            try:
                module_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(mod_name, None)
                raise
        return module

    def _acquire(self, spec: FunctionSpec) -> ModuleType:
        while True:
            with self._lock:
                pool = self._pools.setdefault(spec.name, queue.LifoQueue())
                try:
                    return pool.get_nowait()
                except queue.Empty:
                    n = self._loaded.get(spec.name, 0)
                    load = n < spec.local_containers
                    if load:
                        self._loaded[spec.name] = n + 1
            if load:
                try:
                    return self._load(spec, n)
                except BaseException:
                    with self._lock:  # the failed cold start frees its slot for the next invoke
                        self._loaded[spec.name] -= 1
                    raise
            # all containers busy: wait, like a throttled invoke would retry; look again now and
            # then, since a cold start that failed frees a slot without returning a container
            try:
                return pool.get(timeout=0.5)
            except queue.Empty:
                continue

    def invoke(self, function_name: str, event: Any) -> tuple[Any, bool]:
        spec = self.specs.get(function_name)
        if spec is None:
            return {"errorType": "ResourceNotFoundException", "errorMessage": function_name}, True
        module = self._acquire(spec)
        ctx = LambdaContext(
            function_name=spec.name,
            memory_limit_in_mb=spec.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:123456789012:function:{spec.name}",
            _deadline_ms=int(time.time() * 1000) + spec.timeout_s * 1000,
        )
        handler = getattr(module, spec.handler.split(".")[1])
        started = time.perf_counter()
        with self._lock:
            self.in_flight += 1
        stats = self.stats[spec.name]
        try:
            result = handler(event, ctx)
            return json.loads(json.dumps(result, default=str)), False
        except Exception as exc:
            stats.errors += 1
            return {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }, True
        finally:
            _discard_unpublished_metrics()
            stats.invocations += 1
            stats.total_ms += (time.perf_counter() - started) * 1000
            with self._lock:
                self.in_flight -= 1
            self._pools[spec.name].put(module)


def _discard_unpublished_metrics() -> None:
    """With metrics disabled (the local default), Powertools keeps every unflushed data point;
    a long-running local cloud must drop them after each invocation."""
    import os

    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        metrics = sys.modules.get("docket.observability")
        if metrics is not None:
            metrics.metrics.clear_metrics()  # type: ignore[attr-defined]


_original_invoke: Any = None


def install(runtime: FunctionRuntime) -> None:
    """Route moto's Lambda invocations to ``runtime``."""
    global _original_invoke
    from moto.awslambda.models import LambdaFunction

    if _original_invoke is None:
        _original_invoke = LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if isinstance(event, str | bytes):
            event = json.loads(event or "{}")
        payload, errored = runtime.invoke(self.function_name, event if event is not None else {})
        return json.dumps(payload), errored, ""

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]


def uninstall() -> None:
    global _original_invoke
    if _original_invoke is not None:
        from moto.awslambda.models import LambdaFunction

        LambdaFunction._invoke_lambda = _original_invoke  # type: ignore[method-assign]
        _original_invoke = None
