"""``hac_client_core.models`` of the original library: result models."""

from sessionkeeper.hac.models import *  # noqa: F403 - the models, listed in its __all__
from sessionkeeper.hac.models import __all__ as __all__
