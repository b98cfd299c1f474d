"""Changing and showing stored entries: set / add (put), get, rm, list, accept-rollback."""

from __future__ import annotations

import time
from collections.abc import Sequence

from credstore import catalog
from credstore.app.context import Context
from credstore.app.protection import ensure_profile
from credstore.errors import NotFoundError, UsageError
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
    catalog.check_value(name, value)
    check_length(name, value)
    warning = catalog.format_warning(name, value)
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


def set_value(snapshot: Snapshot, name: str, value: str, secret: bool, now: float) -> None:
    """Put ``value`` under ``name``: a new entry, or the old one with the new value (its creation time, rotation
    history and previous value kept)."""
    old = snapshot.entries.get(name)
    if old is None:
        snapshot.entries[name] = Entry(name, value, secret, created=now, updated=now)
    else:
        snapshot.entries[name] = old._replace(value=value, secret=secret, updated=now)


def put_values(backend: Backend, values: Sequence[tuple[str, str, bool]]) -> None:
    """Store ``(name, value, secret)`` triples in one write (previous values whose grace period is over are
    forgotten on the way)."""
    now = time.time()

    def change(snapshot: Snapshot) -> None:
        drop_expired_previous(snapshot, now)
        for name, value, secret in values:
            set_value(snapshot, name, value, secret, now)

    backend.modify(change)


def put(
    ctx: Context, values: Sequence[tuple[str, str, bool]], *, via: str | None = None, allow_dangerous: bool = False
) -> str:
    """``set`` / ``add``: store the values in the person's profile (created on the first write). Returns the
    profile's name. A name that changes how programs run (``catalog.is_dangerous``) needs ``allow_dangerous``."""
    for name, value, _ in values:
        if catalog.is_dangerous(name) and not allow_dangerous:
            refuse_dangerous(name, "set")
        accept_value(ctx, name, value)
    backend = ctx.open_profile()
    ensure_profile(ctx, backend)
    put_values(backend, values)
    ctx.audit("set", names=[name for name, _, _ in values], via=via)
    return ctx.profile


def get(ctx: Context, name: str) -> str:
    """The stored value of ``name`` (audited as a read)."""
    catalog.check_name(name)
    backend = ctx.open_profile()
    entry = ctx.read(backend).entries.get(name)
    if entry is None:
        raise NotFoundError(f"{name} is not stored in profile '{ctx.profile}'")
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


def age(seconds_since_epoch: float, now: float | None = None) -> str:
    delta = max(0.0, (now or time.time()) - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"


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
