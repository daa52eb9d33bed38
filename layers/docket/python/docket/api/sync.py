"""Change data capture, for tenant administrators: start a backfill of a source table, follow it,
and verify (and repair) the tenant's documents against the table's rows (docket.sync)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict

from docket.auth import ADMIN_GROUP, ADMIN_SCOPE
from docket.models import Principal
from docket.sync.reconcile import VerifyReport

router = APIGatewayHttpRouter()

SourceParam = Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
RunParam = Annotated[str, PathParam(pattern=r"^[a-z0-9_-]{1,63}-\d{8}T\d{6}-\d{6}$")]


class VerifyRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    repair: bool = True


class Backfill(BaseModel):
    source: str
    run: str
    status: str


def _admin() -> Principal:
    from docket.auth import principal_from_event, require

    return require(
        principal_from_event(router.current_event.raw_event),
        scope=ADMIN_SCOPE,
        group=ADMIN_GROUP,
        to="syncing source tables",
    )


def _service() -> Any:
    from docket.sync.factory import get_sync_service

    return get_sync_service()


def _backfills() -> Any:
    from docket.config import get_settings
    from docket.sync.jobs import Backfills

    return Backfills(get_settings().sync_backfill_state_machine_arn)


@router.post("/sync/<source>/verify")
def verify_source(source: SourceParam, body: VerifyRequest) -> VerifyReport:
    """The caller's tenant's rows of the source against its documents: what is in sync, what was
    missing, stale or orphaned (and is repaired unless ``repair`` is false), what is skipped."""
    from docket.sync.reconcile import verify

    caller = _admin()
    sync = _service()
    return verify(sync, sync.source(source), caller.tenant, repair=body.repair)


@router.post("/sync/<source>/backfill")
def start_backfill(source: SourceParam) -> Response[Backfill]:
    """Sync every row already in the table (all its tenants' rows: the table is one source), in
    parallel segments, while the stream goes on."""
    from docket.config import get_settings

    _admin()
    name = _service().source(source).name
    run = _backfills().start(name, get_settings().sync_backfill_segments)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=Backfill(source=name, run=run, status="RUNNING"),
        headers={"Location": f"/sync/{name}/backfills/{run}"},
    )


@router.get("/sync/<source>/backfills/<run>")
def backfill_status(source: SourceParam, run: RunParam) -> Backfill:
    _admin()
    name = _service().source(source).name
    if not run.startswith(f"{name}-"):
        from docket.errors import NotFound

        raise NotFound(f"no backfill {run} of {name}")
    return Backfill(source=name, run=run, status=_backfills().status(run))
