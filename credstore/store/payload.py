"""The payload codec: a ``Snapshot`` as the canonical JSON that store files encrypt (personal and service stores),
and the names stores are filed under."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from credstore.errors import CorruptStoreError, UsageError
from credstore.store.base import Entry, Snapshot

PAYLOAD_VERSION = 1
STORE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def check_store_name(name: str, what: str = "profile") -> str:
    """A profile or service account name: it becomes a file name, so no '/', no leading '.', at most 64."""
    if not STORE_NAME_RE.match(name):
        raise UsageError(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def snapshot_to_data(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "entries": {name: entry.to_dict() for name, entry in sorted(snapshot.entries.items())},
        "settings": dict(sorted(snapshot.settings.items())),
    }


def snapshot_from_data(data: Mapping[str, Any], generation: int) -> Snapshot:
    entries = {name: Entry.from_dict(name, fields) for name, fields in data["entries"].items()}
    settings = {str(k): str(v) for k, v in data["settings"].items()}
    return Snapshot(entries=entries, settings=settings, generation=generation)


def encode_payload(snapshot: Snapshot) -> bytes:
    data = {"version": PAYLOAD_VERSION, **snapshot_to_data(snapshot)}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_payload(plaintext: bytes, generation: int) -> Snapshot:
    try:
        data: Any = json.loads(plaintext)
        if data.get("version") != PAYLOAD_VERSION:
            raise CorruptStoreError("store payload has an unknown version")
        return snapshot_from_data(data, generation)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CorruptStoreError("store payload is malformed") from None
