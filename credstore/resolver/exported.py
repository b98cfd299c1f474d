"""Telling values credstore exported from values a person set by hand.

``credstore env`` also exports ``CREDSTORE_EXPORTED``: for each variable it set, a keyed fingerprint
(HMAC-SHA256 under a random per-profile key kept inside the encrypted store) of name and value. On the next run a
variable whose current value still matches its fingerprint was credstore's own, so the store may refresh it (a
rotated key reaches open shells); a value that no longer matches was changed by hand and wins. The fingerprint
reveals nothing about the value to anyone without the store.
"""

from __future__ import annotations

from collections.abc import Mapping

from credstore import marker
from credstore.crypto.primitives import KeyedHmac, equal

MARKER = marker.MARKER


def fingerprint(key: bytes, name: str, value: str) -> str:
    return Fingerprinter(key)(name, value)


class Fingerprinter:
    """Fingerprints of many variables under one key (``env`` makes one per exported variable)."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        self._mac = KeyedHmac(key)

    def __call__(self, name: str, value: str) -> str:
        return self._mac(name.encode() + b"\0" + value.encode())[:12].hex()


def format_marker(fingerprints: Mapping[str, str]) -> str:
    names = sorted(fingerprints)
    return marker.text_of(names, [fingerprints[name] for name in names])


def exported_unchanged(key: bytes, environ: Mapping[str, str]) -> dict[str, str]:
    """Names (with fingerprints) that credstore exported and whose current value is still the exported one."""
    listed = marker.parse(marker.read(environ))
    fingerprint_of = Fingerprinter(key)
    return {
        name: fp
        for name, fp in listed.items()
        if name in environ and equal(fingerprint_of(name, environ[name]).encode(), fp.encode())
    }
