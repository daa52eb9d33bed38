"""Synthesizes the CDK app once per session, offline, with a stub layer asset.

The stub layer holds the docket package only (no pip, no network); the templates, the assets
and cdk-nag's validation report land in a temporary cloud assembly that every infra test reads.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_RELEASE", "1")

REPO = Path(__file__).resolve().parents[2]
STAGE = "test"
CONTEXT = {
    "docket:stage": STAGE,
    "docket:jwtIssuer": "https://issuer.example.com/",
    "docket:jwtAudience": ["docket-api", "docket-cli"],
    "docket:senderEmail": "approvals@example.com",
    "docket:alarmEmail": "oncall@example.com",
}


@dataclass(frozen=True)
class Synth:
    outdir: Path
    template: dict[str, Any]
    stack_name: str

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def wiring(self, cfn_type: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """WIRING name -> (logical id, resource), for resources that carry docket:wiring."""
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for logical, res in self.of_type(cfn_type).items():
            name = (res.get("Metadata") or {}).get("docket:wiring")
            if name:
                assert name not in out, f"two {cfn_type} implement {name}"
                out[name] = (logical, res)
        return out

    def asset(self, key: str) -> Path:
        """The staged asset behind an S3 key of the template (``<hash>.zip`` or ``<hash>.json``)."""
        digest, _, ext = key.partition(".")
        path = self.outdir / (f"asset.{digest}.{ext}" if ext == "json" else f"asset.{digest}")
        assert path.exists(), f"no staged asset for {key}"
        return path

    def definition(self, machine: dict[str, Any]) -> str:
        """A state machine's definition: inline, or the staged file DefinitionBody.from_file made."""
        props = machine["Properties"]
        if "DefinitionString" in props:
            value = props["DefinitionString"]
            return value if isinstance(value, str) else "".join(value["Fn::Join"][1])
        return self.asset(props["DefinitionS3Location"]["Key"]).read_text()

    def name_of(self, logical: str) -> str:
        return str(self.resources[logical]["Metadata"]["docket:wiring"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.infra)


@pytest.fixture(scope="session")
def stub_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A layer folder with the docket package only: synth packs it without installing anything."""
    root = tmp_path_factory.mktemp("layer")
    shutil.copytree(
        REPO / "layers" / "docket" / "python" / "docket",
        root / "python" / "docket",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return root


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, stub_layer: Path) -> Iterator[Synth]:
    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(context={**CONTEXT, "docket:layerAsset": str(stub_layer)}, outdir=str(outdir))
    app.synth()
    stack_name = f"docket-{STAGE}"
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    yield Synth(outdir=outdir, template=template, stack_name=stack_name)
