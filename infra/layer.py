"""The shared Lambda layer: ``[project].dependencies`` of pyproject.toml (runtime requirements only,
no extras) installed for Lambda's platform, plus the ``docket`` package.

``cdk deploy`` builds it here with pip (manylinux wheels, no Docker). Tests and ``make infra``
never build it: they pass a prebuilt or stub directory through the ``docket:layerAsset`` context
or the DOCKET_LAYER_ASSET environment variable, so synth downloads nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from infra import constants as c

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def runtime_requirements(pyproject: Path = c.PYPROJECT) -> list[str]:
    """The requirement strings the layer installs: the project's dependencies, not its extras."""
    data = tomllib.loads(pyproject.read_text())
    return [str(r) for r in data["project"]["dependencies"]]


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def forbidden_requirements(requirements: list[str]) -> list[str]:
    """Those naming a package that must stay out of Lambda (torch, onnxruntime, moto...)."""
    return [r for r in requirements if requirement_name(r) in c.FORBIDDEN_PACKAGES]


def pip_command(requirements: list[str], target: Path) -> list[str]:
    """pip for Lambda's platform: x86_64 manylinux wheels for CPython 3.11, binary only."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--platform",
        "manylinux2014_x86_64",
        "--implementation",
        "cp",
        "--python-version",
        c.PYTHON_VERSION,
        "--only-binary=:all:",
        "--upgrade",
        "--target",
        str(target),
        *requirements,
    ]


def build_layer(dest: Path = c.DEFAULT_LAYER_BUILD_DIR) -> Path:
    """Build (or refresh) the layer directory and return it.

    pip runs only when the requirements changed since the last build (a stamp holds their
    hash); the docket package is copied every time, since it changes with every edit.
    """
    requirements = runtime_requirements()
    bad = forbidden_requirements(requirements)
    if bad:
        raise ValueError(f"runtime requirements must not include {bad}")
    site = dest / "python"
    stamp = dest / ".requirements.sha256"
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(dest, ignore_errors=True)
        site.mkdir(parents=True)
        subprocess.run(pip_command(requirements, site), check=True)
        stamp.write_text(digest)
    package = site / "docket"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(
        c.REPO_ROOT / "layers" / "docket" / "python" / "docket",
        package,
        ignore=_layer_ignore,
    )
    _copy_tokenizer(site)
    return dest


# What no function runs: the local cloud, the CLI and the evaluation harness (the re-embed gate
# keeps the parts it scores golden sets with: beir, metrics, retrieval, tune).
LEFT_OUT = {
    "docket": {"local", "cli.py"},
    "evaluation": {"cli.py", "answers.py", "filings.py", "derived.py", "report.py", "indexing.py"},
}


def _layer_ignore(directory: str, names: list[str]) -> set[str]:
    left_out = LEFT_OUT.get(Path(directory).name, set())
    return {n for n in names if n in left_out or n == "__pycache__" or n.endswith(".pyc")}


TOKENIZER_DIR = "docket_tokenizer"  # /opt/python/docket_tokenizer/tokenizer.json on Lambda


def _copy_tokenizer(site: Path) -> None:
    """The chunker counts tokens with all-MiniLM-L6-v2's WordPiece tokenizer. Locally it comes
    from the model package, which the layer must not carry (it declares torch), so its one
    tokenizer.json (0.7 MB) is copied in; without it the chunker falls back to its heuristic
    counter, with a warning."""
    from docket.chunking.tokens import find_tokenizer_file

    found = find_tokenizer_file()
    if found is None:
        print(
            "warning: no tokenizer.json found; the chunk function will count tokens heuristically"
        )
        return
    (site / TOKENIZER_DIR).mkdir(exist_ok=True)
    shutil.copyfile(found, site / TOKENIZER_DIR / "tokenizer.json")


def layer_asset_path(configured: str | None) -> Path:
    """The directory the layer asset is made from: the configured one, or a fresh build."""
    if configured:
        path = Path(configured)
        if not (path / "python").is_dir():
            raise FileNotFoundError(f"layer asset {path} has no python/ folder")
        return path
    return build_layer()
