"""Team service accounts: add / set / unset / allow / show / rekey / rm (admin), list, members, accept and
use-service (person); and what a service account may export (``exportable``)."""

from __future__ import annotations

import grp
import pwd
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from credstore import catalog, config
from credstore.app.context import Context
from credstore.app.entries import accept_value, entry_rows, put_values
from credstore.app.protection import ensure_profile
from credstore.errors import NotFoundError, UsageError
from credstore.resolver.gather import DEFAULT_SERVICE_SETTING
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.shared import ServiceInfo, ServiceStore, check_service_name, user_name

#: Service setting: the names beyond the catalog the admin allows the service to export, comma-separated.
ALLOW_SETTING = "allow"


def open_shared(ctx: Context, name: str) -> ServiceStore:
    store: ServiceStore = config.open_shared_service(check_service_name(name), ctx.environ)
    return store


def add(ctx: Context, name: str, group: str) -> ServiceStore:
    store = open_shared(ctx, name)
    store.create(group)
    ctx.audit("service-add", service=store.name, via=f"group={group}", service_only=True)
    return store


# -- what a service account may export ---------------------------------------------------------------------------


def allowed_names(settings: Mapping[str, str]) -> list[str]:
    """The names beyond the catalog the service's admin allowed (``service allow``), sorted."""
    return sorted({n for n in settings.get(ALLOW_SETTING, "").split(",") if n})


class Exportable(NamedTuple):
    """A service's entries split by what it may export: ``entries`` (catalog names and names its admin allowed),
    ``dangerous`` (names that change how programs run: never) and ``unlisted`` (neither catalog nor allowed)."""

    entries: dict[str, Entry]
    allowed: frozenset[str]
    dangerous: list[str]
    unlisted: list[str]


def exportable(snapshot: Snapshot) -> Exportable:
    allowed = frozenset(allowed_names(snapshot.settings))
    kept: dict[str, Entry] = {}
    dangerous: list[str] = []
    unlisted: list[str] = []
    for name, entry in snapshot.entries.items():
        if catalog.is_dangerous(name):
            dangerous.append(name)
        elif name in catalog.VARIABLES or name in allowed:
            kept[name] = entry
        else:
            unlisted.append(name)
    return Exportable(kept, allowed - catalog.VARIABLES.keys(), sorted(dangerous), sorted(unlisted))


def export_warnings(name: str, split: Exportable) -> list[str]:
    """One line per kind of refused name, naming them (never a value)."""
    out = []
    if split.dangerous:
        out.append(
            f"warning: service account '{name}' holds {', '.join(split.dangerous)}, which change how programs or "
            "shells run; a service account never exports them (tell its admin)"
        )
    if split.unlisted:
        out.append(
            f"warning: service account '{name}' holds {', '.join(split.unlisted)}, which its admin has not allowed "
            f"(credstore service allow {name} NAME); not exported"
        )
    return out


def check_variable(variable: str) -> None:
    """A name a service account may hold at all: valid, not attribution, not one that changes how programs run."""
    catalog.check_name(variable)
    if variable in catalog.ATTRIBUTION_VARIABLES:
        raise UsageError(
            f"{variable} names the person a run is attributed to, so it is never taken from a service account; "
            f"each member sets their own: credstore set {variable} ..."
        )
    if catalog.is_dangerous(variable):
        raise UsageError(
            f"{variable} changes how programs or shells run, so a service account never exports it (its admin "
            "would run code as every member); each member who needs it sets their own"
        )


def check_settable(store: ServiceStore, variable: str) -> None:
    """``check_variable``, and a name outside the catalog only once the admin allowed it (``service allow``)."""
    check_variable(variable)
    if variable not in catalog.VARIABLES and variable not in allowed_names(store.read().settings):
        raise UsageError(
            f"{variable} is not a variable credstore knows, and a service account exports only those unless its "
            f"admin allows a name: credstore service allow {store.name} {variable}"
        )


def put(ctx: Context, store: ServiceStore, variable: str, value: str, secret: bool) -> None:
    check_settable(store, variable)
    accept_value(ctx, variable, value)
    put_values(store, [(variable, value, secret)])
    ctx.audit("service-set", service=store.name, names=[variable], service_only=True)


def allow(ctx: Context, name: str, variable: str, *, remove: bool = False) -> tuple[Backend, list[str]]:
    """Let service account NAME export ``variable`` beyond the catalog (or stop it: ``remove``). Kept in the
    service's own settings, so every member's read applies it. Returns the account and the allowed names."""
    check_service_name(name)
    check_variable(variable)
    if variable in catalog.VARIABLES and not remove:
        raise UsageError(f"{variable} is a catalog variable: service accounts export it without being allowed")
    account = ctx.open_service(name)

    def change(snapshot: Snapshot) -> list[str]:
        names = set(allowed_names(snapshot.settings))
        if remove:
            names.discard(variable)
        else:
            names.add(variable)
        if names:
            snapshot.settings[ALLOW_SETTING] = ",".join(sorted(names))
        else:
            snapshot.settings.pop(ALLOW_SETTING, None)
        return sorted(names)

    names = account.modify(change)
    ctx.audit(
        "service-allow",
        service=name,
        names=[variable],
        via="remove" if remove else None,
        service_only=isinstance(account, ServiceStore),
    )
    return account, names


def unset(ctx: Context, name: str, variables: tuple[str, ...]) -> ServiceStore:
    store = open_shared(ctx, name)
    for variable in variables:
        catalog.check_name(variable)

    def change(snapshot: Snapshot) -> None:
        missing = [v for v in variables if v not in snapshot.entries]
        if missing:
            raise NotFoundError(f"not stored in service account '{name}': {', '.join(missing)}; nothing removed")
        for v in variables:
            del snapshot.entries[v]

    store.modify(change)
    ctx.audit("service-set", service=store.name, names=list(variables), via="unset", service_only=True)
    return store


def list_accounts(ctx: Context) -> tuple[list[ServiceInfo], str]:
    root = config.shared_root(ctx.environ)
    return root.services(), str(root.path)


def show(ctx: Context, name: str) -> tuple[ServiceInfo, list[dict[str, object]], list[str]]:
    """The account, its entries (each with ``exported``: whether members get it) and the names allowed beyond
    the catalog."""
    store = open_shared(ctx, name)
    info = store.info()
    snapshot = store.read()
    split = exportable(snapshot)
    rows = entry_rows(store.source, snapshot, time.time())
    for row in rows:
        row["exported"] = row["name"] in split.entries
        row["allowed"] = row["name"] in split.allowed
    return info, rows, sorted(split.allowed)


def rekey(ctx: Context, name: str) -> int:
    """A new data key and group key file for service account NAME (after removing a member). Returns the store's
    new generation."""
    store = open_shared(ctx, name)
    generation = store.rekey()
    ctx.audit("service-rekey", service=store.name, service_only=True)
    return generation


def accept(ctx: Context, name: str) -> str:
    """Trust service account NAME's current admin and store from now on. Returns the admin's name."""
    pin = open_shared(ctx, name).accept()
    ctx.audit("service-accept", service=name)
    return user_name(pin.admin_uid)


class Lingering(NamedTuple):
    """A process that still holds the service's group although its user is no longer a member."""

    user: str
    pid: int
    command: str


def group_members(gid: int) -> list[str]:
    """Who is in group ``gid`` now, in the group database: its listed members and users whose primary group it is."""
    try:
        names = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        names = set()
    names.update(p.pw_name for p in pwd.getpwall() if p.pw_gid == gid)
    return sorted(names)


def lingering_processes(gid: int, members: list[str]) -> list[Lingering]:
    """Running processes whose credentials include ``gid`` but whose user is not a member now (nor root): the
    group's rights outlive a removal in every process started before it (as far as /proc lets us see)."""
    member_uids = set()
    for name in members:
        try:
            member_uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            continue
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            uid = int(fields["Uid"].split()[0])
            gids = {int(g) for g in fields["Gid"].split()} | {int(g) for g in fields.get("Groups", "").split()}
            command = fields.get("Name", "").strip()
        except (OSError, KeyError, ValueError):
            continue
        if uid != 0 and uid not in member_uids and gid in gids:
            found.append(Lingering(user_name(uid), int(entry.name), command))
    return sorted(found, key=lambda p: (p.user, p.pid))


def members(ctx: Context, name: str) -> tuple[ServiceInfo, list[str], list[Lingering]]:
    """Who can read service account NAME: the members of its group now, and processes that keep the group's
    rights from before a removal."""
    info = open_shared(ctx, name).info()
    names = group_members(info.gid)
    return info, names, lingering_processes(info.gid, names)


def remove(ctx: Context, name: str) -> ServiceStore:
    store = open_shared(ctx, name)
    store.remove()
    ctx.audit("service-rm", service=store.name, service_only=True)
    return store


def use_service(ctx: Context, name: str | None) -> bool:
    """Make service account NAME the profile's default (None: stop using one). Returns whether WANDB_USERNAME is
    set in the profile (else W&B runs are attributed to the service account)."""
    profile = ctx.open_profile()
    if name is not None:
        check_service_name(name)
        ctx.open_service(name, opened=profile if profile.exists() else None).read()  # must exist and be readable now
    ensure_profile(ctx, profile)

    def change(snapshot: Snapshot) -> bool:
        if name is None:
            snapshot.settings.pop(DEFAULT_SERVICE_SETTING, None)
        else:
            snapshot.settings[DEFAULT_SERVICE_SETTING] = name
        return "WANDB_USERNAME" in snapshot.entries

    has_username = profile.modify(change)
    ctx.audit("use-service", service=name, via="none" if name is None else None)
    return has_username
