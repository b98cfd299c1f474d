"""The local encrypted store: one file per profile, encrypted as a whole (``crypto/envelope.py``).

Layout under the store home (``CREDSTORE_HOME``, default ``platformdirs.user_data_dir("credstore")``)::

    profiles/<profile>.store   the encrypted profile, 0600
    profiles/<profile>.key     the key file, for the keyfile protection level only, 0600
    profiles/<profile>.lock    the write lock (flock), 0600

Writers take the lock, re-read the file, apply their change, bump the generation and atomically replace the file.
Readers never lock. The highest generation seen is remembered outside the store (``state_dir``) so that restoring
an older copy of the file is detected (``RollbackError``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from credstore.crypto import envelope
from credstore.crypto.kek import KekContext, protection
from credstore.errors import (
    AuthError,
    CorruptStoreError,
    NotFoundError,
    RollbackError,
    UsageError,
)
from credstore.store import fsutil
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.generations import GenerationWatch

T = TypeVar("T")

PROFILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
PAYLOAD_VERSION = 1
_READ_ATTEMPTS = 20


def check_profile_name(profile: str) -> str:
    if not PROFILE_RE.match(profile):
        raise UsageError(
            f"invalid profile name {profile!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return profile


class DekCache(Protocol):
    """Somewhere an unlocked data key can be kept for this login session (the kernel session keyring)."""

    def get(self, store_id: bytes) -> bytes | None: ...

    def put(self, store_id: bytes, dek: bytes) -> None: ...


def encode_payload(snapshot: Snapshot) -> bytes:
    data = {
        "version": PAYLOAD_VERSION,
        "entries": {name: entry.to_dict() for name, entry in sorted(snapshot.entries.items())},
        "settings": dict(sorted(snapshot.settings.items())),
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_payload(plaintext: bytes, generation: int) -> Snapshot:
    try:
        data: Any = json.loads(plaintext)
        if data.get("version") != PAYLOAD_VERSION:
            raise CorruptStoreError("store payload has an unknown version")
        entries = {name: Entry.from_dict(name, fields) for name, fields in data["entries"].items()}
        settings = {str(k): str(v) for k, v in data["settings"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CorruptStoreError("store payload is malformed") from None
    return Snapshot(entries=entries, settings=settings, generation=generation)


def _exists(path: Path) -> bool:
    """``path.exists()``, but a directory we may not enter (someone else's store) is a one-line permission error."""
    try:
        return path.exists()
    except OSError as exc:
        raise fsutil.io_error("inspect", path, exc) from None


class LocalStore(Backend):
    def __init__(
        self,
        home: Path,
        profile: str,
        *,
        state_dir: Path | None = None,
        interactive: bool = False,
        ask_passphrase: Callable[[str], str] | None = None,
        dek_cache: DekCache | None = None,
        lock_timeout: float = 10.0,
    ) -> None:
        self.home = home
        self.profile = check_profile_name(profile)
        self.dir = home / "profiles"
        self.path = self.dir / f"{profile}.store"
        self.lock_path = self.dir / f"{profile}.lock"
        self.state_dir = state_dir
        self.source = f"profile:{profile}"
        self.kek_context = KekContext(self.path, profile, interactive, ask_passphrase)
        self.dek_cache = dek_cache
        self.lock_timeout = lock_timeout
        self._dek: bytes | None = None
        self._last_read: tuple[bytes, Snapshot] | None = None

    def __repr__(self) -> str:
        return f"LocalStore(path={str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        return _exists(self.path)

    def read_bytes(self) -> bytes:
        if not _exists(self.dir):
            raise NotFoundError(f"no credstore profile '{self.profile}' yet; create it with: credstore init")
        fsutil.check_dir(self.dir)
        try:
            return fsutil.read_private(self.path)
        except NotFoundError:
            raise NotFoundError(f"no credstore profile '{self.profile}' yet; create it with: credstore init") from None

    def read_header(self) -> tuple[envelope.Header, bytes, bytes]:
        return envelope.parse(self.read_bytes())

    def read(self) -> Snapshot:
        # Readers do not lock, so a writer may replace the file (and remember its newer generation) between our
        # read and our check: that is a lost race, not a rollback. Re-read while the file keeps moving on.
        attempt = 0
        while True:
            attempt += 1
            data = self.read_bytes()
            if self._last_read is not None and self._last_read[0] == data:
                # The same bytes this object decrypted before (e.g. the backend check then the command's own read):
                # same content, already authenticated and generation-checked.
                return self._last_read[1].copy()
            header, ad, ciphertext = envelope.parse(data)
            plaintext = envelope.open_payload(header, ad, ciphertext, self.data_key(header))
            try:
                # Only an authenticated generation may be compared and remembered: a forged one would poison it.
                self._check_generation(header)
            except RollbackError:
                if attempt < _READ_ATTEMPTS and self.read_header()[0].generation != header.generation:
                    continue
                raise
            snapshot = decode_payload(plaintext, header.generation)
            self._last_read = (data, snapshot.copy())
            return snapshot

    def data_key(self, header: envelope.Header) -> bytes:
        """The DEK: from this object, the session cache, or by deriving the KEK (which may prompt or fail locked)."""
        if self._dek is not None:
            return self._dek
        if self.dek_cache is not None and header.kek_kind != "keyfile":
            cached = self.dek_cache.get(header.store_id)
            if cached is not None:
                self._dek = cached
                return cached
        level = protection(header.kek_kind, for_reading=True)
        attempts = self._attempt_counter(header)
        if attempts is not None:
            attempts.wait()
        kek = level.derive(header.kek_params, self.kek_context)
        try:
            self._dek = envelope.unwrap_dek(header, kek)
        except AuthError:
            if attempts is not None:
                attempts.failed()
            raise
        if attempts is not None:
            attempts.succeeded()
        return self._dek

    def _attempt_counter(self, header: envelope.Header):  # -> passphrase.AttemptCounter | None
        """Wrong passphrases in a row are counted (and slowed down after 5) for the passphrase level only."""
        if header.kek_kind != "passphrase" or self.state_dir is None:
            return None
        from credstore.crypto.passphrase import AttemptCounter

        return AttemptCounter.for_store(self.state_dir, header.store_id)

    def protection_kind(self) -> str:
        return self.read_header()[0].kek_kind

    # -- rollback detection ----------------------------------------------------------------------------------

    def _watch(self, store_id: bytes) -> GenerationWatch:
        return GenerationWatch(self.state_dir, store_id)

    def _check_generation(self, header: envelope.Header) -> None:
        self._watch(header.store_id).check(header.generation, self._rollback_error)

    def _rollback_error(self, generation: int, seen: int) -> RollbackError:
        return RollbackError(
            f"{self.path} is at generation {generation} but generation {seen} was seen before: "
            "an older copy of the store was restored. If you restored it on purpose, run: "
            f"credstore --profile {self.profile} accept-rollback"
        )

    def accept_rollback(self) -> int:
        """Accept the store's current generation as the newest (after a deliberate restore from backup)."""
        header, _, _ = self.read_header()
        self._watch(header.store_id).accept(header.generation)
        return header.generation

    # -- writing ---------------------------------------------------------------------------------------------

    def create(self, kind: str = "keyfile") -> None:
        """Create an empty profile protected at level ``kind``. Fails if it exists."""
        fsutil.ensure_private_dir(self.dir)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            if self.path.exists():
                raise UsageError(f"profile '{self.profile}' already exists at {self.path}")
            level = protection(kind)
            kek, params = level.create(self.kek_context)
            header, dek = envelope.new_header(kek, level.kind, params)
            snapshot = Snapshot(settings={"fingerprint_key": os.urandom(32).hex()})
            data = envelope.seal(header, dek, encode_payload(snapshot))
            self._save(data)
            self._dek = dek
            if self.dek_cache is not None and level.kind != "keyfile":
                self.dek_cache.put(header.store_id, dek)
            self._watch(header.store_id).remember(0)

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        fsutil.ensure_private_dir(self.dir)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            header, ad, ciphertext = self.read_header()
            dek = self.data_key(header)
            plaintext = envelope.open_payload(header, ad, ciphertext, dek)
            self._check_generation(header)
            snapshot = decode_payload(plaintext, header.generation)
            result = change(snapshot)
            self._write(header._replace(generation=header.generation + 1), dek, snapshot)
            return result

    def _save(self, data: bytes) -> None:
        """Replace the store file (the caller holds the write lock), then remove temporary files that crashed
        writers left behind."""
        fsutil.atomic_replace(self.path, data)
        fsutil.remove_stale_temps(self.path)

    def _write(self, header: envelope.Header, dek: bytes, snapshot: Snapshot) -> None:
        self._save(envelope.seal(header, dek, encode_payload(snapshot)))
        self._watch(header.store_id).remember(header.generation)

    def change_protection(self, kind: str) -> tuple[str, str]:
        """Re-wrap the same DEK under a KEK of another level; entries are not re-encrypted needlessly.

        Also serves a passphrase change (same kind, new passphrase). Returns (old kind, new kind).
        """
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            header, ad, ciphertext = self.read_header()
            dek = self.data_key(header)
            envelope.open_payload(header, ad, ciphertext, dek)  # refuse to re-wrap a store we cannot read
            self._check_generation(header)
            old_level = protection(header.kek_kind, for_reading=True)
            new_level = protection(kind)
            kek, params = new_level.create(self.kek_context)
            new_header = envelope.rewrap(header, kek, new_level.kind, params, dek)
            new_header = new_header._replace(generation=header.generation + 1)
            plaintext = envelope.open_payload(header, ad, ciphertext, dek)
            self._save(envelope.seal(new_header, dek, plaintext))
            self._watch(header.store_id).remember(new_header.generation)
            if old_level.kind != new_level.kind:
                old_level.discard(header.kek_params, self.kek_context)
            return old_level.kind, new_level.kind
