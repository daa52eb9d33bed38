"""Deployable units: the stateful data stack and the stateless service stack."""
