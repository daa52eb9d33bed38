"""JSON: flattened to key paths with values, readable rather than a raw dump."""

from __future__ import annotations

import json

import pytest

from docket.errors import CorruptDocument
from docket.extract import extract_document


def test_json_is_flattened_to_key_paths():
    # Given nested JSON with objects, arrays, numbers, booleans and null
    data = json.dumps(
        {
            "report": {
                "name": "Weekly KPIs",
                "metrics": {"users": 1234, "churn": 0.02},
                "alerts": [{"level": "high", "open": True}, {"level": "low", "owner": None}],
            }
        }
    ).encode()

    # When it is extracted
    document = extract_document(data, "kpis.json")

    # Then every value is one "path: value" line and the name is the title
    assert document.format == "json"
    assert document.title == "Weekly KPIs"
    assert document.text.split("\n") == [
        "report.name: Weekly KPIs",
        "report.metrics.users: 1234",
        "report.metrics.churn: 0.02",
        "report.alerts[0].level: high",
        "report.alerts[0].open: true",
        "report.alerts[1].level: low",
        "report.alerts[1].owner: null",
    ]


def test_json_lines_are_flattened_record_by_record():
    # Given JSON Lines
    data = b'{"id": 1, "msg": "started"}\n{"id": 2, "msg": "stopped"}\n'

    # When it is extracted
    document = extract_document(data, "events.jsonl")

    # Then each record is a block of paths prefixed by its position
    assert document.text == "[0].id: 1\n[0].msg: started\n\n[1].id: 2\n[1].msg: stopped"
    assert document.metadata["records"] == "2"


def test_invalid_json_raises_corrupt_document():
    # Given a .json file that does not parse
    data = b'{"name": "half a document", "items": [1, 2,'

    # When it is extracted
    # Then it fails as corrupt with the parser's reason
    with pytest.raises(CorruptDocument, match="invalid JSON"):
        extract_document(data, "broken.json")


def test_deeply_nested_json_does_not_escape_as_recursion_error():
    # Given JSON nested far deeper than Python's recursion limit
    data = b"[" * 100_000 + b"]" * 100_000

    # When it is extracted
    # Then the failure is typed
    with pytest.raises(CorruptDocument):
        extract_document(data, "deep.json")


def test_json_detected_by_content_type_and_by_sniffing():
    # Given JSON without a .json name
    data = b'{"title": "Config", "debug": false}'

    # When it is extracted with a JSON content type, and with none
    by_type = extract_document(data, "config", "application/json")
    by_sniff = extract_document(data, "config")

    # Then both find JSON
    assert by_type.format == by_sniff.format == "json"
    assert by_type.text == "title: Config\ndebug: false"
