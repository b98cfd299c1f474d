"""How a profile's store is protected: creating it (and choosing its level), unlock, lock, passwd, protect.

Levels and their capabilities come from the registry in ``crypto/protection.py``; nothing here compares kind
strings. A new store gets ``keyring`` where a working OS keyring exists, else ``passphrase`` when a person can be
asked, else nothing: credstore never picks a weaker level silently, and always says which level it used.
"""

from __future__ import annotations

import time

from credstore import config
from credstore.app.context import Context
from credstore.crypto import envelope
from credstore.crypto.protection import Protection, protection
from credstore.errors import AuthError, CredstoreError, UsageError
from credstore.store.base import Backend
from credstore.store.local import LocalStore


def default_level(ctx: Context) -> tuple[str, str]:
    """The level for a new store when none was asked for: (kind, why). Raises UsageError naming the choices."""
    from credstore.crypto import oskeyring

    ok, reason = oskeyring.status()
    if ok:
        return "keyring", reason
    if ctx.terminal and ctx.interactive:
        return "passphrase", f"{reason}; a terminal is attached to ask for a passphrase"
    init = f"credstore {ctx.profile_flag}init"
    raise UsageError(
        f"cannot choose a protection level for a new profile: {reason}, and no terminal to ask "
        "for a passphrase. Create the profile first with one of: "
        f"`printf '%s\\n' \"$PASSPHRASE\" | {init} --protection passphrase`, "
        f"`{init} --protection keyfile` (weakest: anyone who can read your home directory can decrypt it), "
        f"or start a Secret Service and use `{init} --protection keyring`"
    )


def create_profile(
    ctx: Context,
    level: str | None = None,
    *,
    local: LocalStore | None = None,
    facts: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> Protection:
    """Create the profile's encrypted store at ``level`` (or the default level) and say which level was used."""
    local = local or ctx.open_local()
    if local.exists():
        raise UsageError(f"profile '{local.profile}' already exists at {local.path}")
    if level is None:
        kind, _why = default_level(ctx)
        note = "; the key is in your OS keyring" if kind == "keyring" else "; no working OS keyring was found"
    else:
        kind, note = protection(level).kind, ""
    config.create_local(local, kind, facts, ctx.environ, options)
    chosen = protection(kind)
    # One short line in plain words (doctor says where the file is and which keyring backend is used).
    ctx.info(f"created profile '{local.profile}' (protection: {kind}{note})")
    if chosen.needs_unlock and chosen.caches_data_key:
        unlocked = _unlocked_for(local)
        if unlocked:
            ctx.info(f"unlocked it for this login session {unlocked}; `credstore {ctx.profile_flag}lock` locks it")
        else:
            _say_why_still_locked(ctx)
    if chosen.strength <= 1:
        ctx.warn(
            f"{kind} is the weakest level: anyone who can read your home directory (a backup, an NFS snapshot, "
            f"another person on this account) can decrypt it; consider: credstore {ctx.profile_flag}"
            "protect passphrase"
        )
    return chosen


def _say_why_still_locked(ctx: Context) -> None:
    """A new store that could not be kept unlocked where this login has no usable session cache (no private runtime
    directory, keyctl blocked, an exposed session keyring): say so, or the next ``env`` fails with no word of why.
    Quiet where the cache merely waits for a session keyring (``unlock`` makes one)."""
    from credstore.crypto.session_cache import state

    kind, why = state()
    if kind == "unavailable":
        ctx.warn(f"it stays locked: the unlock cannot be cached here ({why}); `credstore env` will report it locked")


def _unlocked_for(local: LocalStore) -> str | None:
    """How long a new store stays unlocked (its data key went into the session cache), or None if it did not."""
    from credstore.crypto.session_cache import SessionDekCache
    from credstore.durations import format_duration

    cache = local.dek_cache
    if not isinstance(cache, SessionDekCache) or cache.get(local.read_header()[0].store_id) is None:
        return None
    until = time.strftime("%H:%M", time.localtime(time.time() + cache.ttl_seconds))
    return f"for {format_duration(cache.ttl_seconds)} (until {until})"


def ensure_profile(ctx: Context, backend: Backend) -> bool:
    """Create the profile if it does not exist yet (the first ``set`` does this). True if it was created."""
    if backend.exists():
        return False
    assert isinstance(backend, LocalStore)  # a remote profile exists once configured
    create_profile(ctx, local=backend)
    ctx.audit("init", via="first write")
    return True


def unlock(
    ctx: Context, ttl_seconds: int, *, ssh_signature: str | None = None, slot_id: int | None = None
) -> str | None:
    """Open a key slot (always: an unlock already in place proves nothing about this one) and cache the data key
    for this login session. Returns the note to show, None when no slot's level needs an unlock.
    ``ssh_signature``: the armoured ``ssh-keygen -Y sign`` output over the ssh-agent slot's challenge (recovery
    without the agent)."""
    from credstore.crypto.session_cache import CacheUnavailable, SessionDekCache, session_keyring_shared_with_other_uid
    from credstore.durations import format_duration

    options = {"ssh-signature": ssh_signature} if ssh_signature is not None else None
    local = ctx.open_local(options=options)
    header, ad, ciphertext = local.read_header()
    levels = [protection(slot.kind, for_reading=True) for slot in header.slots]
    if not any(level.caches_data_key for level in levels):
        kinds = "+".join(level.kind for level in levels)
        ctx.warn(
            f"profile '{local.profile}' uses {kinds} protection, which needs no unlock (and protects little); "
            f"to require a passphrase: credstore {ctx.profile_flag}protect passphrase"
        )
        return None
    if ssh_signature is not None:
        slot_id = _ssh_slot(header, slot_id, local.profile).slot_id
    try:
        dek = local.derive_data_key(header, only=slot_id)
    except AuthError:
        ctx.audit("failed-unlock", via="unlock")
        raise
    envelope.open_payload(header, ad, ciphertext, dek)  # the key really opens this store
    try:
        note = SessionDekCache.prepare()
        SessionDekCache.store(header.store_id, dek, ttl_seconds)
    except CacheUnavailable as exc:
        raise CredstoreError(
            f"the passphrase is correct, but the unlock cannot be cached here: {exc}. credstore will ask each "
            "time instead (`credstore exec`, `set` and `get` prompt on a terminal; `credstore env` stays locked)"
        ) from None
    if note:
        ctx.warn(note)
    shared = session_keyring_shared_with_other_uid()
    if shared:
        ctx.warn(f"note: {shared}; what is cached there is useless to them without this account's private file")
    ctx.audit("unlock")
    until = time.strftime("%H:%M", time.localtime(time.time() + ttl_seconds))
    return (
        f"unlocked profile '{local.profile}' for this login session for {format_duration(ttl_seconds)} "
        f"(until {until}); `credstore {ctx.profile_flag}lock` locks it again"
    )


def lock(ctx: Context) -> bool:
    """Forget this login session's unlock of the profile. True if it was unlocked."""
    from credstore.app import render_cache
    from credstore.crypto.session_cache import SessionDekCache

    local = ctx.open_local()
    header, _, _ = local.read_header()
    # what `env` kept for this login goes with the key
    render_cache.forget(render_cache.store_home(ctx.environ), ctx.profile, ctx.environ)
    removed = SessionDekCache.remove(header.store_id)
    if removed:
        ctx.audit("lock")
    return removed


def passwd(ctx: Context, *, drop_other_slots: bool = False) -> None:
    """Change the passphrase: a new passphrase slot and a new data key (every value re-encrypted, every other slot
    re-wrapped; see ``LocalStore.rekey``)."""
    local = ctx.open_local(use_session_cache=False)
    header, _, _ = local.read_header()
    slots = [slot for slot in header.slots if protection(slot.kind, for_reading=True).needs_person]
    if not slots:
        raise UsageError(
            f"profile '{local.profile}' is protected by {local.protection_kind()}, not a passphrase; to use one: "
            f"credstore {ctx.profile_flag}protect passphrase"
        )
    target = slots[0].slot_id
    local.derive_data_key(header, only=target)  # the current passphrase, first (before the new one is asked)
    local.rekey(renew=target, drop_unopenable=drop_other_slots)
    ctx.audit("passwd", slot=target)


def protect(
    ctx: Context, level: str, options: dict[str, str] | None = None, *, rekey: bool = True
) -> tuple[list[Protection], Protection, int] | None:
    """Replace every key slot by one at ``level`` (and, by default, make a new data key), every entry kept:
    (old levels, new level, entries kept), or None when the profile has exactly one slot at that level already."""
    local = ctx.open_local(use_session_cache=False)
    header, _, _ = local.read_header()
    if len(header.slots) == 1 and header.kek_kind == protection(level).kind and not options:
        return None
    count = len(local.read().entries)
    old, new = local.change_protection(level, options, rekey=rekey)
    config.update_ssh_index(ctx.environ)
    ctx.audit("protect", level=new.kind, outcome="new data key" if rekey else "data key kept")
    return old, new, count


def add_slot(ctx: Context, level: str, options: dict[str, str] | None = None) -> dict[str, object]:
    """Add a key slot at ``level`` (the store is opened first: any existing slot); returns its ``protect list`` row."""
    local = ctx.open_local()
    slot = local.add_slot(level, options)
    config.update_ssh_index(ctx.environ)
    row = next(row for row in local.slots() if row["slot"] == slot.slot_id)
    ctx.audit("protect-add", slot=slot.slot_id, level=slot.kind, key=row.get("fingerprint"))
    return row


def remove_slot(ctx: Context, slot_id: int) -> envelope.Slot:
    local = ctx.open_local()
    slot = local.remove_slot(slot_id)
    config.update_ssh_index(ctx.environ)
    ctx.audit("protect-remove", slot=slot_id, level=slot.kind)
    return slot


def rotate_slot(ctx: Context, slot_id: int) -> envelope.Slot:
    local = ctx.open_local()
    slot = local.rotate_slot(slot_id)
    ctx.audit("protect-rotate-slot", slot=slot_id, level=slot.kind)
    return slot


def list_slots(ctx: Context) -> list[dict[str, object]]:
    return ctx.open_local().slots()


def rekey(ctx: Context, *, drop_other_slots: bool = False) -> envelope.Header:
    """A new data key for a suspected leak: every value re-encrypted, every slot re-wrapped."""
    local = ctx.open_local(use_session_cache=False)
    header = local.rekey(drop_unopenable=drop_other_slots)
    ctx.audit("rekey", outcome=f"{len(header.slots)} slots re-wrapped")
    return header


def accept_store(ctx: Context) -> envelope.Header:
    """Accept the profile's store as it is now (after replacing it, or changing its protection, by hand)."""
    local = ctx.open_local()
    header = local.accept_store()
    ctx.audit("accept-store", level="+".join(slot.kind for slot in header.slots))
    return header


def recovery_challenge(ctx: Context, slot_id: int | None = None) -> tuple[int, bytes]:
    """(slot id, the bytes to sign with ``ssh-keygen -Y sign``) for the profile's ssh-agent slot."""
    from credstore.crypto.sshagent_level import challenge_for

    local = ctx.open_local()
    header, _, _ = local.read_header()
    slot = _ssh_slot(header, slot_id, local.profile)
    return slot.slot_id, challenge_for(slot.params, header.store_id, slot.slot_id)


def _ssh_slot(header: envelope.Header, slot_id: int | None, profile: str) -> envelope.Slot:
    candidates = [s for s in header.slots if s.kind == "ssh-agent" and (slot_id is None or s.slot_id == slot_id)]
    if len(candidates) != 1:
        which = f"slot {slot_id} is not an ssh-agent slot" if slot_id is not None else "name one with --slot"
        if not candidates and slot_id is None:
            which = "it has no ssh-agent slot"
        raise UsageError(f"profile '{profile}': {which}")
    return candidates[0]
