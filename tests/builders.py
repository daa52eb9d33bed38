"""Document builders shared by the suites (they live with the extraction tests)."""

from tests.unit.extract.builders import build_pdf, encrypt_pdf

__all__ = ["build_pdf", "encrypt_pdf"]
