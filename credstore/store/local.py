"""The local encrypted store: one file per profile, encrypted as a whole (``crypto/envelope.py``).

Layout under the store home (``CREDSTORE_HOME``, default ``platformdirs.user_data_dir("credstore")``)::

    profiles/<profile>.store   the encrypted profile, 0600
    profiles/<profile>.key     the key file, for the keyfile protection level only, 0600
    profiles/<profile>.lock    the write lock (flock), 0600
    profiles/<profile>.profile the plain profile file: which backend holds the entries (``config``), 0600

Writers take the lock, re-read the file, apply their change, bump the generation and atomically replace the file.
Readers never lock. The highest generation seen is remembered outside the store (``state_dir``) so that restoring
an older copy of the file is detected (``RollbackError``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from credstore import fsutil
from credstore.crypto import envelope
from credstore.crypto.protection import KekContext, Protection, protection, tell, tries_of
from credstore.errors import AuthError, CorruptStoreError, NotFoundError, RollbackError, UsageError, profile_flag
from credstore.store.base import Backend, Snapshot
from credstore.store.generations import GenerationWatch
from credstore.store.payload import check_store_name, decode_payload, encode_payload

T = TypeVar("T")

_READ_ATTEMPTS = 20
#: Setting that binds the plain profile file (``config``) to this store: see docs/FORMAT.md, "Profile file".
BINDING_SETTING = "profile"


class DekCache(Protocol):
    """Somewhere an unlocked data key can be kept for this login session (the kernel session keyring)."""

    def get(self, store_id: bytes) -> bytes | None: ...

    def put(self, store_id: bytes, dek: bytes) -> None: ...


def _exists(path: Path) -> bool:
    """``path.exists()``, but a directory we may not enter (someone else's store) is a one-line permission error."""
    try:
        return path.exists()
    except OSError as exc:
        raise fsutil.io_error("inspect", path, exc) from None


class LocalStore(Backend):
    """One profile's encrypted file.

    ``binding``: the text of the profile's plain profile file, when it has one. A store that carries a binding must
    carry exactly this one (else the plain file was changed outside credstore); every write records it. A store
    written before bindings existed is checked against ``unbound(settings)``, what its own settings say.
    """

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
        binding: str | None = None,
        unbound: Callable[[dict[str, str]], str] | None = None,
    ) -> None:
        self.home = home
        self.profile = check_store_name(profile)
        self.dir = home / "profiles"
        self.path = self.dir / f"{profile}.store"
        self.lock_path = self.dir / f"{profile}.lock"
        self.state_dir = state_dir
        self.source = f"profile:{profile}"
        self.kek_context = KekContext(self.path, profile, interactive, ask_passphrase)
        self.dek_cache = dek_cache
        self.lock_timeout = lock_timeout
        self.binding = binding
        # For a store written before it carried a binding: what its binding would be, from its own settings.
        self.unbound = unbound
        self._dek: bytes | None = None

    def __repr__(self) -> str:
        return f"LocalStore(path={str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        return _exists(self.path)

    def _missing(self) -> NotFoundError:
        flag = profile_flag(self.profile)
        return NotFoundError(f"no credstore profile '{self.profile}' yet; create it with: credstore {flag}init")

    def read_bytes(self) -> bytes:
        if not _exists(self.dir):
            raise self._missing()
        fsutil.check_dir(self.dir)
        try:
            return fsutil.read_private(self.path)
        except NotFoundError:
            raise self._missing() from None

    def read_header(self) -> tuple[envelope.Header, bytes, bytes]:
        return envelope.parse(self.read_bytes())

    def level(self) -> Protection:
        return protection(self.read_header()[0].kek_kind, for_reading=True)

    def read(self) -> Snapshot:
        # Readers do not lock, so a writer may replace the file (and remember its newer generation) between our
        # read and our check: that is a lost race, not a rollback. Re-read while the file keeps moving on.
        attempt = 0
        while True:
            attempt += 1
            header, ad, ciphertext = self.read_header()
            plaintext = envelope.open_payload(header, ad, ciphertext, self.data_key(header))
            try:
                # Only an authenticated generation may be compared and remembered: a forged one would poison it.
                self._check_generation(header)
            except RollbackError:
                if attempt < _READ_ATTEMPTS and self.read_header()[0].generation != header.generation:
                    continue
                raise
            snapshot = decode_payload(plaintext, header.generation)
            self._check_binding(snapshot)
            return snapshot

    def _check_binding(self, snapshot: Snapshot) -> None:
        stored = snapshot.settings.get(BINDING_SETTING)
        if stored is None and self.unbound is not None:
            stored = self.unbound(snapshot.settings)
        if stored is not None and self.binding is not None and stored != self.binding:
            raise CorruptStoreError(
                f"the profile file of '{self.profile}' does not match its encrypted store (changed outside credstore, "
                f"or restored from another copy); remove {self.path.with_suffix('.profile')} and credstore rebuilds "
                "it from the store"
            )

    def data_key(self, header: envelope.Header) -> bytes:
        """The DEK: from this object, the session cache, or by deriving the KEK (which may prompt or fail locked)."""
        if self._dek is not None:
            return self._dek
        level = protection(header.kek_kind, for_reading=True)
        if self.dek_cache is not None and level.caches_data_key:
            cached = self.dek_cache.get(header.store_id)
            if cached is not None:
                self._dek = cached
                return cached
        return self.derive_data_key(header, level)

    def derive_data_key(self, header: envelope.Header, level: Protection | None = None) -> bytes:
        """The DEK from the protection level itself, never from a cache (``unlock`` checks the passphrase so).

        A person at a terminal gets the asker's ``tries`` at a wrong (or empty) passphrase; each wrong one is counted
        (and, after several, slowed down) as before."""
        level = level or protection(header.kek_kind, for_reading=True)
        attempts = self._attempt_counter(header) if level.counts_attempts else None
        ask = self.kek_context.ask_passphrase
        tries = tries_of(ask) if level.counts_attempts and self.kek_context.interactive else 1
        for attempt in range(1, tries + 1):
            left = tries - attempt
            if attempts is not None:
                attempts.wait()
            try:
                kek = level.derive(header.kek_params, self.kek_context)
            except AuthError as exc:  # nothing typed: not a guess, not counted
                if not left:
                    raise
                tell(ask, f"{exc}; try again ({left} left)")
                continue
            try:
                self._dek = envelope.unwrap_dek(header, kek)
            except AuthError:
                if attempts is not None:
                    attempts.failed()
                if not left:
                    raise
                tell(ask, f"wrong passphrase for profile '{self.profile}'; try again ({left} left)")
                continue
            if attempts is not None:
                attempts.succeeded()
            return self._dek
        raise AssertionError("not reached")

    def _attempt_counter(self, header: envelope.Header):  # -> passphrase.AttemptCounter | None
        if self.state_dir is None:
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
        flag = profile_flag(self.profile)
        return RollbackError(
            f"{self.path} is at generation {generation} but generation {seen} was seen before: "
            f"an older copy of the store was restored. If you restored it on purpose, run: credstore {flag}"
            "accept-rollback"
        )

    def accept_rollback(self) -> int:
        """Accept the store's current generation as the newest (after a deliberate restore from backup)."""
        header, _, _ = self.read_header()
        self._watch(header.store_id).accept(header.generation)
        return header.generation

    # -- writing ---------------------------------------------------------------------------------------------

    def create(self, kind: str, settings: dict[str, str] | None = None) -> None:
        """Create an empty profile protected at level ``kind``. Fails if it exists."""
        fsutil.ensure_private_dir(self.dir)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            if self.path.exists():
                raise UsageError(f"profile '{self.profile}' already exists at {self.path}")
            level = protection(kind)
            kek, params = level.create(self.kek_context)
            header, dek = envelope.new_header(kek, level.kind, params)
            snapshot = Snapshot(settings={"fingerprint_key": os.urandom(32).hex(), **(settings or {})})
            if self.binding is not None:
                snapshot.settings[BINDING_SETTING] = self.binding
            self._save(envelope.seal(header, dek, encode_payload(snapshot)))
            self._dek = dek
            if self.dek_cache is not None and level.caches_data_key:
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
            self._check_binding(snapshot)
            result = change(snapshot)
            if self.binding is not None:  # a store written before bindings records its own now
                snapshot.settings.setdefault(BINDING_SETTING, self.binding)
            self._write(header._replace(generation=header.generation + 1), dek, snapshot)
            return result

    def rebind(self, binding: str) -> None:
        """Record a new binding (the profile's routing changed): the old one is checked, the new one written."""

        def change(snapshot: Snapshot) -> None:
            snapshot.settings[BINDING_SETTING] = binding

        self.modify(change)
        self.binding = binding

    def _save(self, data: bytes) -> None:
        """Replace the store file (the caller holds the write lock), then remove temporary files that crashed
        writers left behind."""
        fsutil.atomic_replace(self.path, data)
        fsutil.remove_stale_temps(self.path)

    def _write(self, header: envelope.Header, dek: bytes, snapshot: Snapshot) -> None:
        self._save(envelope.seal(header, dek, encode_payload(snapshot)))
        self._watch(header.store_id).remember(header.generation)

    def change_protection(self, kind: str) -> tuple[Protection, Protection]:
        """Re-wrap the same DEK under a KEK of another level; entries are not re-encrypted needlessly.

        Also serves a passphrase change (same kind, new passphrase). Returns (old level, new level).
        """
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            header, ad, ciphertext = self.read_header()
            dek = self.data_key(header)
            plaintext = envelope.open_payload(header, ad, ciphertext, dek)  # refuse to re-wrap a store we cannot read
            self._check_generation(header)
            old_level = protection(header.kek_kind, for_reading=True)
            new_level = protection(kind)
            kek, params = new_level.create(self.kek_context)
            new_header = envelope.rewrap(header, kek, new_level.kind, params, dek)
            new_header = new_header._replace(generation=header.generation + 1)
            self._save(envelope.seal(new_header, dek, plaintext))
            self._watch(header.store_id).remember(new_header.generation)
            if old_level.kind != new_level.kind:
                old_level.discard(header.kek_params, self.kek_context)
            return old_level, new_level
