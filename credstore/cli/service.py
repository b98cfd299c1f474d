"""Team service accounts: `credstore service add/set/list/show/rm` (admin) and `credstore use-service` (person)."""

from __future__ import annotations

import json
import time

import click

from credstore import catalog
from credstore.app import entries
from credstore.app import services as services_app
from credstore.cli import tables, terminal
from credstore.cli.common import context
from credstore.errors import UsageError


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
    A service exports only catalog variables and names its admin allowed (`service allow`), never names that
    change how programs or shells run (PATH, LD_PRELOAD, BASH_ENV, PYTHONPATH...).

    \b
    Removing a member: gpasswd -d USER GROUP; end her processes (they keep the group's rights);
             credstore service rekey NAME; then rotate each key at its provider (credstore rotate --service NAME).
    """


@service.command("add")
@click.argument("name")
@click.option("--group", "group", required=True, metavar="GROUP", help="Unix group whose members may use it.")
@click.pass_context
def service_add(ctx: click.Context, name: str, group: str) -> None:
    """Create service account NAME, readable by the members of GROUP."""
    store = services_app.add(context(ctx), name, group)
    terminal.info(f"created service account '{store.name}' for group '{group}' at {store.dir}")


@service.command("set")
@click.argument("name")
@click.argument("variable")
@click.argument("value", required=False)
@click.option("--secret", "secret_flag", flag_value="secret", default=None, help="Store as a secret (masked).")
@click.option("--plain", "secret_flag", flag_value="plain", help="Store as a plain, non-secret value.")
@click.pass_context
def service_set(ctx: click.Context, name: str, variable: str, value: str | None, secret_flag: str | None) -> None:
    """Store VARIABLE in service account NAME. Secrets come from the terminal (hidden) or stdin, never argv."""
    app_ctx = context(ctx)
    store = services_app.open_shared(app_ctx, name)
    services_app.check_variable(variable)
    secret = catalog.is_secret(variable) if secret_flag is None else secret_flag == "secret"  # noqa: S105
    if value is not None and secret:
        entries.refuse_secret_on_argv(variable, f"service set {name} {variable}")
    services_app.check_settable(store, variable)  # fail early (not found, not allowed) before asking for a value
    if value is None:
        value = terminal.read_value(variable, secret=secret)
    services_app.put(app_ctx, store, variable, value, secret)
    terminal.info(f"stored {variable} in service account '{store.name}'" + (" (secret)" if secret else ""))


@service.command("unset")
@click.argument("name")
@click.argument("variables", nargs=-1, required=True)
@click.pass_context
def service_unset(ctx: click.Context, name: str, variables: tuple[str, ...]) -> None:
    """Remove VARIABLES from service account NAME."""
    store = services_app.unset(context(ctx), name, variables)
    terminal.info(f"removed {', '.join(variables)} from service account '{store.name}'")


@service.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def service_list(ctx: click.Context, as_json: bool) -> None:
    """Service accounts in the shared directory, their group, and whether you can use them."""
    infos, root = services_app.list_accounts(context(ctx))
    rows = [{"name": i.name, "group": i.group, "admin": i.owner, "member": i.member} for i in infos]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        terminal.warn(f"no service accounts in {root}")
        return
    width = max(len(r["name"]) for r in rows)
    gwidth = max(len(r["group"]) for r in rows)
    click.echo(f"{'SERVICE'.ljust(width)}  {'GROUP'.ljust(gwidth)}  YOU")
    for r in rows:
        click.echo(f"{r['name'].ljust(width)}  {r['group'].ljust(gwidth)}  {'member' if r['member'] else '-'}")


@service.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def service_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Entries of service account NAME (secret values masked), and the names allowed beyond the catalog."""
    info, rows, allowed = services_app.show(context(ctx), name)
    if as_json:
        click.echo(json.dumps({"name": info.name, "group": info.group, "allowed": allowed, "entries": rows}, indent=2))
        return
    click.echo(f"service account '{info.name}' (group {info.group}, admin {info.owner})")
    if allowed:
        click.echo(f"  allowed beyond the catalog: {', '.join(allowed)}")
    if not rows:
        click.echo("  no entries yet")
    for r in rows:
        rotated = time.strftime("%Y-%m-%d", time.gmtime(r["last_rotation"])) if r["last_rotation"] else "never"
        note = ""
        if catalog.is_dangerous(str(r["name"])):
            note = "  (never exported: it changes how programs run)"
        elif not r["exported"]:
            note = f"  (not exported: allow it with `credstore service allow {info.name} {r['name']}`)"
        elif r["allowed"]:
            note = "  (allowed by the admin)"
        click.echo(f"  {r['name']}  age {r['age']}  rotated {rotated}  {tables.shown(r['value'])}{note}")


@service.command("allow")
@click.argument("name")
@click.argument("variable")
@click.option("--remove", is_flag=True, help="Stop allowing VARIABLE (its stored value is no longer exported).")
@click.pass_context
def service_allow(ctx: click.Context, name: str, variable: str, remove: bool) -> None:
    """Let service account NAME export VARIABLE, a name outside credstore's catalog.

    Names that change how programs or shells run (PATH, LD_*, BASH_ENV, PYTHON*, ...) can never be allowed.
    """
    _, names = services_app.allow(context(ctx), name, variable, remove=remove)
    done = "no longer allows" if remove else "now allows"
    rest = f" (allowed: {', '.join(names)})" if names else " (nothing beyond the catalog is allowed)"
    terminal.warn(f"service account '{name}' {done} {variable}{rest}")


@service.command("rekey")
@click.argument("name")
@click.pass_context
def service_rekey(ctx: click.Context, name: str) -> None:
    """New data key and group key file for NAME: a key file someone copied opens nothing written from now on.

    \b
    Run it after removing a member from the group (and ending her processes), then rotate every key of the
    service at its provider: she may have copied the values themselves.
    """
    services_app.rekey(context(ctx), name)
    terminal.warn(
        f"re-keyed service account '{name}': new data key and key file, every value re-encrypted; now rotate its "
        f"keys at their providers (credstore rotate VARIABLE --service {name})"
    )


@service.command("members")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def service_members(ctx: click.Context, name: str, as_json: bool) -> None:
    """Who can read NAME now: the members of its group (listed, and by primary group), one per line."""
    info, names, lingering = services_app.members(context(ctx), name)
    if as_json:
        rows = [{"user": p.user, "pid": p.pid, "command": p.command} for p in lingering]
        click.echo(json.dumps({"name": info.name, "group": info.group, "members": names, "lingering": rows}, indent=2))
    else:
        for member in names:
            click.echo(member)
    terminal.warn(
        f"members of group '{info.group}' now, from the group database; processes started before a member was "
        "removed keep the group's rights until they end"
    )
    for p in lingering:
        terminal.warn(
            f"warning: {p.user} is not in group '{info.group}' but process {p.pid} ({p.command}) still runs with its "
            f"rights; end it (kill {p.pid}) before `credstore service rekey {name}`"
        )


@service.command("accept")
@click.argument("name")
@click.pass_context
def service_accept(ctx: click.Context, name: str) -> None:
    """Trust NAME's current admin and store from now on, after a change you know about (a new admin, or the
    service recreated). Until then credstore refuses to read a service whose admin or store changed."""
    admin = services_app.accept(context(ctx), name)
    terminal.warn(f"accepted service account '{name}' (admin {admin}) as it is now")


@service.command("rm")
@click.argument("name")
@click.pass_context
def service_rm(ctx: click.Context, name: str) -> None:
    """Delete service account NAME (its store and key) for every member."""
    store = services_app.remove(context(ctx), name)
    terminal.info(f"removed service account '{store.name}'")


@click.command("use-service")
@click.argument("name", required=False)
@click.option("--none", "clear", is_flag=True, help="Stop using a default service account.")
@click.pass_context
def use_service(ctx: click.Context, name: str | None, clear: bool) -> None:
    """Make service account NAME the profile's default (above your own stored values; attribution stays yours)."""
    if clear == (name is not None):
        raise UsageError("give a service account name, or --none to clear the default")
    app_ctx = context(ctx)
    has_username = services_app.use_service(app_ctx, name)
    if name is None:
        terminal.warn(f"profile '{app_ctx.profile}' no longer uses a service account by default")
        return
    terminal.warn(f"profile '{app_ctx.profile}' now uses service account '{name}' by default")
    if not has_username:
        terminal.warn(
            "warning: WANDB_USERNAME is not set in your profile, so W&B runs will be attributed to the service "
            "account; set it with: credstore set WANDB_USERNAME <you>"
        )


COMMANDS = [service, use_service]
