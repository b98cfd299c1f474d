"""Rollback detection: the highest generation of a store seen by this user, remembered outside the store.

Every write bumps a store's (authenticated) generation. A reader remembers the highest one it has seen in its own
state directory (``<state_dir>/generations/<store id in hex>``); reading a lower one later means an older copy of the
store was put back. Only an authenticated generation may be checked or remembered: a forged one would poison it.

On the ``credstore env`` hot path: one small file read, and a write only when the generation moved on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from credstore import fsutil


class GenerationWatch:
    """The remembered generation of one store; with no state directory, nothing is remembered or checked.

    A marker that exists but cannot be read is an error (the ``OSError`` propagates), unless
    ``unreadable_is_unseen``: then it counts as no marker (what service stores ask for).
    """

    __slots__ = ("path", "unreadable_is_unseen")

    def __init__(self, state_dir: Path | None, store_id: bytes, *, unreadable_is_unseen: bool = False) -> None:
        self.path = None if state_dir is None else state_dir / "generations" / store_id.hex()
        self.unreadable_is_unseen = unreadable_is_unseen

    def seen(self) -> int:
        """The highest generation remembered, -1 if none (no marker yet, or not a number)."""
        if self.path is None:
            return -1
        try:
            return int(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return -1
        except OSError:
            if self.unreadable_is_unseen:
                return -1
            raise

    def check(self, generation: int, rollback: Callable[[int, int], Exception]) -> None:
        """Raise ``rollback(generation, seen)`` if ``generation`` is older than one seen; remember a newer one."""
        if self.path is None:
            return
        seen = self.seen()
        if generation < seen:
            raise rollback(generation, seen)
        if generation > seen:
            self.remember(generation)

    def remember(self, generation: int) -> None:
        """Remember ``generation`` as the newest. Advisory: a marker that cannot be written never fails a read."""
        with suppress(Exception):  # the rollback marker is advisory
            self.accept(generation)

    def accept(self, generation: int) -> None:
        """Remember ``generation`` as the newest even if a newer one was seen (after a deliberate restore)."""
        if self.path is None:
            return
        fsutil.ensure_private_dir(self.path.parent)
        fsutil.atomic_replace(self.path, str(generation).encode())


class ProfilePin:
    """What this user last saw of a profile's store: its id and the strength of its weakest key slot (issue 13,
    finding 6). Kept in ``<state_dir>/profiles/<profile>`` as ``<store id hex> <strength> <kinds>``.

    A store with another id, or whose weakest slot is weaker than remembered, was replaced or downgraded outside
    credstore (copying a key-file store and its key over a passphrase profile): the reader refuses it before any key
    is derived. Changes credstore makes itself (init, protect, rekey) move the pin; ``accept-store`` accepts one made
    on purpose by hand. No pin yet (a store from before pins): the first authentic read records one.
    """

    __slots__ = ("path",)

    def __init__(self, state_dir: Path | None, profile: str) -> None:
        self.path = None if state_dir is None else state_dir / "profiles" / profile

    def seen(self) -> tuple[str, int, str] | None:
        """(store id hex, strength, kinds) or None when nothing is remembered (or the record is unreadable)."""
        if self.path is None:
            return None
        try:
            store_id, strength, kinds = self.path.read_text().split()
            return store_id, int(strength), kinds
        except (OSError, ValueError):
            return None

    def remember(self, store_id: bytes, strength: int, kinds: str) -> None:
        if self.path is None:
            return
        with suppress(Exception):  # like the generation: a pin that cannot be written never fails a command
            fsutil.ensure_private_dir(self.path.parent)
            fsutil.atomic_replace(self.path, f"{store_id.hex()} {strength} {kinds}\n".encode())


class SlotUse:
    """When each key slot of a store last opened it (for ``protect list``), as the modification time of an empty
    file ``<state_dir>/slots/<store id hex>.<slot id>``; touched at most once an hour, so the hot path pays a stat."""

    __slots__ = ("directory", "store_id")

    def __init__(self, state_dir: Path | None, store_id: bytes) -> None:
        self.directory = None if state_dir is None else state_dir / "slots"
        self.store_id = store_id

    def _path(self, slot_id: int) -> Path | None:
        return None if self.directory is None else self.directory / f"{self.store_id.hex()}.{slot_id}"

    def last_used(self, slot_id: int) -> float | None:
        path = self._path(slot_id)
        if path is None:
            return None
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    def used(self, slot_id: int, now: float) -> None:
        path = self._path(slot_id)
        if path is None:
            return
        last = self.last_used(slot_id)
        if last is not None and now - last < 3600:
            return
        with suppress(Exception):
            fsutil.ensure_private_dir(path.parent)
            if last is None:
                fsutil.atomic_replace(path, b"")
            else:
                import os

                os.utime(path)
