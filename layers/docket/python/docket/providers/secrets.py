"""Provider API keys: from a Secrets Manager secret on AWS, from settings locally.

On AWS the keys never sit in environment variables: ``settings.provider_secret_name`` names a
JSON secret ``{"openai_api_key": ..., "anthropic_api_key": ..., "cohere_api_key": ...}`` read
through Powertools parameters, which caches it in the process for ``SECRET_MAX_AGE_S`` so warm
invocations do not call Secrets Manager (and a rotated key is picked up within that time by
whatever is built afterwards). Locally the keys come from DOCKET_*_API_KEY settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docket.errors import ConfigurationError, ProviderUnavailable

if TYPE_CHECKING:
    from docket.config import Settings

KEY_NAMES = ("openai_api_key", "anthropic_api_key", "cohere_api_key")
SECRET_MAX_AGE_S = 300
# Secrets Manager errors that stay until someone changes the secret, its policy or our settings
_PERMANENT_CODES = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "InvalidRequestException"}
)


def provider_keys(settings: Settings) -> dict[str, str]:
    """The provider keys that are set: the secret's when ``provider_secret_name`` is set (keys it
    lacks fall back to settings), else the settings' own. Empty values are left out."""
    keys = {name: value for name in KEY_NAMES if (value := getattr(settings, name, None))}
    if not settings.provider_secret_name:
        return keys
    secret = _read_secret(settings.provider_secret_name)
    for name in KEY_NAMES:
        value = secret.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ConfigurationError(
                f"secret {settings.provider_secret_name}: {name} must be a string"
            )
        keys[name] = value
    return keys


def _read_secret(name: str) -> dict[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    try:
        secret = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_S)
    except parameters.TransformParameterError as exc:
        raise ConfigurationError(f"secret {name} is not a JSON object of provider keys") from exc
    except parameters.GetParameterError as exc:
        code = _client_error_code(exc)
        if code in _PERMANENT_CODES:
            raise ConfigurationError(f"secret {name} cannot be read: {code}") from exc
        raise ProviderUnavailable(f"secret {name} could not be read: {code or exc}") from exc
    if not isinstance(secret, dict):
        raise ConfigurationError(f"secret {name} is not a JSON object of provider keys")
    return secret


def _client_error_code(exc: BaseException) -> str | None:
    """The AWS error code behind Powertools' wrapper (it chains the botocore error)."""
    cause: BaseException | None = exc
    while cause is not None:
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        cause = cause.__cause__ or cause.__context__
    return None


def clear_cache() -> None:
    """Forget cached secrets (tests; Powertools' cache is per process)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()


__all__ = ["KEY_NAMES", "SECRET_MAX_AGE_S", "clear_cache", "provider_keys"]
