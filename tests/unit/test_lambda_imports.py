"""Handler modules stay cheap to import and never pull in local-only dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
LOCAL_ONLY = ["onnxruntime", "tantivy", "moto", "torch", "onnx", "safetensors", "docket.local"]
PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {roots} or m.startswith("docket.local"))))
"""


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FUNCTIONS.iterdir() if (p / "handler.py").exists())
)
def test_handler_import_pulls_no_local_only_dependency(name: str) -> None:
    roots = {m for m in LOCAL_ONLY if "." not in m}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE.replace("{roots}", repr(roots)),
            str(FUNCTIONS / name / "handler.py"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
