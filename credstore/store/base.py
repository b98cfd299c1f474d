"""The backend interface: what every place that keeps entries must offer.

Small on purpose (the `keyring` model): a backend reads a whole profile as a ``Snapshot`` and changes it through one
atomic read-modify-write, ``modify``. The local encrypted file store (``store/local.py``) and a remote engine such as
OpenBao / Vault KV v2 both fit behind it. Everything above this layer (resolver, CLI, rotation) talks to ``Backend``.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would turn every string annotation into a
# ForwardRef and compile it, about 1 ms per class on each `credstore env`.

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

# Records here and in the resolver are NamedTuples and plain classes, not dataclasses: `credstore env` runs in every
# new shell, and importing dataclasses (with inspect) plus decorating each class cost more than the rest of it.


class Entry(NamedTuple):
    """One stored variable. ``value`` and ``previous`` are kept out of ``repr`` so they never reach a log."""

    name: str
    value: str
    secret: bool = True
    created: float = 0.0
    updated: float = 0.0
    # Times of each rotation, oldest first.
    rotations: tuple[float, ...] = ()
    # The value before the last rotation, kept for rollback until ``previous_expires``.
    previous: str | None = None
    previous_expires: float | None = None

    def __repr__(self) -> str:
        return f"Entry(name={self.name!r}, secret={self.secret}, updated={self.updated})"

    def with_value(self, value: str, *, now: float | None = None) -> "Entry":
        return self._replace(value=value, updated=time.time() if now is None else now)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "value": self.value,
            "secret": self.secret,
            "created": self.created,
            "updated": self.updated,
        }
        if self.rotations:
            data["rotations"] = list(self.rotations)
        if self.previous is not None:
            data["previous"] = self.previous
            data["previous_expires"] = self.previous_expires
        return data

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> "Entry":
        # Called once per variable on every `credstore env`: positional, no conversions (the payload is
        # authenticated, so it holds what encode wrote; a wrong type still fails in decode_payload's checks).
        value = data["value"]
        if type(value) is not str:
            raise TypeError("entry value is not a string")
        rotations = data.get("rotations")
        return cls(
            name,
            value,
            data.get("secret", True),
            data.get("created", 0.0),
            data.get("updated", 0.0),
            tuple(rotations) if rotations else (),
            data.get("previous"),
            data.get("previous_expires"),
        )


class Snapshot:
    """A profile as read at one moment: its entries and its settings (e.g. the default service)."""

    __slots__ = ("entries", "generation", "settings")

    def __init__(
        self,
        entries: dict[str, Entry] | None = None,
        settings: dict[str, str] | None = None,
        generation: int = 0,
    ) -> None:
        self.entries: dict[str, Entry] = {} if entries is None else entries
        self.settings: dict[str, str] = {} if settings is None else settings
        self.generation = generation

    def __repr__(self) -> str:
        return f"Snapshot(entries={sorted(self.entries)}, generation={self.generation})"

    def copy(self) -> "Snapshot":
        """A copy whose dicts can be changed without touching this one (entries themselves are immutable)."""
        return Snapshot(dict(self.entries), dict(self.settings), self.generation)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (self.entries, self.settings, self.generation) == (other.entries, other.settings, other.generation)


class Backend(ABC):
    """Where one profile's entries live."""

    #: Shown by ``explain`` and ``list`` as the source, e.g. ``profile:default`` or ``service:ml-team``.
    source: str
    #: Called after each write of a backend whose changes no local file shows (a remote engine), so that what was
    #: cached from the old contents (the render cache, ``app/render_cache.py``) goes at once. Set by the app layer.
    after_write: Callable[[], None] | None = None
    #: True once a read of a remote backend was answered by a fallback copy (the server did not answer).
    read_from_fallback: bool = False

    @abstractmethod
    def exists(self) -> bool:
        """Whether the profile has been created."""

    @abstractmethod
    def read(self) -> Snapshot:
        """Return the current contents. Never blocks on writers."""

    @abstractmethod
    def modify(self, change: Callable[[Snapshot], T]) -> T:
        """Apply ``change`` to the latest contents atomically and persist the result.

        ``change`` mutates the snapshot it is given and may return a value, which ``modify`` returns. Two writers
        calling ``modify`` at once both see their change kept: the local store serialises them with a lock, a remote
        engine with check-and-set and retry.
        """

    def service_account(self, name: str) -> "Backend | None":
        """Service account NAME kept beside this profile on the same engine, if this backend has such (OpenBao);
        None for backends whose service accounts live elsewhere (the local store: the shared directory)."""
        return None
