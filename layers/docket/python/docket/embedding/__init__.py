"""Embedding providers behind one port (see port.py)."""
