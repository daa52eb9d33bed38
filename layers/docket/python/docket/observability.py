"""Powertools logger, tracer and metrics, one instance each per process."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

# A batch with nothing to count is normal; Powertools warns on every such flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")

SERVICE = "docket"
NAMESPACE = "Docket"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
