"""The ``keyring`` protection level: a random 32-byte KEK kept in the OS keyring.

Through the ``keyring`` package: the Secret Service on Linux (gnome-keyring, KeePassXC ...), the Keychain on macOS.
The KEK is stored base64-encoded under service ``credstore`` and an account name made of the store's path and a
random tag (``/home/a/.local/share/credstore/profiles/default.store#3f9c...``); the account name is kept in the store
header, so the item is found again even if the path changes, and re-creating a store never reuses an old item.

Only real OS keyrings count: no backend (``keyring.backends.fail``), an empty chainer, the null backend and the
``keyrings.alt`` file backends (plaintext or unauthenticated encryption beside the store: a silent downgrade) are
refused with a message that names the other levels. credstore's own keyring backend
(``credstore.integrations.keyring_backend``) never counts either: a store's key kept inside a credstore store is a
circle (on a box without a Secret Service it would be the only "keyring"), and asking it would recurse. When keyring
was pointed at credstore's backend (``PYTHON_KEYRING_BACKEND``, ``keyringrc.cfg``), the OS keyrings keyring would
otherwise have found are used. Every call goes to the real backends only, never through keyring's chainer (which
would fall through to credstore's backend). ``keyring`` is imported lazily: it is slow to import.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from typing import Any

from credstore.crypto.protection import KEK_LEN, KekContext, Protection
from credstore.errors import AuthError, CorruptStoreError, UnavailableError

SERVICE = "credstore"
MAX_ACCOUNT_LEN = 4096

_NOT_A_KEYRING = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")
#: credstore's own backend (credstore/integrations/keyring_backend.py): never where credstore keeps its own key.
_CREDSTORE_BACKEND = "credstore."


def _backend() -> Any:
    import keyring

    return keyring.get_keyring()


def _describe(backend: Any) -> str:
    name = getattr(backend, "name", None) or type(backend).__name__
    return f"{name} ({type(backend).__module__})"


def _is_credstore(backend: Any) -> bool:
    return type(backend).__module__.startswith(_CREDSTORE_BACKEND)


def _is_real(backend: Any) -> bool:
    return not type(backend).__module__.startswith(_NOT_A_KEYRING) and not _is_credstore(backend)


def _real_backends(backend: Any) -> list[Any]:
    """The OS keyrings behind ``backend`` (a chainer's members), highest priority first; never credstore's own."""
    from keyring.backends.chainer import ChainerBackend

    members = list(backend.backends) if isinstance(backend, ChainerBackend) else [backend]
    real = [b for b in members if _is_real(b)]
    if not real and any(_is_credstore(b) for b in members):
        # keyring was pointed at credstore's backend: the OS keyrings it would otherwise have chosen still are real.
        from keyring.backend import by_priority, get_all_keyring

        viable = [b for b in get_all_keyring() if not isinstance(b, ChainerBackend) and _is_real(b)]
        real = sorted((b for b in viable if b.priority > 0), key=by_priority, reverse=True)
    return real


class _OSKeyring:
    """The real OS keyrings, asked directly (keyring's chainer would fall through to credstore's own backend):
    lookups try each in priority order, writes go to the first."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members

    def get_password(self, service: str, account: str) -> str | None:
        for member in self.members:
            found = member.get_password(service, account)
            if found is not None:
                return found
        return None

    def set_password(self, service: str, account: str, value: str) -> None:
        self.members[0].set_password(service, account, value)

    def delete_password(self, service: str, account: str) -> None:
        for member in self.members:
            with contextlib.suppress(Exception):
                member.delete_password(service, account)


def _os_keyring() -> tuple[_OSKeyring | None, str]:
    """(the real OS keyrings or None, one line saying what was found). Never raises."""
    try:
        backend = _backend()
        real = _real_backends(backend)
    except Exception as exc:  # a broken keyring configuration
        return None, f"the keyring package failed to start ({type(exc).__name__})"
    if not real:
        return None, f"no OS keyring backend is available (the keyring package found only {_describe(backend)})"
    return _OSKeyring(real), _describe(real[0])


def status() -> tuple[bool, str]:
    """(usable, one line): is there a working OS keyring? Never raises; probes the backend with a harmless lookup."""
    ring, described = _os_keyring()
    if ring is None:
        return False, described
    try:
        ring.get_password(SERVICE, "credstore-probe")
    except Exception as exc:
        return False, f"the OS keyring {described} does not answer ({type(exc).__name__})"
    return True, f"OS keyring: {described}"


def _require() -> _OSKeyring:
    ok, reason = status()
    ring, _ = _os_keyring()
    if not ok or ring is None:
        raise UnavailableError(
            f"cannot use the OS keyring: {reason}; choose another level: "
            "--protection passphrase, or --protection keyfile (weakest)"
        )
    return ring


def _account(params: bytes) -> str:
    try:
        account = params.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptStoreError("store header is malformed (keyring parameters)") from None
    if not account or len(params) > MAX_ACCOUNT_LEN or "\0" in account or account.encode("utf-8") != params:
        raise CorruptStoreError("store header is malformed (keyring parameters)")
    return account


class OSKeyringProtection(Protection):
    kind = "keyring"
    description = "random key in your OS keyring (Secret Service / Keychain), unlocked with your desktop login"
    strength = 2

    def create(self, ctx: KekContext) -> tuple[bytes, bytes]:
        backend = _require()
        account = f"{ctx.store_path}#{os.urandom(8).hex()}"
        kek = os.urandom(KEK_LEN)
        try:
            backend.set_password(SERVICE, account, base64.b64encode(kek).decode("ascii"))
            stored = backend.get_password(SERVICE, account)
        except Exception as exc:
            raise UnavailableError(f"the OS keyring refused to store the key ({type(exc).__name__})") from None
        if stored is None or base64.b64decode(stored) != kek:
            raise UnavailableError("the OS keyring did not keep the key it was given; not using it")
        return kek, account.encode("utf-8")

    def available(self) -> tuple[bool, str]:
        return status()

    def derive(self, params: bytes, ctx: KekContext) -> bytes:
        account = _account(params)
        backend = _require()
        try:
            encoded = backend.get_password(SERVICE, account)
        except Exception as exc:
            raise UnavailableError(f"the OS keyring did not answer ({type(exc).__name__})") from None
        if encoded is None:
            raise AuthError(
                f"the OS keyring has no key for this store (service '{SERVICE}', account '{account}'); "
                "it was deleted or this is another keyring. Without it the store cannot be opened."
            )
        try:
            kek = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            kek = b""
        if len(kek) != KEK_LEN:
            raise AuthError(f"the OS keyring item for this store (account '{account}') is malformed")
        return kek

    def discard(self, params: bytes, ctx: KekContext) -> None:
        try:
            account = _account(params)
            ring, _ = _os_keyring()
            if ring is not None:
                ring.delete_password(SERVICE, account)
        except Exception:  # noqa: S110 - best effort: the store no longer needs the item
            pass
