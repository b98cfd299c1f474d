"""What a reader remembers about each service account it used: its admin's uid and its store id (trust on first use).

A member trusts the admin who owned the shared directory the first time, and that one store. Later, another owner
(someone who took over, or swapped, the shared directory) or another store id (the service was recreated, or a
different store was put in its place) is refused until the reader accepts the change on purpose
(``credstore service accept NAME``). Kept in the reader's own state directory, beside the generations::

    <state_dir>/service-pins/<NAME>.<16 hex digits of SHA-256 of the shared directory's path>

holding ``admin=<uid>`` and ``store=<store id in hex>``. Only what was read from an authenticated store is
remembered. As with generations, a pin that cannot be read counts as none, and one that cannot be written never
fails a read.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from credstore import fsutil


class Pin(NamedTuple):
    admin_uid: int
    store_id: bytes


class ServicePin:
    """The remembered admin and store of one service account (``name`` in shared directory ``shared``)."""

    __slots__ = ("path",)

    def __init__(self, state_dir: Path | None, shared: Path, name: str) -> None:
        digest = hashlib.sha256(str(shared).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        self.path = None if state_dir is None else state_dir / "service-pins" / f"{name}.{digest}"

    def load(self) -> Pin | None:
        if self.path is None:
            return None
        try:
            fields = dict(line.split("=", 1) for line in self.path.read_text().splitlines() if "=" in line)
            return Pin(int(fields["admin"]), bytes.fromhex(fields["store"]))
        except (OSError, ValueError, KeyError):
            return None

    def save(self, pin: Pin) -> None:
        """Keep ``pin`` (for ``service accept``: a failure to write is an error)."""
        if self.path is None:
            return
        fsutil.ensure_private_dir(self.path.parent)
        fsutil.atomic_replace(self.path, f"admin={pin.admin_uid}\nstore={pin.store_id.hex()}\n".encode())

    def remember(self, pin: Pin) -> None:
        """Keep ``pin`` after a read. Advisory: a state directory that cannot be written never fails a read."""
        with suppress(Exception):
            self.save(pin)

    def forget(self) -> None:
        if self.path is not None:
            with suppress(OSError):
                self.path.unlink()
