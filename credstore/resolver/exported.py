"""Telling values credstore exported from values a person set by hand.

``credstore env`` also exports ``CREDSTORE_EXPORTED``: for each variable it set, a keyed fingerprint
(HMAC-SHA256 under a random per-profile key kept inside the encrypted store) of name and value. On the next run a
variable whose current value still matches its fingerprint was credstore's own, so the store may refresh it (a
rotated key reaches open shells); a value that no longer matches was changed by hand and wins. The fingerprint
reveals nothing about the value to anyone without the store.
"""

from __future__ import annotations

from collections.abc import Mapping

from credstore.crypto.primitives import KeyedHmac, equal

MARKER = "CREDSTORE_EXPORTED"
_VERSION = "v1"


def fingerprint(key: bytes, name: str, value: str) -> str:
    return Fingerprinter(key)(name, value)


class Fingerprinter:
    """Fingerprints of many variables under one key (``env`` makes one per exported variable)."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        self._mac = KeyedHmac(key)

    def __call__(self, name: str, value: str) -> str:
        return self._mac(name.encode() + b"\0" + value.encode())[:12].hex()


def parse_marker(text: str | None) -> dict[str, str]:
    """``"v1 NAME:fp NAME:fp"`` -> {NAME: fp}; anything malformed counts as no marker (then nothing is refreshed)."""
    if not text:
        return {}
    parts = text.split(" ")
    if parts[0] != _VERSION:
        return {}
    out: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, fp = part.partition(":")
        if sep and name and fp:
            out[name] = fp
    return out


def format_marker(fingerprints: Mapping[str, str]) -> str:
    return " ".join([_VERSION, *(f"{name}:{fp}" for name, fp in sorted(fingerprints.items()))])


def exported_unchanged(key: bytes, environ: Mapping[str, str]) -> dict[str, str]:
    """Names (with fingerprints) that credstore exported and whose current value is still the exported one."""
    marker = parse_marker(environ.get(MARKER))
    fingerprint_of = Fingerprinter(key)
    return {
        name: fp
        for name, fp in marker.items()
        if name in environ and equal(fingerprint_of(name, environ[name]).encode(), fp.encode())
    }
