"""SciFact, indexed once per session with the project's own chunking, embedding and index.

Nothing is cached between runs: the index is built from the corpus in this session (about five
minutes of embedding on two cores), so the figures the eval tests assert are this code's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docket.config import Settings
from docket.evaluation.beir import BeirDataset, load_beir
from docket.evaluation.indexing import EVAL_TENANT, IndexedCorpus, build_index
from docket.models import SearchFilter
from docket.search.retrieval import HybridRetriever, retriever_for


@pytest.fixture(scope="session")
def eval_settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def scifact_dir(shared_data: Path) -> Path:
    path = shared_data / "scifact"
    if not (path / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {path}")
    return path


@pytest.fixture(scope="session")
def scifact_test(scifact_dir: Path) -> BeirDataset:
    return load_beir(scifact_dir, "test")


@pytest.fixture(scope="session")
def scifact_index(
    scifact_test: BeirDataset, eval_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexedCorpus]:
    from docket.embedding.factory import get_embedder

    indexed = build_index(
        list(scifact_test.corpus.values()),
        settings=eval_settings,
        embedder=get_embedder(eval_settings),
        directory=tmp_path_factory.mktemp("scifact") / "index",
    )
    yield indexed
    indexed.index.close()


@pytest.fixture(scope="session")
def scifact_retriever(scifact_index: IndexedCorpus, eval_settings: Settings) -> HybridRetriever:
    from docket.embedding.factory import get_embedder

    return retriever_for(eval_settings, scifact_index.index, get_embedder(eval_settings))


@pytest.fixture(scope="session")
def eval_filter() -> SearchFilter:
    return SearchFilter(tenant=EVAL_TENANT, groups=frozenset())


def _indexed(
    shared_data: Path,
    name: str,
    eval_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[BeirDataset, IndexedCorpus]:
    from docket.embedding.factory import get_embedder

    path = shared_data / name
    if not (path / "corpus.jsonl").is_file():
        pytest.skip(f"{name} not found at {path}")
    dataset = load_beir(path, "test")
    indexed = build_index(
        list(dataset.corpus.values()),
        settings=eval_settings,
        embedder=get_embedder(eval_settings),
        directory=tmp_path_factory.mktemp(name) / "index",
    )
    return dataset, indexed


@pytest.fixture(scope="session")
def msmarco_mini(
    shared_data: Path, eval_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BeirDataset, IndexedCorpus]]:
    """MS MARCO mini (5,000 passages, 43 judged web questions), indexed in this session."""
    dataset, indexed = _indexed(shared_data, "msmarco_mini", eval_settings, tmp_path_factory)
    yield dataset, indexed
    indexed.index.close()


@pytest.fixture(scope="session")
def arguana(
    shared_data: Path, eval_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[BeirDataset, IndexedCorpus]]:
    """ArguAna's 5,000-document subset (400 queries that are documents too), indexed here."""
    dataset, indexed = _indexed(shared_data, "arguana", eval_settings, tmp_path_factory)
    yield dataset, indexed
    indexed.index.close()
