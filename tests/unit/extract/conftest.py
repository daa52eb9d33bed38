"""Fixtures for the extraction tests: document builders and the small files they own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .builders import (
    build_eml,
    build_epub,
    build_odt,
    build_pdf,
    build_placed_pdf,
    build_pptx,
    build_xlsx,
    build_zip,
    encrypt_pdf,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "extract"

__all__ = ["build_pdf", "encrypt_pdf"]  # re-exported for tests/builders.py


@pytest.fixture
def make_pdf() -> Callable[..., bytes]:
    return build_pdf


@pytest.fixture
def make_placed_pdf() -> Callable[..., bytes]:
    return build_placed_pdf


@pytest.fixture
def make_encrypted_pdf() -> Callable[..., bytes]:
    return encrypt_pdf


@pytest.fixture
def make_zip() -> Callable[..., bytes]:
    return build_zip


@pytest.fixture
def make_pptx() -> Callable[..., bytes]:
    return build_pptx


@pytest.fixture
def make_xlsx() -> Callable[..., bytes]:
    return build_xlsx


@pytest.fixture
def make_odt() -> Callable[..., bytes]:
    return build_odt


@pytest.fixture
def make_epub() -> Callable[..., bytes]:
    return build_epub


@pytest.fixture
def make_eml() -> Callable[..., bytes]:
    return build_eml


@pytest.fixture
def fixture_bytes() -> Callable[[str], bytes]:
    """Bytes of a small file under tests/fixtures/extract/."""
    return lambda name: (FIXTURES / name).read_bytes()
