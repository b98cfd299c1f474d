"""Changing and showing stored entries: set / add (put), get, rm, list, accept-rollback."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from credstore import catalog
from credstore.app.context import Context
from credstore.app.protection import ensure_profile
from credstore.durations import age
from credstore.errors import CredstoreError, NotFoundError, UsageError
from credstore.resolver.layers import MASK
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.shared import drop_expired_previous

#: Linux limits one "NAME=value" string in an environment to MAX_ARG_STRLEN (32 pages = 128 KiB), so a longer value
#: could be stored but never exported: refuse it at the door.
MAX_ENV_STRING = 131072 - 1


def check_length(name: str, value: str) -> None:
    if len(name) + 1 + len(value.encode()) > MAX_ENV_STRING:
        raise UsageError(
            f"the value for {name} is longer than an environment variable can be on Linux (128 KiB); nothing was stored"
        )


def accept_value(ctx: Context, name: str, value: str) -> None:
    """Check a value about to be stored: refuse what no environment can carry (NUL, empty, over 128 KiB); warn when
    it does not look like what ``name`` usually holds (the value itself is never shown)."""
    catalog.check_value(name, value, ctx.profile_flag)
    check_length(name, value)
    for warning in (catalog.near_miss(name), catalog.format_warning(name, value)):
        if warning:
            ctx.warn(warning)


def refuse_dangerous(name: str, command: str) -> None:
    """A name that changes how programs or shells run (catalog.DANGEROUS_NAMES), stored without saying so."""
    raise UsageError(
        f"{name} changes how programs or shells run, and every shell or program credstore hands it to would get it; "
        f"if you mean it, run: credstore {command} --allow-dangerous {name}"
    )


def refuse_secret_on_argv(name: str, command: str) -> None:
    """A secret given as a command-line argument: `ps` shows argv to every user."""
    raise UsageError(
        f"refusing to take the secret {name} from the command line, where `ps` shows it to every user; "
        f'pipe it instead: printf %s "$VALUE" | credstore {command} (or run `credstore {command}` and type it)'
    )


#: How long ``set`` keeps a replaced value for ``credstore rollback`` (the same grace as ``rotate``'s default).
REPLACE_GRACE = 7 * 86400


class NothingChanged(CredstoreError):
    """The person declined to replace a stored value (exit 1)."""


def set_value(snapshot: Snapshot, name: str, value: str, secret: bool, now: float) -> bool:
    """Put ``value`` under ``name``: a new entry, or the old one with the new value (its creation time and history
    kept). Replacing a value is a rotation: the old value is kept for ``REPLACE_GRACE`` so ``credstore rollback NAME``
    restores it. True when a different value was replaced."""
    old = snapshot.entries.get(name)
    if old is None:
        snapshot.entries[name] = Entry(name, value, secret, created=now, updated=now)
        return False
    if old.value == value:
        snapshot.entries[name] = old._replace(secret=secret, updated=now)
        return False
    snapshot.entries[name] = old._replace(
        value=value,
        secret=secret,
        updated=now,
        rotations=(*old.rotations, now),
        previous=old.value,
        previous_expires=now + REPLACE_GRACE,
    )
    return True


def put_values(backend: Backend, values: Sequence[tuple[str, str, bool]]) -> list[str]:
    """Store ``(name, value, secret)`` triples in one write (previous values whose grace period is over are
    forgotten on the way). Returns the names whose different value was replaced (kept for rollback)."""
    now = time.time()

    def change(snapshot: Snapshot) -> list[str]:
        drop_expired_previous(snapshot, now)
        return [name for name, value, secret in values if set_value(snapshot, name, value, secret, now)]

    return backend.modify(change)


def put(
    ctx: Context,
    values: Sequence[tuple[str, str, bool]],
    *,
    via: str | None = None,
    confirm_replace: Callable[[list[str]], bool] | None = None,
    allow_dangerous: bool = False,
) -> tuple[str, list[str]]:
    """``set``: store the values in the person's profile (created on the first write). ``confirm_replace``: asked
    with the names of stored secrets about to get a different value; no means nothing changes (``NothingChanged``).
    A name that changes how programs run (``catalog.is_dangerous``) needs ``allow_dangerous``. Returns the profile's
    name and the names replaced."""
    for name, value, _ in values:
        if catalog.is_dangerous(name) and not allow_dangerous:
            refuse_dangerous(name, "set")
        accept_value(ctx, name, value)
    backend = ctx.open_profile()
    created = ensure_profile(ctx, backend)
    if confirm_replace is not None and not created:
        current = ctx.read(backend).entries
        replacing = [n for n, v, _ in values if n in current and current[n].secret and current[n].value != v]
        if replacing and not confirm_replace(replacing):
            raise NothingChanged(f"kept the stored {', '.join(replacing)}; nothing changed")
    return ctx.profile, _write(ctx, backend, values, via)


def put_guided(
    ctx: Context,
    collect: Callable[[Mapping[str, Entry]], Sequence[tuple[str, str, bool]]],
    *,
    via: str | None = None,
) -> tuple[str, list[str], list[str]]:
    """``add``: ``collect(stored entries)`` asks for the values (showing what is stored), then they are stored in
    one write; a locked store is opened (asked for) once, before the questions. Returns the profile's name, the
    names stored and the names replaced."""
    backend = ctx.open_profile()
    current = ctx.read(backend).entries if backend.exists() else {}
    values = list(collect(current))
    if not values:
        return ctx.profile, [], []
    for name, value, _ in values:
        accept_value(ctx, name, value)
    ensure_profile(ctx, backend)
    replaced = _write(ctx, backend, values, via)
    return ctx.profile, [name for name, _, _ in values], replaced


def _write(ctx: Context, backend: Backend, values: Sequence[tuple[str, str, bool]], via: str | None) -> list[str]:
    replaced = put_values(backend, values)
    ctx.audit("set", names=[name for name, _, _ in values], via=via)
    return replaced


def get(ctx: Context, name: str) -> str:
    """The stored value of ``name`` (audited as a read)."""
    catalog.check_name(name)
    ctx.openbao_bound()  # a malformed render-cache bound is an error, as for env and exec
    backend = ctx.open_profile()
    stored = ctx.read(backend).entries
    entry = stored.get(name)
    if entry is None:
        meant = catalog.close_match(name, stored)
        hint = f"; did you mean {meant}?" if meant else ""
        raise NotFoundError(f"{name} is not stored in profile '{ctx.profile}'{hint}")
    ctx.audit("get", names=[name], sources={name: backend.source})
    return entry.value


def remove(ctx: Context, names: Sequence[str]) -> list[str]:
    for name in names:
        catalog.check_name(name)
    backend = ctx.open_profile()

    def change(snapshot: Snapshot) -> list[str]:
        missing = [n for n in names if n not in snapshot.entries]
        if missing:
            raise NotFoundError(f"not stored in profile '{ctx.profile}': {', '.join(missing)}; nothing removed")
        for n in names:
            del snapshot.entries[n]
        return list(names)

    removed = backend.modify(change)
    ctx.audit("rm", names=removed)
    return removed


def entry_rows(scope: str, snapshot: Snapshot, now: float) -> list[dict[str, object]]:
    """One row per entry (values masked when secret), for ``list``, ``status`` and ``service show``."""
    rows: list[dict[str, object]] = []
    for name, entry in sorted(snapshot.entries.items()):
        rows.append(
            {
                "scope": scope,
                "name": name,
                "secret": entry.secret,
                "created": entry.created,
                "updated": entry.updated,
                "age": age(entry.updated, now),
                "rotations": len(entry.rotations),
                "last_rotation": entry.rotations[-1] if entry.rotations else None,
                "previous_until": entry.previous_expires
                if entry.previous is not None and (entry.previous_expires or 0) > now
                else None,
                "value": MASK if entry.secret else entry.value,
            }
        )
    return rows


def list_rows(ctx: Context) -> list[dict[str, object]]:
    """``list``: the profile's entries, secret values masked entirely."""
    backend = ctx.open_profile()
    rows = entry_rows(backend.source, ctx.read(backend), time.time())
    return [
        {
            "profile": ctx.profile,
            "name": r["name"],
            "service": catalog.service_of(str(r["name"])) or "-",
            "secret": r["secret"],
            "age": r["age"],
            "value": r["value"],
        }
        for r in rows
    ]


def accept_rollback(ctx: Context) -> int:
    """Accept a store restored from an older copy on purpose (clears the rollback alarm)."""
    return ctx.open_local().accept_rollback()
