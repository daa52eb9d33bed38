"""One construct per capability (data, network, search, functions, ingestion, API, agent,
search access, observability)."""
