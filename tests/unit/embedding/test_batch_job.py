"""The re-embedding job's work (docket/embedding/batch_job.py) and its entry point (jobs/embed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from docket.embedding.batch_job import (
    MalformedLine,
    input_line,
    iter_outputs,
    output_line,
    parse_lines,
    read_output_line,
    transform_dir,
)
from docket.embedding.hashing import HashingEmbedder

ROOT = Path(__file__).resolve().parents[3]
TEXTS = ["Vitamin D and fractures", "", "BM25 fusion", "Ünïcödé 東京", "x " * 300]


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


def lines(prefix: str, n: int) -> str:
    return "".join(
        f"{input_line(f'{prefix}{i}', 'acme', TEXTS[i % len(TEXTS)])}\n" for i in range(n)
    )


def test_parse_lines_reads_records_and_skips_blank_lines() -> None:
    records = parse_lines(lines("c", 3) + "\n  \n" + input_line("d", "", "last"))
    assert [r.chunk_id for r in records] == ["c0", "c1", "c2", "d"]
    assert records[1].text == "" and records[0].tenant == "acme"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"text": "no id"}', "chunk_id"),
        ('{"chunk_id": 7, "text": "t"}', "chunk_id"),
        ('{"chunk_id": "c", "text": null}', "text"),
        ('{"chunk_id": "c", "text": "t", "tenant": 3}', "tenant"),
    ],
)
def test_a_malformed_line_is_reported_with_its_number(bad: str, why: str) -> None:
    with pytest.raises(MalformedLine, match=f"part-1.jsonl line 3: .*{why}") as raised:
        parse_lines(lines("c", 2) + bad + "\n" + lines("d", 1), source="part-1.jsonl")
    assert raised.value.line == 3
    assert raised.value.code == "malformed_line"


def test_output_lines_read_back_to_the_same_float32_vector() -> None:
    vector = np.random.default_rng(3).normal(size=384).astype(np.float32)
    chunk_id, back = read_output_line(output_line('chk_"quoted"', vector))
    assert chunk_id == 'chk_"quoted"'
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, vector)


def test_transform_dir_writes_one_out_file_per_input_in_order(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    # Given two input shards (and a file that is not a shard)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0000.jsonl").write_text(lines("a", 7))
    (tmp_path / "in" / "part-0001.jsonl").write_text(lines("b", 600))  # more than one block
    (tmp_path / "in" / "_SUCCESS").write_text("")
    # When the job runs
    stats = transform_dir(embedder, tmp_path / "in", tmp_path / "out")
    # Then each shard has its .out (Batch Transform's naming), with every record in order
    assert stats.files == 2 and stats.records == 607
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "part-0000.jsonl.out",
        "part-0001.jsonl.out",
    ]
    got = list(iter_outputs(tmp_path / "out"))
    assert [cid for cid, _ in got] == [f"a{i}" for i in range(7)] + [f"b{i}" for i in range(600)]
    expected = embedder.embed_documents([TEXTS[i % len(TEXTS)] for i in range(7)])
    np.testing.assert_allclose(np.stack([v for _, v in got[:7]]), expected, rtol=1e-6)


def test_a_malformed_shard_fails_the_job_without_a_partial_output(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0000.jsonl").write_text(lines("a", 3))
    (tmp_path / "in" / "part-0001.jsonl").write_text(lines("b", 4) + "oops\n")
    with pytest.raises(MalformedLine, match=r"part-0001\.jsonl line 5"):
        transform_dir(embedder, tmp_path / "in", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["part-0000.jsonl.out"]


def run_job(input_dir: Path, output_dir: Path) -> subprocess.CompletedProcess[str]:
    """``jobs/embed/entry.py transform`` in a fresh process, with the int8 model."""
    return subprocess.run(
        [
            sys.executable,
            *(str(ROOT / "jobs/embed/entry.py"), "transform"),
            *("--input", str(input_dir), "--output", str(output_dir)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKET_EMBEDDING_PRECISION": "int8"},
        timeout=300,
    )


@pytest.mark.model
def test_the_entry_point_embeds_a_folder_with_the_configured_model(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-0000.jsonl").write_text(lines("a", 20))
    run = run_job(tmp_path / "in", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["records"] == 20 and summary["model"].endswith("-int8")
    vectors = [v for _, v in iter_outputs(tmp_path / "out")]
    assert len(vectors) == 20 and vectors[0].shape == (384,)
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-3
    # a malformed shard: exit 1 with the line named
    (tmp_path / "in" / "part-0001.jsonl").write_text("nope\n")
    run = run_job(tmp_path / "in", tmp_path / "out2")
    assert run.returncode == 1
    assert "part-0001.jsonl line 1" in run.stderr
