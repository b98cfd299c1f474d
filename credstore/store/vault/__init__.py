"""The OpenBao / HashiCorp Vault KV v2 client.

- ``session.py``: connection settings, the requests session (no proxy, CA bundle or netrc from the environment),
  the wall-clock deadline of an operation, the mapping of hvac / requests failures to credstore errors;
- ``backend.py``: :class:`VaultBackend`, a credstore ``Backend`` on a KV v2 mount (layout, read, modify, lease);
- ``auth.py``: :func:`login_approle`, :func:`token_info`, :func:`renew_token`.

Nothing here imports ``hvac`` or ``requests`` until the first request.
"""

from __future__ import annotations

from credstore.store.vault.auth import login_approle, renew_token, token_info
from credstore.store.vault.backend import VaultBackend, parse_rfc3339
from credstore.store.vault.session import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    Connection,
    check_path,
    check_proxy,
    deadline_scope,
    display_url,
    parse_seconds,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "Connection",
    "VaultBackend",
    "check_path",
    "check_proxy",
    "deadline_scope",
    "display_url",
    "login_approle",
    "parse_rfc3339",
    "parse_seconds",
    "renew_token",
    "token_info",
]
