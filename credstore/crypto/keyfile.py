"""The ``keyfile`` protection level: the KEK is 32 random bytes in a 0600 file beside the store.

The weakest level: it protects a copy of the store file alone, not anyone who can read the home directory.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from credstore import fsutil
from credstore.crypto.protection import KEK_LEN, KekContext, Protection
from credstore.errors import CorruptStoreError


class KeyFileProtection(Protection):
    kind = "keyfile"
    description = (
        "key file beside the store (weakest: anyone who can read your home directory, a backup or an NFS "
        "snapshot of it can decrypt the store)"
    )
    caches_data_key = False  # reading the key file is as cheap as the cache, and no safer to keep twice
    strength = 1
    one_per_store = True

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
