"""Team service accounts: add / set / unset / show / rm (admin), list, and use-service (person)."""

from __future__ import annotations

import time

from credstore import catalog, config
from credstore.app.context import Context
from credstore.app.entries import accept_value, entry_rows, put_values
from credstore.app.protection import ensure_profile
from credstore.errors import NotFoundError, UsageError
from credstore.resolver.gather import DEFAULT_SERVICE_SETTING
from credstore.store.base import Snapshot
from credstore.store.shared import ServiceInfo, ServiceStore, check_service_name


def open_shared(ctx: Context, name: str) -> ServiceStore:
    store: ServiceStore = config.open_shared_service(check_service_name(name), ctx.environ)
    return store


def add(ctx: Context, name: str, group: str) -> ServiceStore:
    store = open_shared(ctx, name)
    store.create(group)
    ctx.audit("service-add", service=store.name, via=f"group={group}", service_only=True)
    return store


def check_variable(variable: str) -> None:
    catalog.check_name(variable)
    if variable in catalog.ATTRIBUTION_VARIABLES:
        raise UsageError(
            f"{variable} names the person a run is attributed to, so it is never taken from a service account; "
            f"each member sets their own: credstore set {variable} ..."
        )


def put(ctx: Context, store: ServiceStore, variable: str, value: str, secret: bool) -> None:
    accept_value(ctx, variable, value)
    put_values(store, [(variable, value, secret)])
    ctx.audit("service-set", service=store.name, names=[variable], service_only=True)


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


def show(ctx: Context, name: str) -> tuple[ServiceInfo, list[dict[str, object]]]:
    store = open_shared(ctx, name)
    info = store.info()
    return info, entry_rows(store.source, store.read(), time.time())


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
