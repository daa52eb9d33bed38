"""Unit tests use fakes and never touch the network."""

from __future__ import annotations

import aws_xray_sdk.core  # noqa: F401  (creates its UDP emitter socket at import: do it before blocking)
import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
