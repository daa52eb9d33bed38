"""Document builders shared by the suites (the extract unit tests own their implementation)."""

from tests.unit.extract.conftest import build_pdf, encrypt_pdf

__all__ = ["build_pdf", "encrypt_pdf"]
