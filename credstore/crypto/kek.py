"""Protection levels: where the key-encryption key (KEK) comes from.

Each level is a ``Protection``: it makes a KEK for a new store and derives it again for an existing one from the
parameters kept in the store header. The key file level lives here; the passphrase (Argon2id) and OS keyring levels
plug in through ``register``. A level that cannot produce the KEK without a person (a passphrase prompt) raises
``LockedError`` when ``KekContext.interactive`` is false, so a shell profile never blocks.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would turn every string annotation into a
# ForwardRef and compile it, about 1 ms per class on each `credstore env`.

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from credstore.errors import CorruptStoreError, UnsupportedFormatError, UsageError
from credstore.store import fsutil

KEK_LEN = 32


class KekContext(NamedTuple):
    """What a protection level may need: where the store is, and whether it may ask a person."""

    store_path: Path
    profile: str
    interactive: bool
    ask_passphrase: Callable[[str], str] | None = None


class Protection(ABC):
    #: Id written into the store header.
    kind: str
    #: One line for people: what this level protects against.
    description: str

    @abstractmethod
    def create(self, ctx: KekContext) -> tuple[bytes, bytes]:
        """Make a new KEK for a new store (or a store changing level); return (kek, header parameters)."""

    @abstractmethod
    def derive(self, params: bytes, ctx: KekContext) -> bytes:
        """Return the KEK of an existing store from its header parameters."""

    def discard(self, params: bytes, ctx: KekContext) -> None:  # noqa: B027 - optional hook
        """Remove whatever this level kept outside the store (after the store moved to another level)."""


class KeyFileProtection(Protection):
    """The KEK is 32 random bytes in a 0600 file beside the store: protects a copy of the store file alone."""

    kind = "keyfile"
    description = (
        "key file beside the store (weakest: anyone who can read your home directory, a backup or an NFS "
        "snapshot of it can decrypt the store)"
    )

    @staticmethod
    def key_path(ctx: KekContext) -> Path:
        return ctx.store_path.with_suffix(".key")

    def create(self, ctx: KekContext) -> tuple[bytes, bytes]:
        kek = os.urandom(KEK_LEN)
        path = self.key_path(ctx)
        if path.exists():
            # A key file without its store (an interrupted init): replace it rather than fail forever.
            path.unlink()
        fsutil.write_new_private(path, kek)
        return kek, b""

    def derive(self, params: bytes, ctx: KekContext) -> bytes:
        if params:
            raise CorruptStoreError("store header is malformed (key file parameters)")
        kek = fsutil.read_private(self.key_path(ctx), secret_file=True)
        if len(kek) != KEK_LEN:
            raise CorruptStoreError(f"key file {self.key_path(ctx)} is malformed")
        return kek

    def discard(self, params: bytes, ctx: KekContext) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.key_path(ctx).unlink()


_LEVELS: dict[str, Callable[[], Protection]] = {"keyfile": KeyFileProtection}


def register(kind: str, factory: Callable[[], Protection]) -> None:
    """Plug in a protection level (passphrase, OS keyring, ...)."""
    _LEVELS[kind] = factory


def _load_optional_levels() -> None:
    # Levels with heavier imports register themselves when their module is imported.
    import importlib

    for module in ("credstore.crypto.passphrase", "credstore.crypto.oskeyring"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def protection(kind: str, *, for_reading: bool = False) -> Protection:
    if kind not in _LEVELS:
        _load_optional_levels()
    try:
        return _LEVELS[kind]()
    except KeyError:
        if for_reading:
            raise UnsupportedFormatError(
                f"store uses protection level '{kind}', which this credstore does not know"
            ) from None
        choices = ", ".join(sorted(_LEVELS))
        raise UsageError(f"unknown protection level '{kind}' (choose from: {choices})") from None


def known_levels() -> list[str]:
    _load_optional_levels()
    return sorted(_LEVELS)
