"""Routing of chat calls: retries with jitter on transient errors only, fallback, breakers,
streaming without mixing providers, usage and cost records, and routes from settings."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator

import pytest

from docket.answer.factory import offline_qa_model
from docket.chunking.contextualize import offline_context_model
from docket.config import Settings
from docket.errors import (
    ConfigurationError,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
)
from docket.providers.breaker import CircuitBreaker, CircuitOpen, reset_breakers, shared_breaker
from docket.providers.fake import ScriptedChatModel
from docket.providers.llm import ChatDelta, ChatMessage, ChatRequest, ChatResponse
from docket.providers.routing import (
    RoutedChatModel,
    UsageRecord,
    call_cost,
    publish_usage,
    resolve_route,
    route_for,
)

REQUEST = ChatRequest(
    system="Answer from the sources.",
    messages=[ChatMessage(role="user", content="What reduced fractures?")],
    max_tokens=64,
)


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    reset_breakers()
    yield
    reset_breakers()


class Clock:
    """Time that moves only when the router sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    """A router over scripted models, recording sleeps and usage records."""

    def __init__(
        self,
        primary: ScriptedChatModel,
        fallback: ScriptedChatModel | None = None,
        *,
        breakers: dict[str, CircuitBreaker] | None = None,
        rng: list[float] | None = None,
        **options: object,
    ) -> None:
        self.clock = Clock()
        self.sleeps: list[float] = []
        self.records: list[UsageRecord] = []
        draws = list(rng or [])

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock.sleep(seconds)

        self.router = RoutedChatModel(
            primary,
            fallback,
            breakers=breakers,
            sleep=sleep,
            rng=(lambda: draws.pop(0)) if draws else (lambda: 0.5),
            clock=self.clock,
            on_usage=self.records.append,
            publish=None,
            **options,  # type: ignore[arg-type]
        )

    @property
    def record(self) -> UsageRecord:
        [record] = self.records
        return record


def test_retries_transient_errors_with_full_jitter_then_answers() -> None:
    # Given a primary that is throttled, then unavailable, then answers
    primary = ScriptedChatModel(
        [ProviderThrottled("429"), ProviderUnavailable("503", status=503), "Vitamin D."],
        name="anthropic:claude-x",
    )
    harness = Harness(primary, max_retries=2, rng=[0.2, 0.9], base_delay_s=0.5)
    # When asked once
    response = harness.router.complete(REQUEST)
    # Then it answered on the third attempt after two jittered sleeps: rng * 0.5, rng * 1.0
    assert response.text == "Vitamin D."
    assert harness.sleeps == pytest.approx([0.1, 0.9])
    assert len(primary.requests) == 3
    record = harness.record
    assert (record.provider, record.model) == ("anthropic", "claude-x")
    assert record.attempts == 3 and not record.fell_back and record.error is None


def test_backoff_ceiling_doubles_up_to_the_maximum() -> None:
    harness = Harness(ScriptedChatModel([]), rng=[1.0] * 6, base_delay_s=0.5, max_delay_s=3.0)
    assert [harness.router.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_gives_up_after_max_retries_and_raises_the_last_error() -> None:
    primary = ScriptedChatModel([ProviderUnavailable("a"), ProviderUnavailable("b")], name="p:m")
    harness = Harness(primary, max_retries=1)
    with pytest.raises(ProviderUnavailable, match="b"):
        harness.router.complete(REQUEST)
    assert len(harness.sleeps) == 1
    assert harness.record.error == "provider_unavailable" and harness.record.attempts == 2
    assert harness.record.input_tokens == 0 and harness.record.cost_usd == 0.0


@pytest.mark.parametrize(
    "error",
    [ProviderRejected("400 bad request", status=400), ProviderError("no retryable attribute")],
)
def test_non_retryable_errors_are_not_retried_but_fall_back(error: ProviderError) -> None:
    # Given a primary that rejects the request and a fallback
    primary = ScriptedChatModel([error], name="anthropic:claude-x")
    fallback = ScriptedChatModel(["From Bedrock."], name="bedrock:claude-b")
    harness = Harness(primary, fallback, max_retries=3)
    # When asked
    response = harness.router.complete(REQUEST)
    # Then the primary was asked once, with no sleep, and the fallback answered
    assert response.text == "From Bedrock."
    assert len(primary.requests) == 1 and harness.sleeps == []
    assert harness.record.fell_back and harness.record.provider == "bedrock"
    assert harness.record.attempts == 2


def test_a_rejection_without_fallback_raises_at_once() -> None:
    primary = ScriptedChatModel([ProviderRejected("401", status=401)], name="openai:gpt")
    harness = Harness(primary, max_retries=3)
    with pytest.raises(ProviderRejected):
        harness.router.complete(REQUEST)
    assert harness.sleeps == [] and harness.record.attempts == 1


def test_configuration_errors_and_bugs_are_neither_retried_nor_sent_to_the_fallback() -> None:
    for error in (ConfigurationError("no key"), RuntimeError("a bug")):
        primary = ScriptedChatModel([error], name="openai:gpt")
        fallback = ScriptedChatModel(["never"], name="bedrock:b")
        harness = Harness(primary, fallback, max_retries=3)
        with pytest.raises(type(error)):
            harness.router.complete(REQUEST)
        assert fallback.requests == [] and harness.sleeps == []


def test_falls_back_after_the_primary_is_exhausted() -> None:
    # Given a primary that is down for every attempt
    primary = ScriptedChatModel([ProviderUnavailable("503")] * 3, name="anthropic:claude-x")
    fallback = ScriptedChatModel(["From Bedrock."], name="bedrock:claude-b")
    harness = Harness(primary, fallback, max_retries=2)
    # When asked
    response = harness.router.complete(REQUEST)
    # Then three attempts went to the primary, then one to the fallback
    assert response.text == "From Bedrock."
    assert len(primary.requests) == 3 and len(fallback.requests) == 1
    assert len(harness.sleeps) == 2
    assert harness.record.fell_back and harness.record.attempts == 4
    assert (harness.record.provider, harness.record.model) == ("bedrock", "claude-b")


def test_retries_stop_at_the_timeout_budget() -> None:
    # Given a primary whose first attempt times out after 59.9 s of a 60 s budget
    harness_box: list[Harness] = []

    def slow(request: ChatRequest) -> str:
        harness_box[0].clock.now += 59.9
        raise ProviderUnavailable("timed out")

    primary = ScriptedChatModel(slow, name="anthropic:claude-x")
    fallback = ScriptedChatModel(["fast"], name="bedrock:b")
    harness = Harness(primary, fallback, max_retries=5, timeout_s=60.0, rng=[1.0])
    harness_box.append(harness)
    # When asked: a retry would end past the budget, so the fallback is asked at once
    assert harness.router.complete(REQUEST).text == "fast"
    assert len(primary.requests) == 1 and harness.sleeps == []


def test_an_open_breaker_skips_the_primary_without_a_request() -> None:
    # Given the primary's breaker is open
    breaker = CircuitBreaker("anthropic:claude-x", failures_to_open=1, cooldown_s=30)
    breaker.acquire().failure()
    primary = ScriptedChatModel(["never"], name="anthropic:claude-x")
    fallback = ScriptedChatModel(["From Bedrock."], name="bedrock:claude-b")
    harness = Harness(primary, fallback, breakers={primary.name: breaker})
    # When asked
    response = harness.router.complete(REQUEST)
    # Then the primary got no request and the fallback answered
    assert response.text == "From Bedrock."
    assert primary.requests == []
    assert harness.record.fell_back and harness.record.attempts == 1


def test_every_breaker_open_raises_circuit_open_without_any_request() -> None:
    breaker = CircuitBreaker("p:m", failures_to_open=1, cooldown_s=30)
    breaker.acquire().failure()
    primary = ScriptedChatModel(["never"], name="p:m")
    harness = Harness(primary, breakers={"p:m": breaker})
    with pytest.raises(CircuitOpen):
        harness.router.complete(REQUEST)
    assert harness.record.attempts == 0 and harness.record.error == "circuit_open"


def test_only_transient_failures_count_towards_opening_the_breaker() -> None:
    # Given a breaker that opens after two failures and a router without retries
    breaker = CircuitBreaker("p:m", failures_to_open=2, cooldown_s=30)
    primary = ScriptedChatModel(
        [ProviderRejected("400"), ProviderRejected("400"), ProviderThrottled("429")] * 2,
        name="p:m",
    )
    harness = Harness(primary, breakers={"p:m": breaker}, max_retries=0)
    # When two rejections and one throttle happen, then the same again
    for _ in range(3):
        with pytest.raises(ProviderError):
            harness.router.complete(REQUEST)
    assert breaker.consecutive_failures == 1
    for _ in range(3):
        with pytest.raises(ProviderError):
            harness.router.complete(REQUEST)
    # Then only the two throttles counted, and the breaker is now open
    with pytest.raises(CircuitOpen):
        breaker.acquire()


def test_a_down_provider_opens_its_breaker_and_then_costs_no_requests() -> None:
    # Given a primary that is down, and its breaker opening after 3 failures
    breaker = CircuitBreaker("p:m", failures_to_open=3, cooldown_s=30)

    def down(request: ChatRequest) -> str:
        raise ProviderUnavailable("503", status=503)

    primary = ScriptedChatModel(down, name="p:m")
    fallback = ScriptedChatModel(lambda request: "fallback", name="f:m")
    harness = Harness(primary, fallback, breakers={"p:m": breaker}, max_retries=1)
    # When ten calls are made
    for _ in range(10):
        assert harness.router.complete(REQUEST).text == "fallback"
    # Then the primary saw three requests, not twenty (no retry storm)
    assert len(primary.requests) == 3
    assert len(fallback.requests) == 10


# --- streaming ------------------------------------------------------------------------------------


def test_streaming_falls_back_when_the_primary_fails_before_the_first_delta() -> None:
    # Given a primary whose stream breaks before any text
    primary = ScriptedChatModel(["never shown"], name="anthropic:claude-x", fail_stream_after=0)
    fallback = ScriptedChatModel(["From Bedrock."], name="bedrock:claude-b")
    harness = Harness(primary, fallback)
    # When streamed
    events = list(harness.router.stream(REQUEST))
    # Then every delta and the response come from the fallback
    text = "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert text == "From Bedrock."
    assert isinstance(events[-1], ChatResponse) and events[-1].model == "bedrock:claude-b"
    assert harness.record.fell_back


def test_streaming_retries_a_transient_error_before_the_first_delta() -> None:
    primary = ScriptedChatModel([ProviderThrottled("429"), "Second try."], name="p:m")
    harness = Harness(primary)
    events = list(harness.router.stream(REQUEST))
    assert "".join(e.text for e in events if isinstance(e, ChatDelta)) == "Second try."
    assert harness.record.attempts == 2 and len(harness.sleeps) == 1


def test_streaming_never_mixes_providers_after_the_first_delta() -> None:
    # Given a primary whose stream breaks after two pieces of text
    primary = ScriptedChatModel(["One two three four."], name="p:m", fail_stream_after=2)
    fallback = ScriptedChatModel(["never"], name="f:m")
    harness = Harness(primary, fallback)
    received: list[str] = []
    # When streamed
    with pytest.raises(ProviderError):
        for event in harness.router.stream(REQUEST):
            assert isinstance(event, ChatDelta)
            received.append(event.text)
    # Then the caller got the primary's two pieces and an error; the fallback was never asked
    assert "".join(received) == "One two"
    assert fallback.requests == []
    assert harness.record.error == "provider_error" and not harness.record.fell_back


def test_an_abandoned_stream_releases_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p:m", failures_to_open=1, cooldown_s=1, clock=clock)
    breaker.acquire().failure()
    clock.now += 1
    harness = Harness(ScriptedChatModel(["one two three"], name="p:m"), breakers={"p:m": breaker})
    stream = harness.router.stream(REQUEST)
    next(stream)  # the probe is in flight
    assert isinstance(stream, Generator)
    stream.close()  # the caller went away
    assert breaker.acquire().probe  # the next caller may probe


# --- usage and cost -----------------------------------------------------------------------------------


def test_each_call_yields_one_usage_record_with_its_cost() -> None:
    # Given prices per million tokens, with a cached-input price
    primary = ScriptedChatModel(["An answer.", "Another."], name="anthropic:claude-x")
    harness = Harness(primary, prices={"claude-x": [3.0, 15.0, 0.3]})
    request = REQUEST.model_copy(update={"cache_system": True})
    # When asked twice (the second call reads the system prompt from the cache)
    first = harness.router.complete(request)
    second = harness.router.complete(request)
    # Then each call has its record, priced from its own usage
    assert len(harness.records) == 2
    for response, record in zip((first, second), harness.records, strict=True):
        expected = (
            (response.input_tokens - response.cached_input_tokens) * 3.0
            + response.cached_input_tokens * 0.3
            + response.output_tokens * 15.0
        ) / 1e6
        assert record.cost_usd == pytest.approx(expected)
        assert record.input_tokens == response.input_tokens
        assert record.output_tokens == response.output_tokens
        assert record.task_type == "qa"
    assert harness.records[1].cached_input_tokens > 0 == harness.records[0].cached_input_tokens


def test_call_cost_reads_the_first_priced_model_and_defaults_to_zero() -> None:
    prices = {"claude-x": [3.0, 15.0]}
    assert call_cost(prices, ["claude-x-20250101", "claude-x"], 1_000_000, 0, 0) == 3.0
    assert call_cost(prices, ["claude-x"], 1_000_000, 1_000_000, 500_000) == 18.0
    assert call_cost(prices, ["unknown"], 10, 10) == 0.0


def test_a_failing_usage_hook_does_not_fail_the_call() -> None:
    def broken(record: UsageRecord) -> None:
        raise RuntimeError("hook bug")

    router = RoutedChatModel(ScriptedChatModel(["ok"], name="p:m"), on_usage=broken, publish=None)
    assert router.complete(REQUEST).text == "ok"


def test_usage_is_published_as_emf_metrics_with_model_dimensions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics enabled (as on Lambda)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    record = UsageRecord(
        task_type="agent",
        provider="anthropic",
        model="claude-x",
        input_tokens=1200,
        output_tokens=80,
        cached_input_tokens=1000,
        cost_usd=0.0021,
        latency_ms=812.5,
        attempts=2,
        fell_back=False,
    )
    # When published
    publish_usage(record)
    # Then one EMF document carries the metrics under TaskType/Provider/Model
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = json.loads(line)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Docket"
    assert {"TaskType", "Provider", "Model"} <= set(
        emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    )
    assert (emf["TaskType"], emf["Provider"], emf["Model"]) == ("agent", "anthropic", "claude-x")
    assert emf["ModelInputTokens"] == [1200] and emf["ModelCachedInputTokens"] == [1000]
    assert emf["ModelCostUSD"] == [0.0021] and emf["ModelAttempts"] == [2]
    assert emf["ModelFallbacks"] == [0] and emf["ModelErrors"] == [0]


def test_usage_metrics_are_silent_when_disabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    router = RoutedChatModel(ScriptedChatModel(["ok"], name="p:m"))
    router.complete(REQUEST)
    assert not [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


# --- routes from settings --------------------------------------------------------------------------


ROUTES = {
    "qa": {
        "provider": "anthropic",
        "model": "claude-x",
        "fallback": {"provider": "bedrock", "model": "anthropic.claude-b"},
    },
    "agent": {"provider": "openai", "model": "gpt-x"},
}


def test_route_for_reads_model_routes_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given routes in DOCKET_MODEL_ROUTES and keys in settings
    monkeypatch.setenv("DOCKET_MODEL_ROUTES", json.dumps(ROUTES))
    monkeypatch.setenv("DOCKET_MODEL_PRICES", '{"claude-x": [3, 15]}')
    settings = Settings(
        anthropic_api_key="a-key",
        openai_api_key="o-key",
        provider_max_retries=4,
        provider_timeout_seconds=20,
        provider_breaker_failures=7,
        provider_breaker_cooldown_seconds=45,
    )
    # When the qa model is routed
    model = route_for("qa", settings, fake=offline_qa_model)
    # Then it is the routed primary with its fallback, retries, timeout, prices and breakers
    assert isinstance(model, RoutedChatModel)
    assert model.name == "anthropic:claude-x"
    assert model.fallback is not None and model.fallback.name == "bedrock:anthropic.claude-b"
    assert (model.max_retries, model.timeout_s, model.task_type) == (4, 20, "qa")
    assert model.prices == {"claude-x": (3.0, 15.0)}
    breaker = model.breakers["anthropic:claude-x"]
    assert (breaker.failures_to_open, breaker.cooldown_s) == (7, 45)
    assert breaker is shared_breaker("anthropic:claude-x", 1, 1)
    assert set(model.breakers) == {"anthropic:claude-x", "bedrock:anthropic.claude-b"}
    # And the agent has its own route, without fallback
    agent = route_for("agent", settings)
    assert isinstance(agent, RoutedChatModel) and agent.name == "openai:gpt-x"
    assert agent.fallback is None and agent.task_type == "agent"
    # And contextualise, absent from the routes, uses the defaults (llm_provider "none")
    assert route_for("contextualise", settings, fake=offline_context_model) is None


def test_route_for_defaults_to_llm_provider_and_agent_model_provider() -> None:
    settings = Settings(llm_provider="cohere", llm_model="command-x", cohere_api_key="c-key")
    qa = route_for("qa", settings, fake=offline_qa_model)
    assert isinstance(qa, RoutedChatModel) and qa.name == "cohere:command-x"
    contextualise = route_for("contextualise", settings, fake=offline_context_model)
    assert isinstance(contextualise, RoutedChatModel) and contextualise.task_type == "contextualise"
    # the planner is the caller's to build
    assert route_for("agent", settings) is None
    assert resolve_route("agent", settings).provider == "planner"


def test_fake_routes_keep_the_offline_models() -> None:
    settings = Settings(llm_provider="fake")
    qa = route_for("qa", settings, fake=offline_qa_model)
    contextualise = route_for("contextualise", settings, fake=offline_context_model)
    assert isinstance(qa, ScriptedChatModel) and qa.name == "fake-extractive-echo"
    assert isinstance(contextualise, ScriptedChatModel)
    assert contextualise.name == "fake-situating-echo"
    assert route_for("qa", Settings(llm_provider="none"), fake=offline_qa_model) is None


def test_a_fake_fallback_is_routed_like_any_other(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = {"qa": {"provider": "openai", "model": "gpt-x", "fallback": {"provider": "fake"}}}
    model = route_for(
        "qa", Settings(model_routes=routes, openai_api_key="k"), fake=offline_qa_model
    )
    assert isinstance(model, RoutedChatModel)
    assert model.fallback is not None and model.fallback.name == "fake-extractive-echo"
    assert set(model.breakers) == {"openai:gpt-x"}


@pytest.mark.parametrize(
    "settings, message",
    [
        (Settings(llm_provider="anthropic"), "API key"),
        (Settings(model_routes={"qa": {"provider": "planner"}}), "planner"),
        (Settings(model_routes={"qa": {"model": "x"}}), "not a route"),
        (Settings(model_routes={"qa": {"provider": "openai", "colour": "red"}}), "not a route"),
        (Settings(model_routes={"answers": {"provider": "openai"}}), "unknown task types"),
        (Settings(model_routes={"qa": {"provider": "nope"}}), "unknown chat provider"),
        (
            Settings(
                model_routes={"qa": {"provider": "fake", "fallback": {"provider": "none"}}},
            ),
            "fallback",
        ),
        (
            Settings(llm_provider="openai", openai_api_key="k", model_prices={"gpt": [1]}),
            "DOCKET_MODEL_PRICES",
        ),
    ],
)
def test_bad_routes_are_configuration_errors(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        route_for("qa", settings, fake=offline_qa_model)


def test_the_agent_has_no_fake_and_needs_a_model() -> None:
    with pytest.raises(ConfigurationError, match="planner"):
        route_for("agent", Settings(model_routes={"agent": {"provider": "fake"}}))
    with pytest.raises(ConfigurationError, match="planner"):
        route_for("agent", Settings(model_routes={"agent": {"provider": "none"}}))


def test_route_for_builds_adapters_with_the_keys_from_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no key in settings, and the secret holding it
    seen: list[Settings] = []

    def keys(settings: Settings) -> dict[str, str]:
        seen.append(settings)
        return {"anthropic_api_key": "from-secret"}

    monkeypatch.setattr("docket.providers.secrets.provider_keys", keys)
    settings = Settings(llm_provider="anthropic", provider_secret_name="docket/providers")
    # When routed
    model = route_for("qa", settings, fake=offline_qa_model)
    # Then the adapter was built with the secret's key, and the secret read once
    assert isinstance(model, RoutedChatModel)
    assert model.primary._api_key == "from-secret"  # type: ignore[attr-defined]
    assert len(seen) == 1 and settings.anthropic_api_key is None


def test_no_secret_is_read_for_offline_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    def keys(settings: Settings) -> dict[str, str]:
        raise AssertionError("the secret was read")

    monkeypatch.setattr("docket.providers.secrets.provider_keys", keys)
    assert (
        route_for(
            "qa", Settings(llm_provider="fake", provider_secret_name="s"), fake=offline_qa_model
        )
        is not None
    )


def test_no_secret_is_read_for_bedrock_which_signs_with_iam(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The functions that only use Bedrock (the approval function builds the agent's model) may
    not read the provider-keys secret at all."""

    def keys(settings: Settings) -> dict[str, str]:
        raise AssertionError("the secret was read")

    monkeypatch.setattr("docket.providers.secrets.provider_keys", keys)
    settings = Settings(agent_model_provider="bedrock", provider_secret_name="s")
    assert route_for("agent", settings) is not None


# --- the factories ------------------------------------------------------------------------------------


def test_factories_route_their_task_types(monkeypatch: pytest.MonkeyPatch) -> None:
    from docket.agent.factory import build_agent_model
    from docket.agent.planner import OfflinePlanner
    from docket.answer.factory import build_chat_model
    from docket.chunking.contextualize import build_contextualizer

    settings = Settings(
        llm_provider="openai",
        openai_api_key="k",
        contextual_chunks="llm",
        model_routes={"agent": {"provider": "anthropic", "model": "claude-x"}},
        anthropic_api_key="a",
    )
    qa = build_chat_model(settings)
    assert isinstance(qa, RoutedChatModel) and qa.task_type == "qa"
    contextualizer = build_contextualizer(settings)
    assert contextualizer is not None
    assert isinstance(contextualizer.model, RoutedChatModel)
    assert contextualizer.model.task_type == "contextualise"
    agent = build_agent_model(settings)
    assert isinstance(agent, RoutedChatModel) and agent.name == "anthropic:claude-x"
    assert isinstance(build_agent_model(Settings()), OfflinePlanner)
