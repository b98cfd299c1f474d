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
