"""Names, sizes and limits of the deployment, in one place.

Resource names, memory, timeouts, batch sizes and the state machine come from the local cloud's
declaration (``docket.wiring.WIRING``), so the two environments cannot drift; what only AWS
has (log retention, the search domain's size, alarm thresholds) is declared here.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_LAYER_SOURCE = REPO_ROOT / "layers" / "docket" / "python"
if str(_LAYER_SOURCE) not in sys.path:  # `python infra/app.py` without the package installed
    sys.path.insert(0, str(_LAYER_SOURCE))

from docket.wiring import (  # noqa: E402
    AGENT_BUCKET,
    AGENT_STATE_MACHINE,
    AGENT_TABLE,
    ANSWER_CACHE_TABLE,
    CHUNKS_TABLE,
    DOCUMENTS_BUCKET,
    DOCUMENTS_TABLE,
    GENERATIONS_TABLE,
    IDEMPOTENCY_TABLE,
    INGEST_DLQ,
    INGEST_QUEUE,
    KEYS_TABLE,
    LIMITS_TABLE,
    PIPELINE_DLQ,
    REEMBED_STATE_MACHINE,
    SYNC_BACKFILL_STATE_MACHINE,
    SYNC_TABLE,
    TEXT_BUCKET,
    TICKETS_SOURCE,
    TICKETS_TABLE,
    WIRING,
    Wiring,
)

__all__ = [
    "AGENT_BUCKET",
    "AGENT_STATE_MACHINE",
    "AGENT_TABLE",
    "ANSWER_CACHE_TABLE",
    "CHUNKS_TABLE",
    "DOCUMENTS_BUCKET",
    "DOCUMENTS_TABLE",
    "GENERATIONS_TABLE",
    "IDEMPOTENCY_TABLE",
    "INGEST_DLQ",
    "INGEST_QUEUE",
    "KEYS_TABLE",
    "LIMITS_TABLE",
    "PIPELINE_DLQ",
    "REEMBED_STATE_MACHINE",
    "SYNC_BACKFILL_STATE_MACHINE",
    "SYNC_TABLE",
    "TEXT_BUCKET",
    "TICKETS_SOURCE",
    "TICKETS_TABLE",
    "WIRING",
    "Wiring",
]

FUNCTIONS_DIR = REPO_ROOT / "functions"
STATE_MACHINES_DIR = REPO_ROOT / "state_machines"
PYPROJECT = REPO_ROOT / "pyproject.toml"
DEFAULT_LAYER_BUILD_DIR = REPO_ROOT / "build" / "layer"

SERVICE = "docket"
METRICS_NAMESPACE = "Docket"
PYTHON_VERSION = "3.11"

# CloudFormation Metadata key that names the WIRING entry a resource implements (the drift test
# reads it back from the synthesized templates).
WIRING_METADATA = "docket:wiring"

# Packages that must never reach a Lambda asset: the local cloud's and the offline model's.
FORBIDDEN_PACKAGES = frozenset({"torch", "onnxruntime", "onnx", "tantivy", "moto", "safetensors"})

# Functions that talk to the search domain run in the VPC; the others stay outside it (they reach
# DynamoDB, S3, SES and the model providers without a NAT hop).
VPC_FUNCTIONS = frozenset(
    {"docket-embed", "docket-api", "docket-mcp", "docket-agent-tool", "docket-reembed"}
)

LOG_RETENTION_DAYS = 30
STATE_MACHINE_LOG_RETENTION_DAYS = 90

# The search domain (small deployment defaults; cdk.json context overrides them)
OPENSEARCH_INSTANCE_TYPE = "t3.small.search"
OPENSEARCH_DATA_NODES = 2
OPENSEARCH_VOLUME_GB = 10

# routes the gateway lets through without a bearer token (they authenticate themselves or are
# public); the same list as the local gateway (docket.local.gateway)
PUBLIC_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("GET", "/approvals/{approval_id}"),
    ("POST", "/approvals/{approval_id}"),
    ("POST", "/slack/interactions"),
)


def batching_window_seconds(window_s: float) -> int:
    """The local cloud batches in fractions of a second; Lambda's event source mappings take
    whole seconds. A window rounds up, so a non-zero local window stays a window on AWS."""
    return math.ceil(window_s) if window_s > 0 else 0


def physical_name(name: str, stage: str) -> str:
    """Per-stage names for the resources that have one (tables, queues, functions, the state
    machine): two stages share an account without colliding."""
    return f"{name}-{stage}"
