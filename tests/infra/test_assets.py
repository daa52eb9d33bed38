"""Lambda assets: the layer carries the runtime requirements only; function code is the thin
handler folder; the environment names are settings docket.config reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from docket.config import Settings
from docket.wiring import WIRING
from infra import constants as c
from infra import layer

from .conftest import Synth


def _packages_in(folder: Path) -> set[str]:
    """Top-level importable names and installed distributions under a folder."""
    names = set()
    for p in folder.rglob("*"):
        if p.name.endswith((".dist-info", ".egg-info")):
            names.add(p.name.split("-")[0].lower().replace("_", "-"))
        elif p.parent == folder or (p.parent.name == "python" and p.parent.parent == folder):
            names.add(p.stem.lower().replace("_", "-"))
    return names


def test_runtime_requirements_have_no_local_only_packages() -> None:
    requirements = layer.runtime_requirements()
    assert requirements, "pyproject has no [project].dependencies"
    assert layer.forbidden_requirements(requirements) == []
    names = {layer.requirement_name(r) for r in requirements}
    assert not names & c.FORBIDDEN_PACKAGES
    assert {"aws-lambda-powertools", "pydantic", "opensearch-py"} <= names


def test_nothing_the_runtime_requirements_pull_in_is_local_only() -> None:
    """Transitively, as installed here: a provider SDK that grew a torch dependency would be
    caught before it reached the layer."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [layer.requirement_name(r) for r in layer.runtime_requirements()]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this machine does not have
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # only behind an extra (or another platform): not installed by pip
            todo.append(layer.requirement_name(requirement.name))
    assert {"anthropic", "openai", "cohere", "opensearch-py"} <= seen
    assert not seen & c.FORBIDDEN_PACKAGES, sorted(seen & c.FORBIDDEN_PACKAGES)


def test_forbidden_requirements_are_caught() -> None:
    assert layer.forbidden_requirements(["torch>=2", "numpy", "onnxruntime==1.18", "Moto[s3]"]) == [
        "torch>=2",
        "onnxruntime==1.18",
        "Moto[s3]",
    ]
    assert layer.requirement_name("pypdf[crypto]>=5.0") == "pypdf"
    assert layer.requirement_name("Typing_Extensions") == "typing-extensions"


def test_pip_builds_for_lambda_without_docker(tmp_path: Path) -> None:
    cmd = layer.pip_command(["numpy>=1.26"], tmp_path)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[cmd.index("--platform") + 1] == "manylinux2014_x86_64"
    assert "--only-binary=:all:" in cmd
    assert cmd[cmd.index("--python-version") + 1] == "3.11"
    assert cmd[cmd.index("--target") + 1] == str(tmp_path)


def test_configured_layer_asset_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "python").mkdir()
    assert layer.layer_asset_path(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError):
        layer.layer_asset_path(str(tmp_path / "missing"))


def test_no_lambda_asset_carries_forbidden_packages(synth: Synth) -> None:
    (layer_res,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    assets = [synth.asset(layer_res["Properties"]["Content"]["S3Key"])]
    for _, fn in synth.wiring("AWS::Lambda::Function").values():
        assets.append(synth.asset(fn["Properties"]["Code"]["S3Key"]))
    for asset in assets:
        found = _packages_in(asset) & c.FORBIDDEN_PACKAGES
        assert not found, f"{asset}: {found}"
    for spec in WIRING.functions:
        folder = c.FUNCTIONS_DIR / spec.code_dir
        assert not _packages_in(folder) & c.FORBIDDEN_PACKAGES
        source = (folder / "handler.py").read_text()
        for name in c.FORBIDDEN_PACKAGES:
            assert f"import {name}" not in source and f"from {name}" not in source


def test_function_code_is_only_its_handler_folder(synth: Synth) -> None:
    for name, (_, fn) in synth.wiring("AWS::Lambda::Function").items():
        asset = synth.asset(fn["Properties"]["Code"]["S3Key"])
        files = {p.name for p in asset.rglob("*") if p.is_file()}
        assert "handler.py" in files and not any(f.endswith(".dist-info") for f in files), name
        assert len(files) < 10, f"{name}: the code asset holds more than a handler folder"


def test_environment_names_are_settings(synth: Synth) -> None:
    fields = {f"DOCKET_{n.upper()}" for n in Settings.model_fields}
    for name, (_, fn) in synth.wiring("AWS::Lambda::Function").items():
        env = fn["Properties"]["Environment"]["Variables"]
        unknown = {k for k in env if k.startswith("DOCKET_")} - fields
        assert not unknown, f"{name}: {unknown}"
        assert env["DOCKET_SEARCH_BACKEND"] == "opensearch"
        assert env["DOCKET_AUTH_MODE"] == "jwt_authorizer"
        assert env["POWERTOOLS_SERVICE_NAME"] == c.SERVICE
        for key in ("DOCKET_DOCUMENTS_BUCKET", "DOCKET_AGENT_TABLE", "DOCKET_INGEST_DLQ_URL"):
            assert key in env, (name, key)
    api = synth.wiring("AWS::Lambda::Function")["docket-api"][1]["Properties"]
    env = api["Environment"]["Variables"]
    assert "stateMachine:docket-agent-loop-test" in str(env["DOCKET_AGENT_STATE_MACHINE_ARN"])
    # secrets are read at run time by name: no secret value, nor a reference that CloudFormation
    # would resolve into one, is in any function's environment
    assert "DOCKET_APPROVAL_LINK_SECRET_NAME" in env and "DOCKET_SLACK_SECRET_NAME" in env
    assert "DOCKET_APPROVAL_BASE_URL" in env
    for name, (_, resource) in synth.wiring("AWS::Lambda::Function").items():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        assert "resolve:secretsmanager" not in str(variables), name
        assert not {"DOCKET_APPROVAL_LINK_SECRET", "DOCKET_SLACK_SIGNING_SECRET"} & set(variables)
    extract = synth.wiring("AWS::Lambda::Function")["docket-extract"][1]["Properties"]
    assert "DOCKET_APPROVAL_LINK_SECRET_NAME" not in extract["Environment"]["Variables"]


def test_unsafe_or_broken_settings_are_refused_before_synthesis() -> None:
    from infra.settings import DeploymentSettings

    def context(**values: object) -> object:
        base = {"docket:jwtIssuer": "https://issuer.example.com/", **values}
        return lambda key: base.get(key)

    assert DeploymentSettings.from_context(context()).jwt_issuer == "https://issuer.example.com/"
    with pytest.raises(ValueError, match="jwtIssuer"):
        DeploymentSettings.from_context(context(**{"docket:jwtIssuer": ""}))
    with pytest.raises(ValueError, match="natGateways"):
        DeploymentSettings.from_context(context(**{"docket:natGateways": 0}))


def test_the_layer_leaves_out_the_local_cloud_cli_and_eval_harness(tmp_path: Path) -> None:
    """What the layer carries of the docket package imports on its own: every handler, and the
    re-embed gate's scoring (which must work without the compiled trec_eval)."""
    import shutil
    import subprocess
    import sys

    from infra import layer

    package = tmp_path / "docket"
    shutil.copytree(
        Path(layer.__file__).resolve().parents[1] / "layers/docket/python/docket",
        package,
        ignore=layer._layer_ignore,
    )
    assert not (package / "local").exists() and not (package / "cli.py").exists()
    assert not (package / "evaluation" / "answers.py").exists()
    assert (package / "evaluation" / "tune.py").exists()
    functions = sorted(
        str(p)
        for p in (Path(layer.__file__).resolve().parents[1] / "functions").glob("*/handler.py")
    )
    probe = f"""
import sys, importlib.util
sys.path.insert(0, {str(tmp_path)!r})
sys.modules["pytrec_eval"] = None  # not in the layer
import docket
assert docket.__file__.startswith({str(tmp_path)!r}), docket.__file__
for path in {functions!r}:
    spec = importlib.util.spec_from_file_location("handler_" + str(abs(hash(path))), path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
import docket.generations.rebuild, docket.evaluation.tune
from docket.evaluation.metrics import evaluate
assert evaluate({{"q": ["a", "b"]}}, {{"q": {{"b": 1}}}})["mrr@10"] == 0.5
try:
    import docket.local
except ImportError:
    print("ok")
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
