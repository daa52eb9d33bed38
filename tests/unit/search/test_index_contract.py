"""The SearchIndex contract (tests/search_contract.py) against the adapters in conftest.py's
``INDEX_KINDS`` (the embedded index); tests/integration/test_opensearch_contract.py runs the
same cases against OpenSearch (osmem-server)."""

from __future__ import annotations

from tests.search_contract import *  # noqa: F403  (the contract cases and their fixtures)
