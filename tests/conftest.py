"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Outside Lambda: no X-Ray daemon, no EMF metrics on stdout, no real AWS credentials.
for _key, _value in {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}.items():
    os.environ.setdefault(_key, _value)


def shared_data_dir() -> Path:
    """The shared evaluation data: DOCKET_SHARED_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("DOCKET_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set DOCKET_SHARED_DATA)")
    return path
