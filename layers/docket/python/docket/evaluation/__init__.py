"""The evaluation harness (``docket eval``): retrieval quality on BEIR-layout datasets and
answer-level checks (citation coverage, abstention, robustness to planted false passages).

Local-only: it imports the embedded index, the local embedding model and pytrec_eval, none of
which ship in a Lambda asset.
"""
