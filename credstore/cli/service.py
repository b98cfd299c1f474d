"""Team service accounts: `credstore service add/set/list/show/rm` (admin) and `credstore use-service` (person)."""

from __future__ import annotations

import json
import os
import time

import click

from credstore import audit, catalog
from credstore.catalog import check_name
from credstore.cli import terminal
from credstore.cli.common import accept_value, age, open_store
from credstore.cli.entries import put_entry
from credstore.errors import NotFoundError, UsageError
from credstore.resolver.gather import DEFAULT_SERVICE_SETTING
from credstore.store.base import Snapshot
from credstore.store.shared import (
    ATTRIBUTION_VARIABLES,
    SharedRoot,
    check_service_name,
    open_service,
)


@click.group()
def service() -> None:
    """Team service accounts shared with a Unix group (in $CREDSTORE_SHARED_DIR, default /etc/credstore).

    \b
    Admin:   credstore service add ml-team --group ml
             printf %s "$KEY" | credstore service set ml-team WANDB_API_KEY
             credstore service set ml-team WANDB_ENTITY my-team
    Members: credstore use-service ml-team     (or: credstore exec --service ml-team -- CMD)

    Every member of the group can decrypt the service's values (that is the point); nobody else can enter its
    directory. Attribution (WANDB_USERNAME, WANDB_USER_EMAIL) always comes from each person's own profile.
    """


@service.command("add")
@click.argument("name")
@click.option("--group", "group", required=True, metavar="GROUP", help="Unix group whose members may use it.")
def service_add(name: str, group: str) -> None:
    """Create service account NAME, readable by the members of GROUP."""
    store = open_service(check_service_name(name))
    store.create(group)
    audit.record_service("service-add", store.name, via=f"group={group}")
    terminal.warn(f"created service account '{store.name}' for group '{group}' at {store.dir}")


@service.command("set")
@click.argument("name")
@click.argument("variable")
@click.argument("value", required=False)
@click.option("--secret", "secret_flag", flag_value="secret", default=None, help="Store as a secret (masked).")
@click.option("--plain", "secret_flag", flag_value="plain", help="Store as a plain, non-secret value.")
def service_set(name: str, variable: str, value: str | None, secret_flag: str | None) -> None:
    """Store VARIABLE in service account NAME. Secrets come from the terminal (hidden) or stdin, never argv."""
    store = open_service(check_service_name(name))
    check_name(variable)
    if variable in ATTRIBUTION_VARIABLES:
        raise UsageError(
            f"{variable} names the person a run is attributed to, so it is never taken from a service account; "
            f"each member sets their own: credstore set {variable} ..."
        )
    secret = catalog.is_secret(variable) if secret_flag is None else secret_flag == "secret"  # noqa: S105
    if value is not None and secret:
        raise UsageError(
            f"refusing to take the secret {variable} from the command line, where `ps` shows it to every user; "
            f'pipe it instead: printf %s "$VALUE" | credstore service set {name} {variable}'
        )
    store.info()  # fail early (not found, not admin-readable) before asking for a value
    if value is None:
        value = terminal.read_value(variable, secret=secret)
    accept_value(variable, value)
    put_entry(store, variable, value, secret)
    audit.record_service("service-set", store.name, names=[variable])
    terminal.warn(f"stored {variable} in service account '{store.name}'" + (" (secret)" if secret else ""))


@service.command("unset")
@click.argument("name")
@click.argument("variables", nargs=-1, required=True)
def service_unset(name: str, variables: tuple[str, ...]) -> None:
    """Remove VARIABLES from service account NAME."""
    store = open_service(check_service_name(name))
    for variable in variables:
        check_name(variable)

    def change(snapshot: Snapshot) -> None:
        missing = [v for v in variables if v not in snapshot.entries]
        if missing:
            raise NotFoundError(f"not stored in service account '{name}': {', '.join(missing)}; nothing removed")
        for v in variables:
            del snapshot.entries[v]

    store.modify(change)
    audit.record_service("service-set", store.name, names=list(variables), via="unset")
    terminal.warn(f"removed {', '.join(variables)} from service account '{store.name}'")


@service.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def service_list(as_json: bool) -> None:
    """Service accounts in the shared directory, their group, and whether you can use them."""
    root = SharedRoot.from_environ()
    infos = root.services()
    rows = [{"name": i.name, "group": i.group, "admin": i.owner, "member": i.member} for i in infos]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        terminal.warn(f"no service accounts in {root.path}")
        return
    width = max(len(r["name"]) for r in rows)
    gwidth = max(len(r["group"]) for r in rows)
    click.echo(f"{'SERVICE'.ljust(width)}  {'GROUP'.ljust(gwidth)}  YOU")
    for r in rows:
        click.echo(f"{r['name'].ljust(width)}  {r['group'].ljust(gwidth)}  {'member' if r['member'] else '-'}")


def entry_rows(scope: str, snapshot: Snapshot, now: float) -> list[dict[str, object]]:
    rows = []
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
                "value": "********" if entry.secret else entry.value,
            }
        )
    return rows


@service.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def service_show(name: str, as_json: bool) -> None:
    """Entries of service account NAME (secret values masked)."""
    store = open_service(check_service_name(name))
    info = store.info()
    rows = entry_rows(store.source, store.read(), time.time())
    if as_json:
        click.echo(json.dumps({"name": info.name, "group": info.group, "entries": rows}, indent=2))
        return
    click.echo(f"service account '{info.name}' (group {info.group}, admin {info.owner})")
    if not rows:
        click.echo("  no entries yet")
    for r in rows:
        rotated = time.strftime("%Y-%m-%d", time.gmtime(r["last_rotation"])) if r["last_rotation"] else "never"
        click.echo(f"  {r['name']}  age {r['age']}  rotated {rotated}  {r['value']}")


@service.command("rm")
@click.argument("name")
def service_rm(name: str) -> None:
    """Delete service account NAME (its store and key) for every member."""
    store = open_service(check_service_name(name))
    store.remove()
    audit.record_service("service-rm", store.name)
    terminal.warn(f"removed service account '{store.name}'")


@click.command("use-service")
@click.argument("name", required=False)
@click.option("--none", "clear", is_flag=True, help="Stop using a default service account.")
@click.pass_context
def use_service(ctx: click.Context, name: str | None, clear: bool) -> None:
    """Make service account NAME the profile's default (above your own stored values; attribution stays yours)."""
    if clear == (name is not None):
        raise UsageError("give a service account name, or --none to clear the default")
    store = open_store(ctx)
    if name is not None:
        check_service_name(name)
        from credstore import config

        service_store = config.open_service(name, store, os.environ)
        service_store.read()  # must exist and be readable by you now
    from credstore.cli.entries import ensure_store

    ensure_store(store)

    def change(snapshot: Snapshot) -> str | None:
        previous = snapshot.settings.get(DEFAULT_SERVICE_SETTING)
        if name is None:
            snapshot.settings.pop(DEFAULT_SERVICE_SETTING, None)
        else:
            snapshot.settings[DEFAULT_SERVICE_SETTING] = name
        return previous

    store.modify(change)
    audit.record("use-service", profile=store.profile, service=name, via="none" if clear else None)
    if name is None:
        terminal.warn(f"profile '{store.profile}' no longer uses a service account by default")
        return
    terminal.warn(f"profile '{store.profile}' now uses service account '{name}' by default")
    if "WANDB_USERNAME" not in store.read().entries:
        terminal.warn(
            "warning: WANDB_USERNAME is not set in your profile, so W&B runs will be attributed to the service "
            "account; set it with: credstore set WANDB_USERNAME <you>"
        )


COMMANDS = [service, use_service]
