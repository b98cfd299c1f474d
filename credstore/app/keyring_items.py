"""Keyring items: passwords kept for other tools, keyed by an exact ``(service, username)`` pair.

The ``keyring`` backend (``integrations/keyring_backend.py``), the git credential helper
(``integrations/git_credential.py``) and ``credstore keyring`` all come here. Items live in the person's profile, in
its settings (``Snapshot.settings``), so they are encrypted like everything else, work at every protection level and
on OpenBao profiles (``<path>/settings``) without a format change, are never exported by ``env`` and never shown by
``list``:

    key   "keyring:" + json.dumps([service, username])        username None = none given, distinct from ""
    value json.dumps({"password": ..., "created": t, "updated": t})

Service and username are kept exactly (case, whitespace, newlines, ``/``, ``=``, non-ASCII), so nothing collides
with an environment variable. Reads and changes are audited with the pair's label only, never the password.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import NamedTuple

from credstore.app.context import Context
from credstore.app.protection import ensure_profile
from credstore.errors import NotFoundError, UsageError
from credstore.store.base import Backend, Snapshot

PREFIX = "keyring:"
#: Limits that keep one item far below what the store or an OpenBao request can carry.
MAX_NAME = 4096
MAX_PASSWORD = 131071


class Item(NamedTuple):
    """One stored pair. ``password`` is kept out of ``repr`` so it never reaches a log."""

    service: str
    username: str | None
    password: str
    created: float = 0.0
    updated: float = 0.0

    def __repr__(self) -> str:
        return f"Item(service={self.service!r}, username={self.username!r}, updated={self.updated})"

    @property
    def label(self) -> str:
        return label(self.service, self.username)


def label(service: str, username: str | None) -> str:
    """How a pair is named in audit lines and messages (never with its password)."""
    return service if username is None else f"{username}@{service}"


def git_service(protocol: str, host: str, path: str = "") -> str:
    """The service of a git credential (the git credential helper and ``import git-credentials``): the host with
    its port, the path only when git sends one (``credential.useHttpPath``)."""
    return f"git:{protocol}://{host}" + (f"/{path}" if path else "")


def setting_key(service: str, username: str | None) -> str:
    return PREFIX + json.dumps([service, username])


def parse_setting(key: str, value: str) -> Item | None:
    """The item stored under a settings key, None for other settings (and for malformed items, which are skipped:
    a hand-edited OpenBao settings secret must not break every lookup)."""
    if not key.startswith(PREFIX):
        return None
    try:
        service, username = json.loads(key[len(PREFIX) :])
        data = json.loads(value)
        password = data["password"]
        created, updated = float(data.get("created", 0.0)), float(data.get("updated", 0.0))
    except (ValueError, TypeError, KeyError):
        return None
    if type(service) is not str or not (username is None or type(username) is str) or type(password) is not str:
        return None
    return Item(service, username, password, created, updated)


def items_of(snapshot: Snapshot) -> list[Item]:
    """Every item of a profile, sorted by (service, username)."""
    found = (parse_setting(key, value) for key, value in snapshot.settings.items())
    return sorted((i for i in found if i is not None), key=lambda i: (i.service, i.username is not None, i.username))


def pick(candidates: Iterable[Item]) -> Item | None:
    """The item a lookup without a username gets when a service has several: the one set most recently (ties: the
    smallest username, no username first). Deterministic for a given store."""
    ordered = sorted(candidates, key=lambda i: (-i.updated, i.username is not None, i.username or ""))
    return ordered[0] if ordered else None


def check_pair(service: str, username: str | None) -> None:
    if not isinstance(service, str) or not (username is None or isinstance(username, str)):
        raise UsageError("a keyring service and username must be strings")
    if len(service) > MAX_NAME or (username is not None and len(username) > MAX_NAME):
        raise UsageError(f"a keyring service or username is longer than {MAX_NAME} characters; nothing was stored")


# -- reading -------------------------------------------------------------------------------------------------------


def _read(ctx: Context) -> tuple[Backend, Snapshot] | None:
    """The profile and its contents, or None when the profile does not exist yet (nothing is stored then)."""
    backend = ctx.open_profile()
    if not backend.exists():
        return None
    return backend, ctx.read(backend)


def _found(ctx: Context, backend: Backend, item: Item | None) -> Item | None:
    if item is not None:
        ctx.audit("keyring-get", names=[item.label], sources={item.label: backend.source})
    return item


def get(ctx: Context, service: str, username: str | None) -> Item | None:
    """The item stored for exactly ``(service, username)`` (``username`` None: the item stored without one)."""
    check_pair(service, username)
    opened = _read(ctx)
    if opened is None:
        return None
    backend, snapshot = opened
    value = snapshot.settings.get(setting_key(service, username))
    return _found(ctx, backend, None if value is None else parse_setting(setting_key(service, username), value))


def get_any(ctx: Context, service: str) -> Item | None:
    """One item of ``service`` whatever its username, chosen by :func:`pick` (pip, twine and poetry look up an
    index with no username)."""
    check_pair(service, None)
    opened = _read(ctx)
    if opened is None:
        return None
    backend, snapshot = opened
    return _found(ctx, backend, pick(i for i in items_of(snapshot) if i.service == service))


def list_items(ctx: Context) -> list[dict[str, object]]:
    """``credstore keyring list``: the pairs with their times, never a password (not a read of any value, so not
    audited)."""
    from credstore.durations import age

    opened = _read(ctx)
    if opened is None:
        return []
    now = time.time()
    return [
        {
            "profile": ctx.profile,
            "service": i.service,
            "username": i.username,
            "created": i.created,
            "updated": i.updated,
            "age": age(i.updated, now),
        }
        for i in items_of(opened[1])
    ]


# -- changing ------------------------------------------------------------------------------------------------------


def encode(password: str, created: float, updated: float) -> str:
    return json.dumps({"password": password, "created": created, "updated": updated})


def check_password(service: str, username: str | None, password: str) -> None:
    if not isinstance(password, str):
        raise UsageError("a keyring password must be a string")
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD:
        raise UsageError(f"the password for {label(service, username)!r} is longer than 128 KiB; nothing was stored")


def put(ctx: Context, service: str, username: str | None, password: str) -> str:
    """Store ``password`` for ``(service, username)`` (the profile is created on the first write, as by ``set``).
    Returns ``"created"``, ``"replaced"``, or ``"unchanged"`` when that password was stored already (then nothing
    is written: git approves a credential after every successful use)."""
    check_pair(service, username)
    check_password(service, username, password)
    key = setting_key(service, username)
    backend = ctx.open_profile()
    if not ensure_profile(ctx, backend):  # an existing profile: skip a write that would change nothing
        try:
            current = ctx.read(backend).settings.get(key)
        except NotFoundError:  # an OpenBao profile nothing was written to yet
            current = None
        previous = None if current is None else parse_setting(key, current)
        if previous is not None and previous.password == password:
            return "unchanged"
    now = time.time()

    def change(snapshot: Snapshot) -> str:
        old = snapshot.settings.get(key)
        previous = None if old is None else parse_setting(key, old)
        snapshot.settings[key] = encode(password, previous.created if previous is not None else now, now)
        return "created" if old is None else "replaced"

    outcome = backend.modify(change)
    ctx.audit("keyring-set", names=[label(service, username)])
    return outcome


def remove(ctx: Context, service: str, username: str | None) -> None:
    """Delete the item of exactly ``(service, username)``; NotFoundError when there is none."""
    check_pair(service, username)
    if remove_matching(ctx, service, [username]) == 0:
        raise NotFoundError(f"no keyring item for {label(service, username)!r} in profile '{ctx.profile}'")


def remove_matching(ctx: Context, service: str, usernames: list[str | None] | None, password: str | None = None) -> int:
    """Delete the items of ``service`` whose username is one of ``usernames`` (None: any username) and, when
    ``password`` is given, whose password is that one (git's ``erase`` after a rejected password must not erase a
    newer one). Returns how many were deleted; a profile that does not exist holds none."""
    backend = ctx.open_profile()
    if not backend.exists():
        return 0

    def change(snapshot: Snapshot) -> list[str]:
        removed = []
        for item in items_of(snapshot):
            if item.service != service or (usernames is not None and item.username not in usernames):
                continue
            if password is not None and item.password != password:
                continue
            del snapshot.settings[setting_key(item.service, item.username)]
            removed.append(item.label)
        return removed

    # Read first: a lookup that finds nothing must not write (or bump the generation of) the store.
    if not any(
        i.service == service
        and (usernames is None or i.username in usernames)
        and (password is None or i.password == password)
        for i in items_of(ctx.read(backend))
    ):
        return 0
    removed = backend.modify(change)
    if removed:
        ctx.audit("keyring-rm", names=removed)
    return len(removed)


def merge(
    ctx: Context, found: list[tuple[str, str | None, str]], source: str, *, overwrite: bool
) -> tuple[list[str], list[str], list[str]]:
    """Store ``(service, username, password)`` triples in one write (``credstore import git-credentials``).
    Returns the labels (imported, already stored with the same password, conflicting with a different one)."""
    for service, username, password in found:
        check_pair(service, username)
        check_password(service, username, password)
    backend = ctx.open_profile()
    ensure_profile(ctx, backend)
    now = time.time()

    def change(snapshot: Snapshot) -> tuple[list[str], list[str], list[str]]:
        imported, same, conflicts = [], [], []
        for service, username, password in found:
            key = setting_key(service, username)
            old = snapshot.settings.get(key)
            previous = None if old is None else parse_setting(key, old)
            if previous is not None and previous.password == password:
                same.append(label(service, username))
                continue
            if previous is not None and not overwrite:
                conflicts.append(label(service, username))
                continue
            snapshot.settings[key] = encode(password, previous.created if previous is not None else now, now)
            imported.append(label(service, username))
        return imported, same, conflicts

    imported, same, conflicts = backend.modify(change) if found else ([], [], [])
    if imported:
        ctx.audit("import", names=imported, via=source)
    return imported, same, conflicts
