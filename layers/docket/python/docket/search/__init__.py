"""Search: the index port, the embedded and OpenSearch adapters, fusion and retrieval."""
