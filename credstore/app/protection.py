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
    raise UsageError(
        f"cannot choose a protection level for a new profile: {reason}, and no terminal to ask "
        "for a passphrase. Create the profile first with one of: "
        "`printf '%s\\n' \"$PASSPHRASE\" | credstore init --protection passphrase`, "
        "`credstore init --protection keyfile` (weakest: anyone who can read your home directory can decrypt it), "
        "or start a Secret Service and use `credstore init --protection keyring`"
    )


def create_profile(
    ctx: Context, level: str | None = None, *, local: LocalStore | None = None, facts: dict[str, str] | None = None
) -> Protection:
    """Create the profile's encrypted store at ``level`` (or the default level) and say which level was used."""
    local = local or ctx.open_local()
    if local.exists():
        raise UsageError(f"profile '{local.profile}' already exists at {local.path}")
    if level is None:
        kind, why = default_level(ctx)
        note = f" (chosen because {why})" if kind != "keyring" else f" ({why})"
    else:
        kind, note = protection(level).kind, ""
    config.create_local(local, kind, facts, ctx.environ)
    chosen = protection(kind)
    ctx.warn(f"created profile '{local.profile}' at {local.path} (protection: {kind}){note}")
    if chosen.strength <= 1:
        ctx.warn(
            f"{kind} is the weakest level: anyone who can read your home directory (a backup, an NFS snapshot, "
            f"another person on this account) can decrypt it; consider: credstore {ctx.profile_flag}"
            "protect passphrase"
        )
    return chosen


def ensure_profile(ctx: Context, backend: Backend) -> bool:
    """Create the profile if it does not exist yet (the first ``set`` does this). True if it was created."""
    if backend.exists():
        return False
    assert isinstance(backend, LocalStore)  # a remote profile exists once configured
    create_profile(ctx, local=backend)
    ctx.audit("init", via="first write")
    return True


def unlock(ctx: Context, ttl_seconds: int) -> str | None:
    """Check the passphrase (always: an unlock already in place proves nothing about this one) and cache the data
    key for this login session. Returns the note to show, None when the level needs no unlock."""
    from credstore.crypto.session_cache import CacheUnavailable, SessionDekCache, session_keyring_shared_with_other_uid
    from credstore.durations import format_duration

    local = ctx.open_local()
    header, ad, ciphertext = local.read_header()
    level = protection(header.kek_kind, for_reading=True)
    if not level.caches_data_key:
        ctx.warn(
            f"profile '{local.profile}' uses {level.kind} protection, which needs no unlock (and protects little); "
            f"to require a passphrase: credstore {ctx.profile_flag}protect passphrase"
        )
        return None
    try:
        dek = local.derive_data_key(header, level)
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


def passwd(ctx: Context) -> None:
    """Change the passphrase (the data key is re-wrapped under the new one)."""
    local = ctx.open_local(use_session_cache=False)
    kind = local.protection_kind()
    if kind != "passphrase":
        raise UsageError(
            f"profile '{local.profile}' is protected by {kind}, not a passphrase; to use one: "
            f"credstore {ctx.profile_flag}protect passphrase"
        )
    local.change_protection(kind)


def protect(ctx: Context, level: str) -> tuple[Protection, Protection, int] | None:
    """Move the profile to another level, every entry kept: (old level, new level, entries kept), or None when it
    is at that level already."""
    from credstore.crypto.session_cache import SessionDekCache

    local = ctx.open_local(use_session_cache=False)
    header, _, _ = local.read_header()
    if header.kek_kind == protection(level).kind:
        return None
    count = len(local.read().entries)
    old, new = local.change_protection(level)
    if not new.caches_data_key:
        SessionDekCache.remove(header.store_id)
    return old, new, count
