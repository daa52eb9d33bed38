"""Schema fuzzing: schemathesis against the served /openapi.json with a valid token finds nothing
(no 5xx, every status and body as documented, schema-valid requests accepted, invalid ones
refused), across every route and its stateful links."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from docket.local.cloud import LocalCloud

from .conftest import Api, running_cloud

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    with running_cloud(tmp_path_factory.mktemp("fuzz")) as (cloud, api):
        # something to find: an indexed document and a task
        document_id = api.upload("notes/owls.txt", b"Snowy owls hunt lemmings on the tundra.")
        api.wait_status(document_id)
        yield cloud, api


def test_the_served_schema_survives_fuzzing(local: tuple[LocalCloud, Api]) -> None:
    if shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("schemathesis is not installed (it comes with the dev extra)")
    _, api = local
    token = api.token("acme", ("staff",))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{api.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            # `--checks all` overrides the config's `enabled = false`: deletes are asynchronous
            # (202), so a deleted document reads as "deleting" until the pipeline removes it
            # (then 404), and a stopped task stays readable as its audit record
            "--exclude-checks",
            "use_after_free",
            "--max-examples",
            "25",
            "--seed",
            "20261205",
            "--workers",
            "1",  # hypothesis's lambda descriptions are not thread-safe (ast recursion error)
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
