"""``docket serve`` state survives a restart; the CLI drives the API end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docket import cli
from docket.local.cloud import CLEAN_STOP
from docket.models import document_id_for

from .conftest import Api, start_cloud

pytestmark = pytest.mark.integration


def test_restart_with_same_data_dir_keeps_documents_and_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    cloud, gateway = start_cloud(data)
    try:
        api = Api(gateway.url)
        doc_id = api.upload(
            "facts/owl.txt", b"Snowy owls hunt lemmings across the Arctic tundra in daylight."
        )
        assert api.wait_status(doc_id)["status"] == "indexed"
    finally:
        gateway.stop()
        cloud.stop()
    # a drained stop says so, and the next start (which then skips reconciling) takes it back
    assert (data / CLEAN_STOP).exists()
    # When the local cloud starts again on the same data directory
    cloud, gateway = start_cloud(data)
    try:
        assert not (data / CLEAN_STOP).exists()
        api = Api(gateway.url)
        # Then the document and its chunks are still there and answer questions
        doc = api.call("GET", f"/documents/{doc_id}").json()
        assert doc["status"] == "indexed" and doc["chunk_count"] == 1
        body = api.ask("What do snowy owls hunt?")
        assert body["found"] and body["citations"][0]["document_id"] == doc_id
        # And new uploads keep working after the restore
        second = api.upload("facts/fox.txt", b"Arctic foxes change coat colour with the seasons.")
        assert api.wait_status(second)["status"] == "indexed"
    finally:
        gateway.stop()
        cloud.stop()


def test_cli_ingest_ask_list_show_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud, gateway = start_cloud(tmp_path / "data")
    url = ["--url", gateway.url, "--tenant", "clitenant"]
    try:
        folder = tmp_path / "kb"
        folder.mkdir()
        (folder / "bees.md").write_text(
            "# Bees\n\nHoneybees communicate the direction of flowers with a waggle dance."
        )
        (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
        # ingest: a per-file summary and a non-zero exit code because one file failed; --acl
        # takes one value (the paths after it stay paths); piped, the rows are whole and
        # tab-separated
        rc = cli.main(["ingest", "--acl", "science", str(folder), *url])
        out = capsys.readouterr().out
        assert rc == 1
        rows = [line.split("\t") for line in out.splitlines() if "\t" in line]
        assert rows[0] == ["source", "document", "status", "chunks", "reason"]
        by_source = {r[0]: r for r in rows[1:]}
        assert by_source["kb/bees.md"][1] == document_id_for("clitenant", "kb/bees.md")
        assert by_source["kb/bees.md"][2] == "indexed" and by_source["kb/broken.pdf"][2] == "failed"
        assert "1 indexed, 1 failed" in out
        # a file still being indexed when --timeout ends is not counted as failed
        (tmp_path / "late.txt").write_text("Bumblebees can fly in colder weather than honeybees.")
        rc = cli.main(["ingest", str(tmp_path / "late.txt"), *url, "--timeout", "0", "--acl", "x"])
        out = capsys.readouterr().out
        assert rc == 1 and "0 indexed, 0 failed, 1 still indexing" in out
        # ask --json: the API's body with citations carrying the documented fields
        rc = cli.main(
            [
                "ask",
                "How do honeybees tell where flowers are?",
                *url,
                "--groups",
                "science",
                "--json",
            ]
        )
        body = json.loads(capsys.readouterr().out)
        assert rc == 0 and body["found"]
        cite = body["citations"][0]
        assert {"document_id", "source", "page_start", "page_end", "chunk_id", "quote"} <= set(cite)
        assert cite["source"] == "kb/bees.md"
        # ask (text): answer then numbered citations
        cli.main(["ask", "How do honeybees tell where flowers are?", *url, "--groups", "science"])
        text = capsys.readouterr().out
        assert "waggle dance" in text and "[1] kb/bees.md (p. 1)" in text
        # docs list / show: restricted documents exist only for their groups
        cli.main(["docs", "list", *url])
        assert "kb/bees.md" not in capsys.readouterr().out
        cli.main(["docs", "list", *url, "--groups", "science"])
        listing = capsys.readouterr().out.strip().splitlines()
        assert len(listing) == 2 and any(
            "indexed" in line and "kb/bees.md" in line for line in listing
        )
        doc_id = next(line.split()[0] for line in listing if "kb/bees.md" in line)
        cli.main(["docs", "show", doc_id, *url, "--groups", "science"])
        assert json.loads(capsys.readouterr().out)["document_id"] == doc_id
        assert cli.main(["docs", "show", doc_id, *url]) == 2  # not in the group: not found
        capsys.readouterr()
        # docs delete: only a member of the document's groups may (404 to anyone else)...
        assert cli.main(["docs", "delete", doc_id, *url]) != 0
        capsys.readouterr()
        # ...and it returns once the chunks are gone from the index
        assert cli.main(["docs", "delete", doc_id, *url, "--groups", "science"]) == 0
        from docket.config import get_settings
        from docket.search.factory import get_index

        assert get_index(get_settings()).count_document("clitenant", doc_id) == 0
        assert cli.main(["docs", "show", doc_id, *url]) == 2
    finally:
        gateway.stop()
        cloud.stop()


@pytest.mark.parametrize("token", [["--token", "x"], []], ids=["token", "local-token"])
def test_cli_reports_unreachable_api(token: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # with no --token the CLI first asks the local gateway for one: that must not trace back
    rc = cli.main(["ask", "hello", "--url", "http://127.0.0.1:9", *token])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach" in err and "Traceback" not in err


def test_event_sources_deliver_configured_batches(tmp_path: Path) -> None:
    from docket.local.cloud import LocalCloud

    from .conftest import free_port

    # Given an embed event source limited to 3 records per invocation
    cloud = LocalCloud(tmp_path / "data", batch_sizes={"docket-embed": 3}).start(
        s3_port=free_port()
    )
    try:
        from docket import aws

        text = "\n\n".join(
            f"# Part {i}\n\n" + f"Fact {i} about tides and moons. " * 60 for i in range(5)
        )
        aws.client("s3").put_object(
            Bucket="docket-documents", Key="tenants/acme/tides.md", Body=text.encode()
        )
        cloud.wait_idle(120)
        embed = next(p for p in cloud.pollers if p.spec.function == "docket-embed")
        # Then the chunks arrived in batches, none larger than 3, some larger than 1
        assert embed.batch_sizes and max(embed.batch_sizes) == 3
        assert sum(embed.batch_sizes) >= 5
    finally:
        cloud.stop()
