"""A faithful fake SAP Commerce HAC (real HTTP on 127.0.0.1) for testing HAC clients.

``FakeHac`` runs in-process; ``python -m sessionkeeper.testing.fake_hac`` runs
one as a separate process and prints ``FAKE_HAC_URL=...`` (see `spawn`).
"""

from sessionkeeper.testing.fake_hac._cli import main, spawn
from sessionkeeper.testing.fake_hac._fake import FakeHac, GroovyRun
from sessionkeeper.testing.fake_hac._http import HacRequest, HacResponse

__all__ = ["FakeHac", "GroovyRun", "HacRequest", "HacResponse", "main", "spawn"]
