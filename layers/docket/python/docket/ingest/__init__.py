"""The ingestion pipeline's logic: extract (S3 → Documents), chunk (Documents → Chunks), embed
(Chunks → search index). Handlers parse events and call these; AWS sits behind ports."""
