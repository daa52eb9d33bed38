"""Routing of chat calls per task type: retries, a fallback provider, breakers, usage and cost.

``route_for(task_type, settings)`` is what the factories call (answers: "qa", chunk contexts:
"contextualise", the agent loop: "agent"). It reads ``settings.model_routes`` (or the defaults:
``llm_provider``/``llm_model``, ``agent_model_provider``/``agent_model``) and returns a
``RoutedChatModel`` over the provider adapters (``docket.providers.registry.build_chat``).

``RoutedChatModel`` makes one logical call out of several attempts:

- retries with full jitter (``rng() * min(max_delay, base * 2**n)``, AWS's recommendation
  against synchronised retry waves) only on errors whose ``retryable`` is true (429, 5xx,
  timeouts); a rejected request, a ``ConfigurationError`` or a bug is never retried;
- retries stop when the next backoff would end past ``timeout_s`` after the provider's first
  attempt (the adapters bound each request with the same timeout), so a slow provider costs at
  most about ``timeout_s`` before the fallback is asked;
- each provider sits behind its process-wide ``CircuitBreaker``: an open breaker skips the
  provider without a request, only retryable failures count towards opening it;
- the fallback is asked once the primary gave up (retries exhausted, a non-retryable provider
  error, or its breaker open); a streamed answer falls back only while nothing was yielded, so
  an answer never mixes two providers' text;
- every call (success or failure) yields one ``UsageRecord``: tokens, cost from
  ``settings.model_prices``, latency, attempts, whether the fallback answered. It is logged,
  published as CloudWatch metrics (EMF) and handed to ``on_usage``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docket.errors import ConfigurationError, ProviderError
from docket.providers.breaker import CircuitBreaker, CircuitOpen, Permit, shared_breaker
from docket.providers.llm import ChatEvent, ChatModel, ChatRequest, ChatResponse

if TYPE_CHECKING:
    from docket.config import Settings

logger = Logger(service="docket", child=True)

TaskType = Literal["qa", "agent", "contextualise"]
TASK_TYPES: tuple[TaskType, ...] = ("qa", "agent", "contextualise")
DEFAULT_BASE_DELAY_S = 0.5
DEFAULT_MAX_DELAY_S = 8.0

# providers that are not adapters: "none" (no model), "planner" (the agent's offline planner),
# "fake" (a scripted offline model for the local cloud)
_NO_MODEL = "none"
_PLANNER = "planner"
_FAKE = "fake"


class UsageRecord(BaseModel):
    """One logical chat call, as billed: what the answering model used and what it cost.

    ``provider`` and ``model`` are the model that answered (or, when every provider failed, the
    last one asked); ``attempts`` counts requests actually sent, over both providers;
    ``error`` is the failure's code when no provider answered (the tokens are then 0).
    """

    model_config = ConfigDict(frozen=True)

    task_type: str
    provider: str
    model: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_input_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0.0)
    latency_ms: float = Field(ge=0.0)
    attempts: int = Field(ge=0)
    fell_back: bool
    error: str | None = None


UsageHook = Callable[[UsageRecord], None]
Prices = Mapping[str, Sequence[float]]


def split_name(name: str) -> tuple[str, str]:
    """("provider", "model") from a chat model's name "provider:model" (the whole name twice
    when it has no provider part, as for the offline fakes)."""
    provider, sep, model = name.partition(":")
    return (provider, model) if sep else (name, name)


def call_cost(
    prices: Prices,
    models: Sequence[str],
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
) -> float:
    """USD for one call, from the first of ``models`` that ``prices`` lists ({"model": [input,
    output]} or [input, output, cached input] per million tokens; cached input defaults to the
    input price); 0.0 for a model without a price."""
    for model in models:
        price = prices.get(model)
        if price is None:
            continue
        input_price, output_price = float(price[0]), float(price[1])
        cached_price = float(price[2]) if len(price) > 2 else input_price
        uncached = max(0, input_tokens - cached_input_tokens)
        return (
            uncached * input_price
            + cached_input_tokens * cached_price
            + output_tokens * output_price
        ) / 1_000_000
    return 0.0


def is_retryable(exc: BaseException) -> bool:
    """Whether retrying the same provider may help: the error says so (``retryable``)."""
    return isinstance(exc, ProviderError) and bool(getattr(exc, "retryable", False))


def publish_usage(record: UsageRecord) -> None:
    """The record as a log line and as CloudWatch metrics with TaskType/Provider/Model dimensions.

    An ``EphemeralMetrics`` flushed at once, not the process's shared ``Metrics``: its
    dimensions would otherwise stick to every other metric of the invocation. It honours
    ``POWERTOOLS_METRICS_DISABLED`` like the shared one.
    """
    logger.info("model call", **record.model_dump())
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    from docket.observability import NAMESPACE, SERVICE

    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    metrics.add_dimension(name="TaskType", value=record.task_type)
    metrics.add_dimension(name="Provider", value=record.provider)
    metrics.add_dimension(name="Model", value=record.model or "unknown")
    metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelAttempts", unit=MetricUnit.Count, value=record.attempts)
    metrics.add_metric(name="ModelFallbacks", unit=MetricUnit.Count, value=int(record.fell_back))
    metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=int(bool(record.error)))
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=record.latency_ms)
    metrics.add_metric(name="ModelInputTokens", unit=MetricUnit.Count, value=record.input_tokens)
    metrics.add_metric(name="ModelOutputTokens", unit=MetricUnit.Count, value=record.output_tokens)
    metrics.add_metric(
        name="ModelCachedInputTokens", unit=MetricUnit.Count, value=record.cached_input_tokens
    )
    metrics.add_metric(name="ModelCostUSD", unit=MetricUnit.NoUnit, value=record.cost_usd)
    metrics.flush_metrics()


@dataclass
class _CallState:
    started: float
    attempts: int = 0
    fell_back: bool = False
    model: ChatModel | None = None
    errors: list[ProviderError] = field(default_factory=list)


class RoutedChatModel:
    """A ``ChatModel`` that retries, falls back and accounts (see the module docstring).

    ``breakers`` maps a chat model's ``name`` to its breaker (a model without one runs without);
    ``prices`` is ``settings.model_prices``; ``sleep``, ``rng`` and ``clock`` are injectable for
    tests. ``name`` is the primary's: it names the configuration, while each ``UsageRecord``
    (and ``ChatResponse.model``) says which model actually answered.
    """

    def __init__(
        self,
        primary: ChatModel,
        fallback: ChatModel | None = None,
        *,
        breakers: Mapping[str, CircuitBreaker] | None = None,
        max_retries: int = 2,
        timeout_s: float = 60.0,
        prices: Prices | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        task_type: str = "qa",
        on_usage: UsageHook | None = None,
        publish: UsageHook | None = publish_usage,
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        if max_retries < 0 or timeout_s <= 0 or base_delay_s < 0 or max_delay_s < base_delay_s:
            raise ValueError("retry limits must be non-negative (timeout_s positive)")
        self.primary = primary
        self.fallback = fallback
        self.breakers: Mapping[str, CircuitBreaker] = dict(breakers or {})
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.prices: Prices = dict(prices or {})
        self.task_type = task_type
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._on_usage = on_usage
        self._publish = publish

    @property
    def name(self) -> str:
        return self.primary.name

    @property
    def models(self) -> list[ChatModel]:
        return [self.primary] if self.fallback is None else [self.primary, self.fallback]

    def complete(self, request: ChatRequest) -> ChatResponse:
        state = _CallState(started=self._clock())
        for model, permit in self._attempts(state):
            try:
                response = model.complete(request)
            except ProviderError as exc:
                self._failed(state, permit, exc)
                continue
            except BaseException:
                _release(permit)  # ConfigurationError, a bug: no verdict, no retry, no fallback
                raise
            _succeed(permit)
            self._account(state, response)
            return response
        raise self._gave_up(state)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        state = _CallState(started=self._clock())
        for model, permit in self._attempts(state):
            yielded = False
            final: ChatResponse | None = None
            try:
                for event in model.stream(request):
                    if isinstance(event, ChatResponse):
                        final = event
                    yielded = True
                    yield event
            except ProviderError as exc:
                self._failed(state, permit, exc)
                if yielded:  # the caller has this provider's text: never continue elsewhere
                    self._account(state, None, exc)
                    raise
                continue
            except BaseException:  # the consumer closed the stream, or a bug
                _release(permit)
                raise
            _succeed(permit)
            if final is not None:
                self._account(state, final)
            return
        raise self._gave_up(state)

    # --- the attempt plan ---------------------------------------------------------------------------

    def _attempts(self, state: _CallState) -> Iterator[tuple[ChatModel, Permit | None]]:
        """(model, permit) for each request to send: the caller records failures in ``state``
        before asking for the next, which decides whether to retry, fall back or give up."""
        for position, model in enumerate(self.models):
            breaker = self.breakers.get(model.name)
            first_attempt_at: float | None = None
            for attempt in range(self.max_retries + 1):
                if attempt:
                    last = state.errors[-1]
                    if not is_retryable(last):
                        break
                    delay = self.backoff(attempt)
                    spent = self._clock() - first_attempt_at if first_attempt_at is not None else 0
                    if spent + delay > self.timeout_s:
                        break
                    logger.info(
                        "retrying model call",
                        model=model.name,
                        attempt=attempt + 1,
                        delay_s=round(delay, 3),
                        error=last.code,
                    )
                    self._sleep(delay)
                try:
                    permit = breaker.acquire() if breaker is not None else None
                except CircuitOpen as exc:
                    state.errors.append(exc)
                    break
                if first_attempt_at is None:
                    first_attempt_at = self._clock()
                state.attempts += 1
                state.model = model
                state.fell_back = position > 0
                yield model, permit

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**(attempt-1))) for retry ``attempt``."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return self._rng() * ceiling

    def _failed(self, state: _CallState, permit: Permit | None, exc: ProviderError) -> None:
        state.errors.append(exc)
        if permit is not None:
            # only transient failures say the provider is unwell; a rejection proves it is up
            if is_retryable(exc):
                permit.failure()
            else:
                permit.release()
        logger.warning(
            "model call failed",
            model=state.model.name if state.model else None,
            task_type=self.task_type,
            error=exc.code,
            status=getattr(exc, "status", None),
            retryable=is_retryable(exc),
            detail=exc.message[:300],
        )

    def _gave_up(self, state: _CallState) -> ProviderError:
        """The error to raise: the last real provider failure (an open breaker only when no
        provider was even asked); its usage record is published first."""
        real = [exc for exc in state.errors if not isinstance(exc, CircuitOpen)]
        error = (real or state.errors)[-1]
        self._account(state, None, error)
        return error

    # --- accounting -----------------------------------------------------------------------------

    def _account(
        self, state: _CallState, response: ChatResponse | None, error: ProviderError | None = None
    ) -> None:
        model = state.model or self.primary
        provider, configured = split_name(model.name)
        input_tokens = response.input_tokens if response else 0
        output_tokens = response.output_tokens if response else 0
        cached = response.cached_input_tokens if response else 0
        # the model id the provider reported (a dated version, say), without a "provider:" prefix
        answered = (response.model if response else "").removeprefix(f"{provider}:") or configured
        record = UsageRecord(
            task_type=self.task_type,
            provider=provider,
            model=answered,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=min(cached, input_tokens),
            cost_usd=call_cost(
                self.prices, [answered, configured, model.name], input_tokens, output_tokens, cached
            ),
            latency_ms=max(0.0, (self._clock() - state.started) * 1000.0),
            attempts=state.attempts,
            fell_back=state.fell_back,
            error=error.code if error is not None else None,
        )
        for hook in (self._publish, self._on_usage):
            if hook is None:
                continue
            try:
                hook(record)
            except Exception:  # accounting must never fail the call it accounts for
                logger.exception("usage hook failed", task_type=self.task_type)


def _succeed(permit: Permit | None) -> None:
    if permit is not None:
        permit.success()


def _release(permit: Permit | None) -> None:
    if permit is not None:
        permit.release()


# --- routes from settings ----------------------------------------------------------------------------


class RouteTarget(BaseModel):
    """One provider and model (None: the provider adapter's default model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1)
    model: str | None = None


class Route(RouteTarget):
    """A task type's route: ``settings.model_routes[task_type]`` or the defaults."""

    fallback: RouteTarget | None = None


def resolve_route(task_type: TaskType, settings: Settings) -> Route:
    """The route for ``task_type``: from ``settings.model_routes`` when it names the task type,
    else ``llm_provider``/``llm_model`` (qa, contextualise) or ``agent_model_provider``/
    ``agent_model`` (agent)."""
    if task_type not in TASK_TYPES:
        raise ConfigurationError(f"unknown task type {task_type!r}; expected one of {TASK_TYPES}")
    unknown = set(settings.model_routes) - set(TASK_TYPES)
    if unknown:
        raise ConfigurationError(
            f"DOCKET_MODEL_ROUTES names unknown task types {sorted(unknown)}; "
            f"expected some of {list(TASK_TYPES)}"
        )
    raw = settings.model_routes.get(task_type)
    if raw is not None:
        try:
            return Route.model_validate(raw)
        except ValidationError as exc:
            raise ConfigurationError(
                f"DOCKET_MODEL_ROUTES[{task_type!r}] is not a route "
                f'{{"provider", "model", "fallback": {{"provider", "model"}}}}: {exc}'
            ) from exc
    if task_type == "agent":
        return Route(provider=settings.agent_model_provider, model=settings.agent_model)
    return Route(provider=settings.llm_provider, model=settings.llm_model)


_KEYED_PROVIDERS = frozenset({"anthropic", "openai", "cohere"})


def route_for(
    task_type: TaskType,
    settings: Settings,
    *,
    on_usage: UsageHook | None = None,
    fake: Callable[[], ChatModel] | None = None,
) -> ChatModel | None:
    """The chat model for ``task_type``, or None where the route names no model: "none" (qa,
    contextualise) and "planner" (agent: the caller builds the offline planner).

    "fake" is the caller's own offline scripted model (``fake``: the answerer's and the
    contextualiser's; routing knows none of its consumers), returned as it is when it has no
    fallback. Real providers are built by ``registry.build_chat`` with the
    keys of ``provider_keys`` (Secrets Manager on AWS) and wrapped in a ``RoutedChatModel`` with
    the process's breaker per model; ``on_usage`` gets each call's ``UsageRecord``.
    """
    route = resolve_route(task_type, settings)
    if route.provider == _NO_MODEL:
        if task_type == "agent":
            raise ConfigurationError("the agent needs a model: use 'planner' for the offline one")
        if route.fallback is not None:
            raise ConfigurationError(f"the {task_type} route has a fallback but no provider")
        return None
    if route.provider == _PLANNER:
        if task_type != "agent":
            raise ConfigurationError(f"'planner' is the agent's offline model, not for {task_type}")
        if route.fallback is not None:
            raise ConfigurationError("the offline planner takes no fallback")
        return None
    keyed: list[Settings] = []  # the secret is read only when a real provider is built

    def build(target: RouteTarget) -> ChatModel:
        if target.provider == _FAKE:
            if fake is None:
                raise ConfigurationError(
                    f"the {task_type} route has no 'fake' model"
                    + (": use 'planner' for the offline one" if task_type == "agent" else "")
                )
            return fake()
        if target.provider in (_NO_MODEL, _PLANNER):
            raise ConfigurationError(f"{target.provider!r} cannot be a fallback ({task_type})")
        from docket.providers.registry import build_chat

        if target.provider not in _KEYED_PROVIDERS:  # Bedrock: IAM, no key, no secret to read
            return build_chat(target.provider, target.model, settings)
        if not keyed:
            from docket.providers.secrets import provider_keys

            keyed.append(settings.model_copy(update=provider_keys(settings)))
        return build_chat(target.provider, target.model, keyed[0])

    primary = build(route)
    fallback = build(route.fallback) if route.fallback is not None else None
    if fallback is None and route.provider == _FAKE:
        return primary  # exactly today's offline model: nothing to retry, bill or break
    breakers = {
        model.name: shared_breaker(
            model.name,
            settings.provider_breaker_failures,
            settings.provider_breaker_cooldown_seconds,
        )
        for model, target in ((primary, route), (fallback, route.fallback))
        if model is not None and target is not None and target.provider != _FAKE
    }
    return RoutedChatModel(
        primary,
        fallback,
        breakers=breakers,
        max_retries=settings.provider_max_retries,
        timeout_s=settings.provider_timeout_seconds,
        prices=_prices(settings.model_prices),
        task_type=task_type,
        on_usage=on_usage,
    )


def _prices(raw: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    prices: dict[str, tuple[float, ...]] = {}
    for model, price in raw.items():
        try:
            values = tuple(float(value) for value in price)
        except (TypeError, ValueError):
            values = ()
        if len(values) not in (2, 3) or any(value < 0 for value in values):
            raise ConfigurationError(
                f"DOCKET_MODEL_PRICES[{model!r}] must be [input, output] or [input, output, "
                f"cached input] USD per million tokens, got {price!r}"
            )
        prices[model] = values
    return prices


__all__ = [
    "Route",
    "RouteTarget",
    "RoutedChatModel",
    "TaskType",
    "UsageHook",
    "UsageRecord",
    "call_cost",
    "is_retryable",
    "publish_usage",
    "resolve_route",
    "route_for",
    "split_name",
]
