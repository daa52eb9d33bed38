"""Persistence ports and their AWS adapters: documents and chunks tables, blobs, dead letters."""
