"""credstore as a backend of the ``keyring`` library (pip, twine, poetry, uv, the ``keyring`` command ...).

Registered in the ``keyring.backends`` entry-point group (pyproject.toml). keyring imports every plug-in on every
use, so this module imports nothing of credstore at module level: the store is opened inside each call. Importing
it cannot fail, and constructing the backend never raises.

Priority 3.5, a constant (nothing is decrypted to rank backends): on a box without a working Secret Service it is
the backend keyring chooses; on a desktop it ranks after SecretService (5), libsecret (4.8) and KWallet (>= 3.9), so
keyring's chainer writes there first and reads fall through to credstore; it ranks above keyrings.alt and
keyrings.cryptfile (<= 3). To choose it where another backend would win (a gnome-keyring that is installed but
locked): ``PYTHON_KEYRING_BACKEND=credstore.integrations.keyring_backend.CredstoreKeyring``, or
``credstore keyring enable`` (writes keyring's ``keyringrc.cfg``).

Items are the profile's keyring items (``credstore/app/keyring_items.py``): the profile is ``$CREDSTORE_PROFILE``
(else ``default``), or ``KEYRING_PROPERTY_PROFILE``. It never prompts and never writes to stdout (pip parses the
keyring command's stdout): a locked store makes ``get_password`` / ``get_credential`` answer None with one line on
stderr, and ``set_password`` / ``delete_password`` raise ``KeyringLocked``. It never calls ``keyring.*`` itself, and
credstore's own ``keyring`` protection level never counts it as an OS keyring (``crypto/oskeyring.py``).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.credentials import SimpleCredential
from keyring.errors import KeyringLocked, PasswordDeleteError, PasswordSetError

PRIORITY = 3.5
FULL_NAME = f"{__name__}.CredstoreKeyring"

_shown: set[str] = set()
_active = threading.local()


def _warn(message: str) -> None:
    """One line on stderr, once per message and process (pip asks for several URL forms in a row)."""
    if message in _shown:
        return
    _shown.add(message)
    try:
        sys.stderr.write(f"credstore: keyring: {message}\n")
        sys.stderr.flush()
    except Exception:  # noqa: S110 - a closed stderr must not break the tool asking
        pass


class _Reentered(Exception):
    """credstore's backend was asked again while answering (e.g. through a chainer): refuse, never recurse."""


class _Guard:
    def __enter__(self) -> None:
        if getattr(_active, "busy", False):
            raise _Reentered
        _active.busy = True

    def __exit__(self, *exc: object) -> None:
        _active.busy = False


class CredstoreKeyring(KeyringBackend):
    """Passwords in the person's credstore profile (encrypted, unlocked once per login)."""

    #: Shown by keyring and checked by poetry, which refuses backends named chainer, fail, null or plaintext.
    name = "credstore"
    #: The credstore profile (None: $CREDSTORE_PROFILE, else "default"); KEYRING_PROPERTY_PROFILE sets it.
    profile: str | None = None

    @properties.classproperty
    def priority(cls) -> float:
        return PRIORITY

    def __init__(self) -> None:
        # KEYRING_PROPERTY_* from the environment; keyring constructs every backend on every use: never fail there.
        with contextlib.suppress(Exception):
            super().__init__()

    def _context(self) -> Any:
        from credstore.app.context import Context

        return Context(self.profile, ask_passphrase=None, via="keyring", warn=_warn)

    def _lookup(self, service: str, username: str | None, *, any_username: bool) -> Any:
        """The item, or None with one line on stderr when the store cannot answer (locked, unreadable, ...)."""
        from credstore.app import keyring_items
        from credstore.errors import CredstoreError, LockedError

        try:
            with _Guard():
                ctx = self._context()
                if any_username:
                    return keyring_items.get_any(ctx, service)
                return keyring_items.get(ctx, service, username)
        except _Reentered:
            return None
        except LockedError as exc:
            _warn(f"{exc}; answering no password")
        except CredstoreError as exc:
            _warn(f"{exc}; answering no password")
        except Exception as exc:  # a lookup must never break the tool that asked
            _warn(f"lookup failed ({type(exc).__name__}); answering no password")
        return None

    def get_password(self, service: str, username: str) -> str | None:
        item = self._lookup(service, username, any_username=False)
        return None if item is None else item.password

    def get_credential(self, service: str, username: str | None) -> SimpleCredential | None:
        """With a username, only that exact pair; without one, one item of the service (the one set most recently)."""
        item = self._lookup(service, username, any_username=username is None)
        if item is None:
            return None
        return SimpleCredential(item.username if item.username is not None else "", item.password)

    def set_password(self, service: str, username: str, password: str) -> None:
        from credstore.app import keyring_items
        from credstore.errors import CredstoreError, LockedError

        try:
            with _Guard():
                keyring_items.put(self._context(), service, username, password)
        except _Reentered:
            raise PasswordSetError("credstore's keyring backend was called from inside itself") from None
        except LockedError as exc:
            raise KeyringLocked(f"credstore: {exc}") from None
        except CredstoreError as exc:
            raise PasswordSetError(f"credstore: {exc}") from None

    def delete_password(self, service: str, username: str) -> None:
        from credstore.app import keyring_items
        from credstore.errors import CredstoreError, LockedError, NotFoundError

        try:
            with _Guard():
                keyring_items.remove(self._context(), service, username)
        except _Reentered:
            raise PasswordDeleteError("credstore's keyring backend was called from inside itself") from None
        except NotFoundError as exc:
            raise PasswordDeleteError(f"credstore: {exc}") from None
        except LockedError as exc:
            raise KeyringLocked(f"credstore: {exc}") from None
        except CredstoreError as exc:
            raise PasswordDeleteError(f"credstore: {exc}") from None
