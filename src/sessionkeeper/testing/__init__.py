from sessionkeeper.testing.fake_pds import FakePds

__all__ = ["FakePds"]
