"""``hac_client_core.client`` of the original library: the client, its errors, and the
names the original module imported (scripts sometimes import them from here)."""

from hac_client_core import models as _models
from hac_client_core.models import *  # noqa: F403 - the result models the original imported
from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.session import SessionManager

__all__ = ["AuthHandler", "HacAuthenticationError", "HacClient", "HacClientError", "SessionManager"]
__all__ += _models.__all__
