"""Runnable examples of sessionkeeper (``python -m examples.<name>`` from the repository root)."""
