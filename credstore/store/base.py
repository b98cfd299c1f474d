"""The backend interface: what every place that keeps entries must offer.

Small on purpose (the `keyring` model): a backend reads a whole profile as a ``Snapshot`` and changes it through one
atomic read-modify-write, ``modify``. The local encrypted file store (``store/local.py``) and a remote engine such as
OpenBao / Vault KV v2 both fit behind it. Everything above this layer (resolver, CLI, rotation) talks to ``Backend``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One stored variable. ``value`` and ``previous`` are kept out of ``repr`` so they never reach a log."""

    name: str
    value: str = field(repr=False)
    secret: bool = True
    created: float = 0.0
    updated: float = 0.0
    # Times of each rotation, oldest first.
    rotations: tuple[float, ...] = ()
    # The value before the last rotation, kept for rollback until ``previous_expires``.
    previous: str | None = field(default=None, repr=False)
    previous_expires: float | None = None

    def with_value(self, value: str, *, now: float | None = None) -> Entry:
        return replace(self, value=value, updated=time.time() if now is None else now)

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
    def from_dict(cls, name: str, data: dict[str, Any]) -> Entry:
        return cls(
            name=name,
            value=str(data["value"]),
            secret=bool(data.get("secret", True)),
            created=float(data.get("created", 0.0)),
            updated=float(data.get("updated", 0.0)),
            rotations=tuple(float(t) for t in data.get("rotations", ())),
            previous=data.get("previous"),
            previous_expires=data.get("previous_expires"),
        )


@dataclass
class Snapshot:
    """A profile as read at one moment: its entries and its non-secret settings (e.g. the default service)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    generation: int = 0


class Backend(ABC):
    """Where one profile's entries live."""

    #: Shown by ``explain`` and ``list`` as the source, e.g. ``profile:default`` or ``service:ml-team``.
    source: str

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
