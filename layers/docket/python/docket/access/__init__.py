"""Access for services: API keys (docket.access.keys) and per-tenant, per-key rate limits and
quotas (docket.access.limits), each a port with a DynamoDB adapter (docket.access.dynamodb) and
an in-process one (docket.access.memory)."""
