"""The local cloud: moto's emulated AWS with every Lambda dispatched in-process to the same
functions/*/handler.py, an embedded search index on disk, and a local HTTP gateway."""
