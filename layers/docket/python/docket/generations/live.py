"""Which generation a process reads and writes, from the registry.

- Queries read the **live** generation: its model embeds the question and its index answers, both
  taken from the same record, so a query never mixes models. The record is cached for
  ``generation_cache_seconds``; a process that has not yet seen a cutover keeps reading the
  previous generation, which is still complete (it keeps receiving writes, below).
- Chunk changes are written to **every generation that has an index**: the live one, the one
  being built (dual write, so nothing ingested during a rebuild is lost) and the retired ones
  still kept for rollback (so a rollback loses nothing written since the cutover). Read fresh
  for every batch.

Without a generations table (unit tests, a deployment that predates it) the settings' own model
and index are the only generation.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from docket.config import Settings
from docket.generations.models import Generation, GenerationState, generation_settings
from docket.generations.registry import DynamoGenerationRegistry, GenerationRegistry

WRITTEN = (GenerationState.LIVE, GenerationState.BUILDING, GenerationState.RETIRED)


def registry_for(settings: Settings) -> GenerationRegistry | None:
    if not settings.generations_table:
        return None
    return DynamoGenerationRegistry(settings.generations_table)


class LiveGenerations:
    def __init__(self, settings: Settings, registry: GenerationRegistry | None) -> None:
        self.settings = settings
        self.registry = registry
        self._lock = threading.Lock()
        self._cached: tuple[float, Generation | None] | None = None

    def live(self) -> tuple[Generation | None, Settings]:
        """The live generation (None: the settings' own index) and the settings that read it."""
        if self.registry is None:
            return None, self.settings
        ttl = self.settings.generation_cache_seconds
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= ttl:
                self._cached = (now, self.registry.live())
            generation = self._cached[1]
        return generation, generation_settings(self.settings, generation)

    def write_settings(self) -> list[Settings]:
        """The settings of every generation chunk changes go to; the live one first."""
        if self.registry is None:
            return [self.settings]
        generations = [g for g in self.registry.all() if g.state in WRITTEN]
        if not generations:
            return [self.settings]
        generations.sort(key=lambda g: (g.state != GenerationState.LIVE, -g.number))
        if generations[0].state != GenerationState.LIVE:  # not bootstrapped: the settings' index
            return [self.settings] + [generation_settings(self.settings, g) for g in generations]
        return [generation_settings(self.settings, g) for g in generations]


def open_generation(settings: Settings) -> tuple[Any, Any]:
    """(index, embedder) for a generation's settings, each cached per process."""
    from docket.embedding.factory import get_embedder
    from docket.search.factory import get_index

    return get_index(settings), get_embedder(settings)


def write_targets(settings: Settings) -> list[tuple[Any, Any]]:
    """(index, embedder) of every generation writes go to, the live one first."""
    generations = LiveGenerations(settings, registry_for(settings))
    return [open_generation(s) for s in generations.write_settings()]


def write_indexes(settings: Settings) -> list[Any]:
    return [index for index, _ in write_targets(settings)]
