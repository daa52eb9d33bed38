"""RowTable and FrozenRows: the k-NN filter masks and the snapshot guarantee."""

from __future__ import annotations

from docket.models import SearchFilter
from docket.search.rowtable import RowTable


def test_a_frozen_view_never_changes_after_later_writes():
    # Given a table with two rows, frozen
    table = RowTable(capacity=2)
    a = table.append("acme", "c1", "doc_a", "a.txt", ())
    b = table.append("acme", "c2", "doc_a", "a.txt", ["hr"])
    frozen = table.freeze()
    everyone = SearchFilter(tenant="acme", groups=frozenset({"hr"}))
    assert frozen.matching(everyone).tolist() == [a, b]
    # When the writer kills a row and appends past the capacity (buffers reallocate)
    table.kill(a, "acme", "c1")
    for i in range(10):
        table.append("acme", f"n{i}", "doc_b", "b.txt", ["hr"])
    # Then the old view still answers as of its freeze
    assert frozen.matching(everyone).tolist() == [a, b]
    assert frozen.count_document("acme", "doc_a") == 2
    # And a new freeze sees the changes
    fresh = table.freeze()
    assert fresh.matching(everyone).tolist() == [b, *range(2, 12)]
    assert fresh.count_document("acme", "doc_a") == 1
    assert len(table) == 11


def test_masks_combine_tenant_acl_documents_and_sources():
    table = RowTable()
    table.append("acme", "c0", "doc_a", "a.txt", ())
    table.append("acme", "c1", "doc_b", "b.txt", ["hr"])
    table.append("acme", "c2", "doc_b", "b.txt", ["legal", "hr"])
    table.append("zeta", "c3", "doc_z", "a.txt", ())
    table.append_dead(2)
    table.append("acme", "c6", "doc_a", "a.txt", ["legal"])
    rows = table.freeze()
    assert rows.count == 7
    assert rows.matching(SearchFilter(tenant="acme")).tolist() == [0]
    legal = SearchFilter(tenant="acme", groups=frozenset({"legal"}))
    assert rows.matching(legal).tolist() == [0, 2, 6]
    hr_b = SearchFilter(tenant="acme", groups=frozenset({"hr"}), document_ids=frozenset({"doc_b"}))
    assert rows.matching(hr_b).tolist() == [1, 2]
    by_source = SearchFilter(
        tenant="acme", groups=frozenset({"legal"}), sources=frozenset({"a.txt"})
    )
    assert rows.matching(by_source).tolist() == [0, 6]
    unknown = SearchFilter(tenant="acme", document_ids=frozenset({"doc_unknown"}))
    assert rows.matching(unknown).tolist() == []
    assert rows.matching(SearchFilter(tenant="nobody")).tolist() == []
    assert table.document_chunks("acme", "doc_b") == ["c1", "c2"]
    assert table.row_of("acme", "c6") == 6 and table.row_of("zeta", "c6") is None
