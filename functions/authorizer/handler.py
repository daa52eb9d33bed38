"""Authorizer: API Gateway HTTP API (v2) authorizer requests → the caller's claims, from a JWT or
an API key (docket.api.authorizer)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.api.authorizer import authorize
from docket.observability import logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorize(event)
