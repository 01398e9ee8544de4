"""The ``hac`` command (a drop-in for hac-client-cli) and ``sessionkeeper hac``."""
