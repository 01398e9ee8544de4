"""A faithful fake ATProto PDS (real HTTP on 127.0.0.1) for testing session clients.

``FakePds`` runs in-process; ``python -m sessionkeeper.testing.fake_pds`` runs
one as a separate process and prints ``FAKE_PDS_URL=...``.
"""

from sessionkeeper.testing.fake_pds._control import FAULT_MODES, FaultMode
from sessionkeeper.testing.fake_pds._errors import XrpcError
from sessionkeeper.testing.fake_pds._fake import FakePds

__all__ = ["FAULT_MODES", "FakePds", "FaultMode", "XrpcError"]
