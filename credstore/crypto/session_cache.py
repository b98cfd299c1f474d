"""Unlock once per login: the data key (never the passphrase) cached in the kernel session keyring.

Key name ``credstore:<store id hex>``, a possessor-only ``user`` key with a timeout, in the session keyring of this
login (``crypto/kernel_keyring.py``), never in the user keyring ``@u`` that every login of the account shares.

``SessionDekCache`` is the ``DekCache`` that ``config.open_profile`` gives stores. Reading never fails a command:
where keyctl is blocked or no session keyring exists it just finds nothing (and a passphrase store then asks, or
reports that it is locked). Writing from ``get``/``put`` happens only where a session keyring of this login already
exists; ``unlock`` first makes one (``prepare``) when the shell has none.
"""

from __future__ import annotations

import contextlib

from credstore.errors import UsageError

DEFAULT_TTL = 8 * 3600
MAX_TTL = 30 * 86400


def key_name(store_id: bytes) -> str:
    return f"credstore:{store_id.hex()}"


def parse_ttl(text: str) -> int:
    """An unlock timeout: a duration (``durations.parse_duration``), more than 0 and at most 30 days."""
    from credstore.durations import parse_duration

    seconds = int(parse_duration(text, option="--ttl"))
    if seconds <= 0:
        raise UsageError(f"--ttl {text!r} must be longer than 0 seconds")
    if seconds > MAX_TTL:
        raise UsageError(f"--ttl {text!r} is longer than the maximum of 30d")
    return seconds


def state() -> tuple[str, str]:
    """(``session`` | ``user-session`` | ``unavailable``, one-line reason)."""
    from credstore.crypto import kernel_keyring

    ok, reason = kernel_keyring.available()
    if not ok:
        return "unavailable", reason
    return kernel_keyring.session_keyring_state(), reason


class CacheUnavailable(Exception):
    """The unlock cannot be cached here (message says why)."""


class SessionDekCache:
    """``DekCache`` on the kernel session keyring."""

    def __init__(self, ttl_seconds: int = DEFAULT_TTL) -> None:
        self.ttl_seconds = ttl_seconds

    def __repr__(self) -> str:
        return f"SessionDekCache(ttl_seconds={self.ttl_seconds})"

    def get(self, store_id: bytes) -> bytes | None:
        from credstore.crypto import kernel_keyring

        try:
            dek = kernel_keyring.load(key_name(store_id))
        except (kernel_keyring.KeyringUnavailable, OSError, ValueError):
            return None
        return dek if dek is not None and len(dek) == 32 else None

    def put(self, store_id: bytes, dek: bytes) -> None:
        """Cache quietly where this login already has a session keyring; otherwise do nothing."""
        with contextlib.suppress(CacheUnavailable):
            self.store(store_id, dek, self.ttl_seconds)

    @staticmethod
    def prepare() -> str | None:
        """Make sure this login (the parent shell) has a session keyring of its own.

        Returns a note for the person when one had to be created, None when there already was one. Raises
        ``CacheUnavailable`` when keyctl is blocked or the keyring cannot be handed to the shell.
        """
        from credstore.crypto import kernel_keyring

        kind, reason = state()
        if kind == "unavailable":
            raise CacheUnavailable(reason)
        if kind == "session":
            return None
        try:
            kernel_keyring.ensure_session_keyring()
        except kernel_keyring.KeyringUnavailable as exc:
            hint = ""
            if "parent" in str(exc):
                hint = (
                    " (a multi-threaded shell such as fish refuses a new session keyring; start your login shell "
                    "with one: `keyctl session - fish`, or ask for pam_keyinit in the PAM session stack)"
                )
            raise CacheUnavailable(f"{exc}{hint}") from None
        return (
            "this shell had no session keyring of its own (no PAM session keyring); credstore gave it a new one, "
            "seen by this shell and the programs it starts, not by other logins"
        )

    @staticmethod
    def store(store_id: bytes, dek: bytes, ttl_seconds: int) -> None:
        from credstore.crypto import kernel_keyring

        try:
            kernel_keyring.store(key_name(store_id), dek, ttl_seconds)
        except kernel_keyring.KeyringUnavailable as exc:
            raise CacheUnavailable(str(exc)) from None

    @staticmethod
    def remove(store_id: bytes) -> bool:
        from credstore.crypto import kernel_keyring

        try:
            return kernel_keyring.remove(key_name(store_id))
        except kernel_keyring.KeyringUnavailable:
            return False
