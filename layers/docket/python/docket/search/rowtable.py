"""Per-row metadata of the embedded index and the filter masks computed from it.

Every chunk version owns one row number (its vector's row in vectors.f32). ``RowTable`` is the
writer's view: rows are appended and never change afterwards, except that a row dies when its
chunk is replaced or deleted. ``RowTable.freeze`` gives the immutable ``FrozenRows`` a search
reads; it copies only the live flags (the one column whose old positions change), so freezing
100k rows costs well under a millisecond, and masking them for a filter about as much.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from docket.models import SearchFilter

RowArray = npt.NDArray[np.int64]
_NO_CODE = -1


class _Postings:
    """A growable list of row numbers (ascending) for one (tenant, group)."""

    def __init__(self) -> None:
        self.buffer = np.empty(16, dtype=np.int64)
        self.length = 0

    def append(self, row: int) -> None:
        if self.length == len(self.buffer):
            grown = np.empty(2 * len(self.buffer), dtype=np.int64)
            grown[: self.length] = self.buffer
            self.buffer = grown
        self.buffer[self.length] = row
        self.length += 1

    def view(self) -> RowArray:
        """Later appends never touch this view (a reallocation leaves it on the old buffer)."""
        out = self.buffer[: self.length]
        out.flags.writeable = False
        return out


@dataclass(frozen=True)
class FrozenRows:
    """The rows as of one commit; never mutated."""

    count: int
    live: npt.NDArray[np.bool_]
    tenant: npt.NDArray[np.int32]
    document: npt.NDArray[np.int32]
    source: npt.NDArray[np.int32]
    public: npt.NDArray[np.bool_]
    # Code books are append-only and shared with the writer: a code first used after this
    # freeze belongs only to rows >= ``count``, which this view never reads.
    tenant_codes: Mapping[str, int]
    document_codes: Mapping[str, int]
    source_codes: Mapping[str, int]
    group_rows: Mapping[tuple[int, str], RowArray]

    def matching(self, flt: SearchFilter) -> RowArray:
        """Live rows (ascending) that pass the filter: the tenant's, with no ACL groups or one
        shared with the caller, within ``document_ids`` and ``sources`` when given."""
        t = self.tenant_codes.get(flt.tenant)
        if t is None or self.count == 0:
            return np.empty(0, dtype=np.int64)
        mask = self.tenant == t
        mask &= self.live
        acl = self.public.copy()
        for group in flt.groups:
            rows = self.group_rows.get((t, group))
            if rows is not None:
                acl[rows] = True
        mask &= acl
        if flt.document_ids is not None:
            mask &= _isin(self.document, flt.document_ids, self.document_codes)
        if flt.sources is not None:
            mask &= _isin(self.source, flt.sources, self.source_codes)
        return np.flatnonzero(mask)

    def count_document(self, tenant: str, document_id: str) -> int:
        t = self.tenant_codes.get(tenant)
        d = self.document_codes.get(document_id)
        if t is None or d is None:
            return 0
        return int(np.count_nonzero((self.tenant == t) & (self.document == d) & self.live))


class RowTable:
    """The writer's row metadata (callers serialise writes; freezes are safe to share)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.length = 0
        self._live = np.zeros(capacity, dtype=bool)
        self._public = np.zeros(capacity, dtype=bool)
        self._tenant = np.full(capacity, _NO_CODE, dtype=np.int32)
        self._document = np.full(capacity, _NO_CODE, dtype=np.int32)
        self._source = np.full(capacity, _NO_CODE, dtype=np.int32)
        self._tenant_codes: dict[str, int] = {}
        self._document_codes: dict[str, int] = {}
        self._source_codes: dict[str, int] = {}
        self._groups: dict[tuple[int, str], _Postings] = {}
        self._live_rows: dict[tuple[str, str], int] = {}
        self._chunk_ids: list[str | None] = []

    def __len__(self) -> int:
        """Live rows."""
        return len(self._live_rows)

    def row_of(self, tenant: str, chunk_id: str) -> int | None:
        return self._live_rows.get((tenant, chunk_id))

    def append(
        self, tenant: str, chunk_id: str, document_id: str, source: str, groups: Collection[str]
    ) -> int:
        """A new live row; the chunk's previous row, if any, must have been killed first."""
        row = self.length
        self._reserve(row + 1)
        t = _code(self._tenant_codes, tenant)
        self._live[row] = True
        self._tenant[row] = t
        self._document[row] = _code(self._document_codes, document_id)
        self._source[row] = _code(self._source_codes, source)
        self._public[row] = not groups
        for group in groups:
            postings = self._groups.get((t, group))
            if postings is None:
                postings = self._groups[(t, group)] = _Postings()
            postings.append(row)
        self._live_rows[(tenant, chunk_id)] = row
        self._chunk_ids.append(chunk_id)
        self.length = row + 1
        return row

    def append_dead(self, rows: int) -> None:
        """Placeholders for row numbers whose chunks died before the last commit."""
        self._reserve(self.length + rows)
        self._chunk_ids.extend([None] * rows)
        self.length += rows

    def kill(self, row: int, tenant: str, chunk_id: str) -> None:
        self._live[row] = False
        del self._live_rows[(tenant, chunk_id)]

    def document_chunks(self, tenant: str, document_id: str) -> list[str]:
        """Chunk ids of a document's live rows, including writes not yet committed."""
        t = self._tenant_codes.get(tenant)
        d = self._document_codes.get(document_id)
        if t is None or d is None:
            return []
        n = self.length
        rows = np.flatnonzero((self._tenant[:n] == t) & (self._document[:n] == d) & self._live[:n])
        return [self._chunk_ids[row] or "" for row in rows.tolist()]

    def freeze(self) -> FrozenRows:
        n = self.length
        live = self._live[:n].copy()
        live.flags.writeable = False
        return FrozenRows(
            count=n,
            live=live,
            tenant=_frozen_view(self._tenant, n),
            document=_frozen_view(self._document, n),
            source=_frozen_view(self._source, n),
            public=_frozen_view(self._public, n),
            tenant_codes=self._tenant_codes,
            document_codes=self._document_codes,
            source_codes=self._source_codes,
            group_rows={key: postings.view() for key, postings in self._groups.items()},
        )

    def _reserve(self, needed: int) -> None:
        capacity = len(self._live)
        if needed <= capacity:
            return
        capacity = max(needed, 2 * capacity)
        # new buffers: frozen views keep the old ones, whose filled part never changes again
        self._live = _grown(self._live, capacity, False)
        self._public = _grown(self._public, capacity, False)
        self._tenant = _grown(self._tenant, capacity, _NO_CODE)
        self._document = _grown(self._document, capacity, _NO_CODE)
        self._source = _grown(self._source, capacity, _NO_CODE)


def _grown(array: npt.NDArray[Any], capacity: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full(capacity, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out


def _frozen_view(array: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    out = array[:n]
    out.flags.writeable = False
    return out


def _code(codes: dict[str, int], value: str) -> int:
    code = codes.get(value)
    if code is None:
        code = codes[value] = len(codes)
    return code


def _isin(column: npt.NDArray[np.int32], values: frozenset[str], codes: Mapping[str, int]) -> Any:
    wanted = [codes[v] for v in values if v in codes]
    if not wanted:
        return np.zeros(len(column), dtype=bool)
    if len(wanted) == 1:
        return column == wanted[0]
    return np.isin(column, wanted)
