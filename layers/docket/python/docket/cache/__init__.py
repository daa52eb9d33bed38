"""The answer cache: repeated questions answered without retrieval or generation, never across
tenants or groups, never after a chunk it depends on changed (docket.cache.service)."""
