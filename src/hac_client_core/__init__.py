"""Drop-in replacement for hac-client-core: the same public names, on sessionkeeper."""

from sessionkeeper.hac import *  # noqa: F403 - the package's public names, listed in its __all__
from sessionkeeper.hac import __all__ as __all__

__version__ = "0.1.2"
