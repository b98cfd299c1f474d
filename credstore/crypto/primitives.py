"""HMAC-SHA256 and a timing-safe comparison, from ``cryptography``.

The stdlib ``hmac`` / ``hashlib`` would load the system OpenSSL next to the one ``cryptography`` links statically:
about 4 MiB more resident memory in every shell start (``credstore env`` is held to 25 MiB), for the same functions.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

_SHA256 = hashes.SHA256()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    mac = _hmac.HMAC(key, _SHA256)
    mac.update(message)
    return mac.finalize()


class KeyedHmac:
    """HMAC-SHA256 under one key for many messages: the keyed state is set up once and copied per message."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = _hmac.HMAC(key, _SHA256)

    def __call__(self, message: bytes) -> bytes:
        mac = self._base.copy()
        mac.update(message)
        return mac.finalize()


def equal(a: bytes, b: bytes) -> bool:
    """Compare without leaking where they differ: compare MACs of both under a fresh random key (double HMAC).

    (``cryptography``'s ``constant_time`` would import the stdlib ``hmac`` and with it the system OpenSSL.)
    """
    key = os.urandom(32)
    return hmac_sha256(key, a) == hmac_sha256(key, b)
