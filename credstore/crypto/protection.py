"""Protection levels: where the key-encryption key (KEK) that wraps a store's data key comes from.

Each level is a ``Protection`` subclass in its own module; ``LEVELS`` below is the registry. A level makes a KEK for
a new store and derives it again for an existing one from the parameters kept in the store header. What callers may
rely on is said by capabilities on the class (never by comparing ``kind`` strings):

- ``caches_data_key``: ``unlock`` may keep the data key in this login's session keyring;
- ``counts_attempts``: wrong guesses are counted and slowed down (a person types the secret);
- ``needs_unlock``: without an unlock, commands that never prompt (``env``) find the store locked;
- ``strength``: a rank for people and ``doctor`` (higher protects against more);
- ``needs_person``: producing the KEK takes a person (a typed passphrase): a store with several key slots tries the
  others first;
- ``caches_after_read``: a read that derived the KEK caches the data key for the session, as ``unlock`` does (a
  level whose KEK costs a round trip, e.g. an agent signature, so the hot path never pays it twice);
- ``renewable``: ``protect rotate-slot`` can give the slot a fresh KEK for the same secret (``renew``).

A level that cannot produce the KEK without a person raises ``LockedError`` when ``KekContext.interactive`` is false,
so a shell profile never blocks.

To add a level: one module with a ``Protection`` subclass, plus one line in ``LEVELS``.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile string annotations (see store/base).

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from credstore.errors import UnsupportedFormatError, UsageError

KEK_LEN = 32

# kind (as written in store headers) -> "module:class". Strongest first: the CLI lists them in this order.
LEVELS: dict[str, str] = {
    "passphrase": "credstore.crypto.passphrase:PassphraseProtection",
    "ssh-agent": "credstore.crypto.sshagent_level:SSHAgentProtection",
    "keyring": "credstore.crypto.oskeyring:OSKeyringProtection",
    "keyfile": "credstore.crypto.keyfile:KeyFileProtection",
}


class KekContext(NamedTuple):
    """What a protection level may need: where the store is, and whether it may ask a person. ``store_id`` and
    ``slot_id`` name the slot the KEK is for (levels that bind them, e.g. ``ssh-agent``); ``options`` are the level's
    options from the command line (e.g. ``ssh-key``); ``environ`` the caller's environment (``SSH_AUTH_SOCK``)."""

    store_path: Path
    profile: str
    interactive: bool
    ask_passphrase: Callable[[str], str] | None = None
    store_id: bytes = b""
    slot_id: int = 0
    options: Mapping[str, str] | None = None
    environ: Mapping[str, str] | None = None

    def option(self, name: str) -> str | None:
        return None if self.options is None else self.options.get(name)


def tries_of(ask: Callable[[str], str] | None) -> int:
    """How many wrong passphrases the asker forgives before the error stands: an asker that sits at a terminal says
    so (``tries``); a plain callback, or one that reads a pipe, gets one try."""
    return max(1, int(getattr(ask, "tries", 1))) if ask is not None else 1


def tell(ask: Callable[[str], str] | None, message: str) -> None:
    """Say one line to the person being asked (``ask.notice``), else on stderr."""
    notice = getattr(ask, "notice", None)
    if notice is not None:
        notice(message)
        return
    import sys

    sys.stderr.write(f"credstore: {message}\n")
    sys.stderr.flush()


def confirm(ask: Callable[[str], str] | None, question: str) -> bool:
    """A yes/no question to the person being asked (``ask.confirm``); an asker that cannot ask says yes."""
    ask_yes_no = getattr(ask, "confirm", None)
    return True if ask_yes_no is None else bool(ask_yes_no(question))


class Protection(ABC):
    #: Id written into the store header.
    kind: str
    #: One line for people: what this level protects against.
    description: str
    caches_data_key: bool = True
    counts_attempts: bool = False
    needs_unlock: bool = False
    strength: int = 0
    needs_person: bool = False
    caches_after_read: bool = False
    renewable: bool = False
    #: The KEK lives in one fixed place per store (a key file beside it): a second slot of this level is refused.
    one_per_store: bool = False
    #: The KEK depends on the store id and slot id (ssh-agent signs both): a re-key (new store id) renews the slot.
    binds_slot_id: bool = False
    #: What ``doctor`` says when a store's only slot is of this level (e.g. lose the ssh key, lose the store).
    only_slot_warning: str = ""

    @abstractmethod
    def create(self, ctx: KekContext) -> tuple[bytes, bytes]:
        """Make a new KEK for a new store (or a store changing level); return (kek, header parameters)."""

    @abstractmethod
    def derive(self, params: bytes, ctx: KekContext) -> bytes:
        """Return the KEK of an existing store from its header parameters."""

    def available(self) -> tuple[bool, str]:
        """Whether this level can produce its key on this machine now, and one line saying so (for ``doctor``)."""
        return True, ""

    def discard(self, params: bytes, ctx: KekContext) -> None:  # noqa: B027 - optional hook
        """Remove whatever this level kept outside the store (after the store moved to another level)."""

    def renew(self, params: bytes, ctx: KekContext) -> tuple[bytes, bytes]:
        """A fresh KEK and parameters for the same secret (``renewable`` levels only)."""
        raise UsageError(f"a {self.kind} slot cannot be rotated; remove it and add a new one")

    def describe_params(self, params: bytes) -> dict[str, str]:
        """Non-secret facts about a slot for ``protect list`` (e.g. a public key fingerprint)."""
        return {}


def protection(kind: str, *, for_reading: bool = False) -> Protection:
    """The level named ``kind``: ``for_reading`` (a kind found in a header) makes an unknown kind a format error."""
    target = LEVELS.get(kind)
    if target is None:
        if for_reading:
            raise UnsupportedFormatError(f"store uses protection level '{kind}', which this credstore does not know")
        raise UsageError(f"unknown protection level '{kind}' (choose from: {', '.join(LEVELS)})")
    module, _, name = target.partition(":")
    level: Protection = getattr(importlib.import_module(module), name)()
    return level
