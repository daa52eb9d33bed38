"""The process's agent service and its exactly-once tool runner, built on first use."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from docket.agent.service import AgentService
from docket.config import Settings, get_settings
from docket.providers.llm import ChatModel


def build_agent_model(settings: Settings) -> ChatModel:
    """The tool-calling model of the "agent" route (``settings.model_routes``, else
    ``agent_model_provider``/``agent_model``); "planner" is the deterministic offline planner."""
    from docket.providers.routing import route_for

    model = route_for("agent", settings)
    if model is None:  # "planner"
        from docket.agent.planner import OfflinePlanner

        return OfflinePlanner()
    return model


@cache
def get_approval_service() -> Any:
    from docket.agent.approvals import ApprovalService

    return ApprovalService.from_settings(get_settings())


@cache
def get_tool_services() -> Any:
    from docket.agent.tools.services import default_services

    return default_services(get_settings())


_override: AgentService | None = None


def use_service(service: AgentService | None) -> None:
    """Make every handler in this process use ``service`` (tests with scripted models and fake
    tools; ``None`` restores the configured one)."""
    global _override
    _override = service


def get_agent_service() -> AgentService:
    return _override if _override is not None else _configured_service()


@cache
def _configured_service() -> AgentService:
    from docket.agent.store import TaskStore
    from docket.agent.tools import default_registry
    from docket.agent.workflow import StepFunctions

    settings = get_settings()
    return AgentService(
        settings,
        TaskStore(settings.agent_table, settings.agent_bucket),
        default_registry(),
        build_agent_model(settings),
        StepFunctions(),
        approvals=get_approval_service,
        services=get_tool_services,
    )


@cache
def get_tool_runner() -> tuple[Callable[..., dict[str, Any]], Any]:
    """``run(request=...)`` runs a tool call at most once per ``request["idempotency_key"]``
    (Powertools idempotency on a DynamoDB table); the second value is the idempotency config, on
    which a handler registers its Lambda context so an in-progress record expires with the
    invocation's deadline, not after an hour."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from docket import aws

    settings = get_settings()
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table, boto3_client=aws.client("dynamodb")
    )
    config = IdempotencyConfig(
        event_key_jmespath="idempotency_key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.approval_timeout_seconds + 7 * 24 * 3600,
    )

    @idempotent_function(
        data_keyword_argument="request", persistence_store=persistence, config=config
    )
    def run(request: dict[str, Any]) -> dict[str, Any]:
        return get_agent_service().run_tool(
            request["task_id"],
            request["step"],
            request["call_id"],
            request["n"],
            request["execution"],
            request.get("approval"),
        )

    return run, config


def reset() -> None:
    """Forget the cached services (the local cloud calls this when its mock stops)."""
    for f in (get_approval_service, get_tool_services, _configured_service, get_tool_runner):
        f.cache_clear()
