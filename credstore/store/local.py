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
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from credstore import fsutil
from credstore.crypto import envelope
from credstore.crypto.protection import KekContext, Protection, protection, tell, tries_of
from credstore.errors import (
    AuthError,
    CorruptStoreError,
    CredstoreError,
    LockedError,
    NotFoundError,
    RollbackError,
    UnsupportedFormatError,
    UsageError,
    profile_flag,
)
from credstore.store.base import Backend, Snapshot
from credstore.store.generations import GenerationWatch, ProfilePin, SlotUse
from credstore.store.payload import check_store_name, decode_payload, encode_payload

T = TypeVar("T")

_READ_ATTEMPTS = 20
#: Setting that binds the plain profile file (``config``) to this store: see docs/FORMAT.md, "Profile file".
BINDING_SETTING = "profile"


class DekCache(Protocol):
    """Somewhere an unlocked data key can be kept for this login session (the kernel session keyring)."""

    def get(self, store_id: bytes) -> bytes | None: ...

    def put(self, store_id: bytes, dek: bytes) -> None: ...

    def remove(self, store_id: bytes) -> bool: ...


def _level_or_none(slot: envelope.Slot) -> Protection | None:
    try:
        return protection(slot.kind, for_reading=True)
    except UnsupportedFormatError:
        return None


def _caches(slot: envelope.Slot) -> bool:
    level = _level_or_none(slot)
    return level is not None and level.caches_data_key


def _needs_person(slot: envelope.Slot) -> bool:
    level = _level_or_none(slot)
    return level is not None and level.needs_person


def strength_of(header: envelope.Header) -> int:
    """The strength of a store: that of its weakest key slot (any one slot opens it)."""
    levels = [_level_or_none(slot) for slot in header.slots]
    return min(level.strength if level is not None else 0 for level in levels)


def kinds_of(header: envelope.Header) -> str:
    return "+".join(slot.kind for slot in header.slots)


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
        read_cache: bool = True,
        environ: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.profile = check_store_name(profile)
        self.dir = home / "profiles"
        self.path = self.dir / f"{profile}.store"
        self.lock_path = self.dir / f"{profile}.lock"
        self.state_dir = state_dir
        self.source = f"profile:{profile}"
        self.kek_context = KekContext(self.path, profile, interactive, ask_passphrase, environ=environ)
        # dek_cache: where an unlocked key is kept; read_cache: whether reads may take it from there (commands that
        # must prove a secret, e.g. unlock and protect, do not), while changes still update it.
        self.dek_cache = dek_cache
        self.read_cache = read_cache
        #: Level options for deriving KEKs (e.g. ``ssh-signature`` for recovery without the agent).
        self.options = options
        self.opened_slot: int | None = None
        #: KEKs of the slots opened by this object (a re-key re-wraps under them instead of asking twice).
        self.slot_keks: dict[int, bytes] = {}
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
            pinned = self._check_pin(header)
            plaintext = self._open(header, ad, ciphertext)
            try:
                # Only an authenticated generation may be compared and remembered: a forged one would poison it.
                self._check_generation(header)
            except RollbackError:
                if attempt < _READ_ATTEMPTS and self.read_header()[0].generation != header.generation:
                    continue
                raise
            snapshot = decode_payload(plaintext, header.generation)
            self._check_binding(snapshot)
            self._pin_first_time(header, pinned)
            return snapshot

    def _open(self, header: envelope.Header, ad: bytes, ciphertext: bytes) -> bytes:
        """The payload plaintext. (A re-key gives the store a new id, so a data key another login cached for the old
        one is simply not found, never tried.)"""
        return envelope.open_payload(header, ad, ciphertext, self.data_key(header))

    # -- the pin: this store, at least this strong (issue 13, finding 6) ----------------------------------------

    def _pin(self) -> ProfilePin:
        return ProfilePin(self.state_dir, self.profile)

    def _check_pin(self, header: envelope.Header) -> tuple[str, int, str] | None:
        """Refuse, before any key is derived, a store that is not the one credstore knows for this profile, or whose
        weakest slot is weaker than the one credstore set up."""
        seen = self._pin().seen()
        if seen is None:
            return None
        store_id, strength, kinds = seen
        flag = profile_flag(self.profile)
        if header.store_id.hex() != store_id:
            raise CorruptStoreError(
                f"{self.path} is not the store credstore knows for profile '{self.profile}' (another store id): it was "
                f"replaced outside credstore; nothing was read. If you replaced it on purpose: credstore {flag}"
                "accept-store"
            )
        now = strength_of(header)
        if now < strength:
            raise CorruptStoreError(
                f"{self.path} is now protected by {kinds_of(header)}, weaker than the {kinds} that credstore set up: "
                f"it was changed outside credstore; nothing was read. If you did this on purpose: credstore {flag}"
                "accept-store"
            )
        return seen

    def _pin_first_time(self, header: envelope.Header, seen: tuple[str, int, str] | None) -> None:
        """Record the pin of an authentic store that has none yet (or whose levels grew stronger, e.g. changed by
        another credstore process)."""
        if seen is None or seen[1] != strength_of(header) or seen[2] != kinds_of(header):
            self._pin().remember(header.store_id, strength_of(header), kinds_of(header))

    def accept_store(self) -> envelope.Header:
        """Accept the store as it is now as this profile's (after replacing it or changing its protection by hand):
        it must open, then its id, levels and generation are remembered."""
        header, ad, ciphertext = self.read_header()
        envelope.open_payload(header, ad, ciphertext, self.data_key(header))
        self._pin().remember(header.store_id, strength_of(header), kinds_of(header))
        self._watch(header.store_id).accept(header.generation)
        return header

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
        """The DEK: from this object, the session cache, or by opening a key slot (which may prompt or fail
        locked)."""
        if self._dek is not None:
            return self._dek
        if self.dek_cache is not None and self.read_cache and any(_caches(slot) for slot in header.slots):
            cached = self.dek_cache.get(header.store_id)
            if cached is not None:
                self._dek = cached
                return cached
        return self.derive_data_key(header)

    def _slot_context(self, header: envelope.Header, slot: envelope.Slot, options: Mapping[str, str] | None = None):
        return self.kek_context._replace(
            store_id=header.store_id, slot_id=slot.slot_id, options=options if options is not None else self.options
        )

    def slot_kek(self, header: envelope.Header, slot: envelope.Slot) -> bytes:
        """The KEK of one slot from its level (may prompt, or fail locked), checked against the slot's wrap."""
        return self._open_slot(header, slot, protection(slot.kind, for_reading=True))[0]

    def _open_slot(self, header: envelope.Header, slot: envelope.Slot, level: Protection) -> tuple[bytes, bytes]:
        """(KEK, DEK) of one slot; wrong passphrases are counted and slowed down.

        A person at a terminal gets the asker's ``tries`` at a wrong (or empty) passphrase; each wrong one is counted
        (and, after several, slowed down)."""
        attempts = self._attempt_counter(header) if level.counts_attempts else None
        ask = self.kek_context.ask_passphrase
        tries = tries_of(ask) if level.counts_attempts and self.kek_context.interactive else 1
        for attempt in range(1, tries + 1):
            left = tries - attempt
            if attempts is not None:
                attempts.wait()
            try:
                kek = level.derive(slot.params, self._slot_context(header, slot))
            except AuthError as exc:  # nothing typed: not a guess, not counted
                if not left:
                    raise
                tell(ask, f"{exc}; try again ({left} left)")
                continue
            try:
                dek = envelope.unwrap_slot(header, slot, kek)
            except AuthError:
                if attempts is not None:
                    attempts.failed()
                if not left:
                    raise
                tell(ask, f"wrong passphrase for profile '{self.profile}'; try again ({left} left)")
                continue
            if attempts is not None:
                attempts.succeeded()
            return kek, dek
        raise AssertionError("not reached")

    def derive_data_key(self, header: envelope.Header, *, only: int | None = None) -> bytes:
        """The DEK from a key slot itself, never from a cache (``unlock`` checks the passphrase so). Slots that need
        no person are tried first; ``only``: that slot alone. A slot whose level caches after a read (ssh-agent)
        puts the DEK in the session cache."""
        candidates = [s for s in header.slots if only is None or s.slot_id == only]
        if not candidates:
            raise UsageError(f"profile '{self.profile}' has no key slot {only}")
        ordered = sorted(candidates, key=lambda s: (_needs_person(s), s.slot_id))
        failures: list[tuple[envelope.Slot, CredstoreError]] = []
        for slot in ordered:
            try:
                level = protection(slot.kind, for_reading=True)
                kek, dek = self._open_slot(header, slot, level)
            except CredstoreError as exc:
                failures.append((slot, exc))
                continue
            self._dek = dek
            self.opened_slot = slot.slot_id
            self.slot_keks[slot.slot_id] = kek
            SlotUse(self.state_dir, header.store_id).used(slot.slot_id, time.time())
            if level.caches_after_read and self.dek_cache is not None:
                self.dek_cache.put(header.store_id, dek)
            return dek
        raise self._none_opened(failures)

    def _none_opened(self, failures: list[tuple[envelope.Slot, CredstoreError]]) -> CredstoreError:
        """The error when no slot opened: a single slot's own error; else the first wrong key or passphrase; else
        one line listing why each slot stayed closed (exit 4 when any slot only needs something absent now)."""
        if len(failures) == 1:
            return failures[0][1]
        for _, exc in failures:
            if isinstance(exc, AuthError):
                return exc
        reasons = "; ".join(f"slot {slot.slot_id} ({slot.kind}): {exc}" for slot, exc in failures)
        message = f"profile '{self.profile}' is locked, no key slot opened it: {reasons}"
        classes = {type(exc) for _, exc in failures}
        if len(classes) == 1:
            return next(iter(classes))(message)
        return LockedError(message)

    def _attempt_counter(self, header: envelope.Header):  # -> passphrase.AttemptCounter | None
        if self.state_dir is None:
            return None
        from credstore.crypto.passphrase import AttemptCounter

        return AttemptCounter.for_store(self.state_dir, header.store_id)

    def protection_kind(self) -> str:
        """The levels of the store's key slots, ``+``-joined in slot order (``passphrase+ssh-agent``)."""
        return "+".join(slot.kind for slot in self.read_header()[0].slots)

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

    def create(
        self, kind: str, settings: dict[str, str] | None = None, options: Mapping[str, str] | None = None
    ) -> None:
        """Create an empty profile protected by one key slot at level ``kind``. Fails if it exists."""
        fsutil.ensure_private_dir(self.dir)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            if self.path.exists():
                raise UsageError(f"profile '{self.profile}' already exists at {self.path}")
            level = protection(kind)
            header, dek = envelope.empty_header(), envelope.new_dek()
            slot = envelope.Slot(1, level.kind, b"", 0, b"", b"")
            kek, params = level.create(self._slot_context(header, slot, options))
            header = envelope.wrap_slot(header, 1, kek, level.kind, params, dek)
            snapshot = Snapshot(settings={"fingerprint_key": os.urandom(32).hex(), **(settings or {})})
            if self.binding is not None:
                snapshot.settings[BINDING_SETTING] = self.binding
            self._save(envelope.seal(header, dek, encode_payload(snapshot)))
            self._dek = dek
            if self.dek_cache is not None and level.caches_data_key:
                self.dek_cache.put(header.store_id, dek)
            self._watch(header.store_id).remember(0)
            self._pin().remember(header.store_id, strength_of(header), kinds_of(header))

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        fsutil.ensure_private_dir(self.dir)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            header, ad, ciphertext = self.read_header()
            pinned = self._check_pin(header)
            plaintext = self._open(header, ad, ciphertext)
            dek = self.data_key(header)
            self._check_generation(header)
            snapshot = decode_payload(plaintext, header.generation)
            self._check_binding(snapshot)
            self._pin_first_time(header, pinned)
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

    # -- key slots ---------------------------------------------------------------------------------------------

    def _rewrite_slots(
        self, transform: Callable[[envelope.Header, bytes], tuple[envelope.Header, bytes, list[envelope.Slot]]]
    ) -> envelope.Header:
        """Under the write lock: open the store, let ``transform(header, dek)`` give the new header (slots), the DEK
        (a new one re-keys: every value is re-encrypted) and the slots it dropped; save at generation + 1, move the
        pin, refresh the session cache, and only then remove what dropped slots kept outside the store."""
        fsutil.ensure_private_dir(self.dir)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            header, ad, ciphertext = self.read_header()
            self._check_pin(header)
            plaintext = self._open(header, ad, ciphertext)  # never re-wrap a store we cannot read
            old_dek = self.data_key(header)
            self._check_generation(header)
            self._check_binding(decode_payload(plaintext, header.generation))
            new_header, dek, dropped = transform(header, old_dek)
            new_header = new_header._replace(generation=header.generation + 1)
            self._save(envelope.seal(new_header, dek, plaintext))
            self._watch(new_header.store_id).remember(new_header.generation)
            self._pin().remember(new_header.store_id, strength_of(new_header), kinds_of(new_header))
            self._dek = dek
            if self.dek_cache is not None:
                # An unlock in progress stays valid (under the new key and id); a store left with no caching level
                # is locked again. Other logins' copies are under the old id: never found again.
                was_unlocked = self.dek_cache.remove(header.store_id)
                if (was_unlocked or self.read_cache) and any(_caches(slot) for slot in new_header.slots):
                    self.dek_cache.put(new_header.store_id, dek)
            for slot in dropped:
                level = _level_or_none(slot)
                if level is not None and not any(
                    s.kind == slot.kind and s.params == slot.params for s in new_header.slots
                ):
                    level.discard(slot.params, self._slot_context(header, slot))
            return new_header

    def _new_slot(
        self, header: envelope.Header, slot_id: int, kind: str, dek: bytes, options: Mapping[str, str] | None
    ) -> envelope.Header:
        level = protection(kind)
        kek, params = level.create(
            self._slot_context(header, envelope.Slot(slot_id, level.kind, b"", 0, b"", b""), options)
        )
        self.slot_keks[slot_id] = kek
        return envelope.wrap_slot(header, slot_id, kek, level.kind, params, dek)

    def _rewrap_all(
        self, header: envelope.Header, dek: bytes, *, renew: int | None = None, drop_unopenable: bool = False
    ) -> tuple[envelope.Header, list[envelope.Slot]]:
        """Every slot of ``header`` wrapping ``dek``: under the KEK it has (opened now if need be), or a fresh one for
        slot ``renew`` (its level's ``create``, e.g. a new passphrase). Slots that cannot be opened now are refused,
        listed, or dropped with ``drop_unopenable``."""
        # A new data key comes with a new store id: caches of the old key (other logins) are never found again,
        # and an old copy of the store is refused as another store.
        out = header._replace(slots=(), store_id=envelope.new_store_id())
        dropped: list[envelope.Slot] = []
        closed: list[str] = []
        for slot in header.slots:
            new_id = slot.slot_id or header.next_slot_id()  # only a version 1 store's slot 0 keeps version 1's wrap
            level = _level_or_none(slot)
            if slot.slot_id == renew or (level is not None and level.binds_slot_id and slot.slot_id != renew):
                # A fresh KEK: the one asked for (a new passphrase), and slots whose KEK binds the store id (the
                # ssh agent signs a challenge naming the new id, with a fresh salt).
                try:
                    if level is None:
                        raise UnsupportedFormatError(f"level {slot.kind} is not known here")
                    context = self._slot_context(out, slot._replace(slot_id=new_id))
                    if slot.slot_id == renew:
                        kek, params = level.create(context)
                    else:
                        kek, params = level.renew(slot.params, context)
                except CredstoreError as exc:
                    if drop_unopenable and slot.slot_id != renew:
                        dropped.append(slot)
                        continue
                    if slot.slot_id == renew:
                        raise
                    closed.append(f"slot {slot.slot_id} ({slot.kind}): {exc}")
                    continue
                out = envelope.wrap_slot(out, new_id, kek, slot.kind, params, dek, slot.created or None)
                dropped.append(slot)
                continue
            kek = self.slot_keks.get(slot.slot_id)
            if kek is None:
                try:
                    kek = self.slot_kek(header, slot)
                except CredstoreError as exc:
                    if drop_unopenable:
                        dropped.append(slot)
                        continue
                    closed.append(f"slot {slot.slot_id} ({slot.kind}): {exc}")
                    continue
            out = envelope.wrap_slot(out, new_id, kek, slot.kind, slot.params, dek, slot.created or None)
        if closed:
            raise UsageError(
                "cannot re-key: a new data key must be wrapped for every key slot, and these cannot be opened now: "
                + "; ".join(closed)
                + ". Make them available, or remove them with --drop-other-slots (nothing was changed)"
            )
        if not out.slots:
            raise UsageError("cannot re-key: no key slot would be left (nothing was changed)")
        return out, dropped

    def rekey(self, *, renew: int | None = None, drop_unopenable: bool = False) -> envelope.Header:
        """A new data key, every value re-encrypted under it, every slot re-wrapped (see ``_rewrap_all``). An old
        copy of the store plus an old key (a backed-up key file) no longer opens anything written from now on."""

        def transform(header: envelope.Header, old: bytes) -> tuple[envelope.Header, bytes, list[envelope.Slot]]:
            dek = envelope.new_dek()
            new_header, dropped = self._rewrap_all(header, dek, renew=renew, drop_unopenable=drop_unopenable)
            return new_header, dek, dropped

        return self._rewrite_slots(transform)

    def change_protection(
        self, kind: str, options: Mapping[str, str] | None = None, *, rekey: bool = True
    ) -> tuple[list[Protection], Protection]:
        """Replace every key slot by one new slot at level ``kind`` (``credstore protect LEVEL``). With ``rekey``
        (the default) the data key is new too, so a copy of the old store and its old key opens nothing newer.
        Returns (old levels, new level)."""
        old_levels: list[Protection] = []
        new_level = protection(kind)

        def transform(header: envelope.Header, old: bytes) -> tuple[envelope.Header, bytes, list[envelope.Slot]]:
            old_levels.extend(level for level in map(_level_or_none, header.slots) if level is not None)
            dek = envelope.new_dek() if rekey else old
            new_id = header.next_slot_id()
            base = header._replace(slots=(), store_id=envelope.new_store_id() if rekey else header.store_id)
            fresh = self._new_slot(base, new_id, new_level.kind, dek, options)
            return fresh, dek, list(header.slots)

        self._rewrite_slots(transform)
        return old_levels, new_level

    def add_slot(self, kind: str, options: Mapping[str, str] | None = None) -> envelope.Slot:
        """Wrap the data key once more, under a new KEK at level ``kind``; the store must open first."""
        added: list[envelope.Slot] = []

        def transform(header: envelope.Header, dek: bytes) -> tuple[envelope.Header, bytes, list[envelope.Slot]]:
            if len(header.slots) >= envelope.MAX_SLOTS:
                raise UsageError(f"profile '{self.profile}' has {envelope.MAX_SLOTS} key slots already")
            level = protection(kind)
            if level.one_per_store and any(slot.kind == level.kind for slot in header.slots):
                raise UsageError(f"profile '{self.profile}' has a {level.kind} slot already (one per store)")
            slot_id = header.next_slot_id()
            new_header = self._new_slot(header, slot_id, kind, dek, options)
            added.append(new_header.slot(slot_id))
            return new_header, dek, []

        self._rewrite_slots(transform)
        return added[0]

    def remove_slot(self, slot_id: int) -> envelope.Slot:
        """Remove one key slot; the last one is refused (the store could never be opened again)."""
        removed: list[envelope.Slot] = []
        self._refuse_last(self.read_header()[0], slot_id)  # before asking for any key

        def transform(header: envelope.Header, dek: bytes) -> tuple[envelope.Header, bytes, list[envelope.Slot]]:
            slot = self._refuse_last(header, slot_id)
            removed.append(slot)
            return header.without_slot(slot_id), dek, [slot]

        self._rewrite_slots(transform)
        return removed[0]

    def _refuse_last(self, header: envelope.Header, slot_id: int) -> envelope.Slot:
        slot = _find_slot(header, slot_id, self.profile)
        if len(header.slots) == 1:
            raise UsageError(
                f"slot {slot_id} is the last key slot of profile '{self.profile}': removing it would leave the "
                "store unopenable; add another first (credstore protect add LEVEL), or change the level with "
                "credstore protect LEVEL"
            )
        return slot

    def rotate_slot(self, slot_id: int) -> envelope.Slot:
        """A fresh KEK for the same secret of one slot (ssh-agent: a new salt, so captured signatures stop
        working); the data key is unchanged."""
        rotated: list[envelope.Slot] = []

        def transform(header: envelope.Header, dek: bytes) -> tuple[envelope.Header, bytes, list[envelope.Slot]]:
            slot = _find_slot(header, slot_id, self.profile)
            level = protection(slot.kind, for_reading=True)
            if not level.renewable:
                raise UsageError(
                    f"slot {slot_id} ({slot.kind}) cannot be rotated; remove it and add a new one "
                    f"(credstore protect add {slot.kind})"
                )
            kek, params = level.renew(slot.params, self._slot_context(header, slot))
            new_header = envelope.wrap_slot(header, slot_id, kek, slot.kind, params, dek, slot.created or None)
            rotated.append(new_header.slot(slot_id))
            return new_header, dek, []

        self._rewrite_slots(transform)
        return rotated[0]

    def slots(self) -> list[dict[str, object]]:
        """The key slots for ``protect list``: id, level, created, last used, the level's public facts."""
        header, _, _ = self.read_header()
        use = SlotUse(self.state_dir, header.store_id)
        rows: list[dict[str, object]] = []
        for slot in header.slots:
            level = _level_or_none(slot)
            facts = level.describe_params(slot.params) if level is not None else {"unknown": "level unknown here"}
            rows.append(
                {
                    "slot": slot.slot_id,
                    "level": slot.kind,
                    "created": slot.created or None,
                    "last_used": use.last_used(slot.slot_id),
                    **facts,
                }
            )
        return rows


def _find_slot(header: envelope.Header, slot_id: int, profile: str) -> envelope.Slot:
    try:
        return header.slot(slot_id)
    except KeyError:
        ids = ", ".join(str(s.slot_id) for s in header.slots)
        raise UsageError(f"profile '{profile}' has no key slot {slot_id} (its slots: {ids})") from None
