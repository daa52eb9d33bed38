"""Index generation routes (admin): the live generation and any being built, a rebuild with
another embedding model, rollback; and the models a generation can use.

The caller needs the ``admin`` scope or the ``admins`` group: a generation spans every tenant.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from docket.auth import ADMIN_GROUP, ADMIN_SCOPE

router = APIGatewayHttpRouter()


class RebuildRequest(BaseModel):
    # no coercion: "rerank": 0 or "size_bytes": false is a client bug, not a value
    model_config = ConfigDict(strict=True)

    model: str = Field(min_length=1, max_length=200, description="a name from GET /models")
    golden_dir: str | None = Field(
        default=None,
        max_length=1000,
        description="a BEIR folder of the knowledge base's own questions and judgements for the "
        "gate (default: the configured one)",
    )
    golden_tenant: str | None = Field(default=None, max_length=128)
    golden_split: str = Field(default="test", max_length=64)


def _admin() -> Any:
    from docket.auth import principal_from_event, require

    return require(
        principal_from_event(router.current_event.raw_event),
        scope=ADMIN_SCOPE,
        group=ADMIN_GROUP,
        to="index generations",
    )


def _service() -> Any:
    from docket.generations.factory import get_rebuild_service

    return get_rebuild_service()


@router.get("/models")
def list_models() -> dict[str, Any]:
    from docket.generations.models import MODELS

    return {"models": [m.model_dump(include={"name", "description"}) for m in MODELS.values()]}


@router.get("/index/status")
def index_status() -> dict[str, Any]:
    _admin()
    return _service().status()  # type: ignore[no-any-return]


@router.post("/index/generations")
def rebuild(body: RebuildRequest) -> Response[Any]:
    import json

    caller = _admin()
    golden = None
    if body.golden_dir:
        golden = {
            "dir": body.golden_dir,
            "tenant": body.golden_tenant or "",
            "split": body.golden_split,
        }
    generation = _service().start(
        body.model, golden=golden, requested_by=caller.subject, tenant=caller.tenant
    )
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"generation": generation.model_dump(mode="json", exclude={"job"})}),
    )


@router.post("/index/rollback")
def rollback() -> dict[str, Any]:
    _admin()
    generation = _service().rollback()
    return {"live": generation.model_dump(mode="json", exclude={"job"})}
