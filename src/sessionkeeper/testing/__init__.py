from sessionkeeper.testing.fake_hac_server import FakeHac
from sessionkeeper.testing.fake_pds import FakePds

__all__ = ["FakeHac", "FakePds"]
