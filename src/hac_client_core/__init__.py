"""Drop-in replacement for hac-client-core: the same public names, on sessionkeeper."""

from sessionkeeper.hac import *  # noqa: F403
from sessionkeeper.hac import __all__ as _hac_all

__all__ = list(_hac_all)
