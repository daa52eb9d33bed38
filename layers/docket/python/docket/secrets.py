"""Secrets read at run time from Secrets Manager through Powertools parameters (cached for five
minutes per process, so a rotated value arrives without a redeploy and without a call per
request). Values never pass through a function's environment, which anyone allowed to read the
function's configuration can see."""

from __future__ import annotations

import json
from typing import Any

from docket.errors import ConfigurationError

MAX_AGE_S = 300


def secret_value(name: str, key: str | None = None) -> str:
    """The secret's string, or one key of a JSON secret."""
    from aws_lambda_powertools.utilities import parameters

    try:
        raw: Any = parameters.get_secret(name, max_age=MAX_AGE_S)
    except Exception as exc:
        raise ConfigurationError(f"cannot read secret {name}: {exc}") from exc
    if key is None:
        return str(raw)
    try:
        value = json.loads(raw)[key]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"secret {name} has no {key!r} (a JSON object is expected)"
        ) from exc
    return str(value)
