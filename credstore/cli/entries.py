"""Commands that change or show stored entries: init, set, get, rm, list, add, accept-rollback."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import click

from credstore import catalog
from credstore.app import entries, protection
from credstore.app.context import Context
from credstore.catalog import SERVICES, KnownVariable, Service, check_name
from credstore.cli import tables, terminal
from credstore.cli.common import context, passphrase_context
from credstore.cli.fast import write
from credstore.crypto.protection import LEVELS
from credstore.errors import UsageError
from credstore.store.base import Entry


@click.command()
@click.option(
    "--protection",
    "protection_level",
    type=click.Choice(list(LEVELS)),
    default=None,
    help="How the store's key is protected (default: keyring if an OS keyring works, else passphrase on a terminal).",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "vault"]),
    default="local",
    show_default=True,
    help="Where entries live: this machine, or an OpenBao / Vault KV v2 mount (the token stays local).",
)
@click.option("--url", default=None, metavar="URL", help="vault: the server, e.g. https://openbao.example.org:8200.")
@click.option("--mount", default="secret", show_default=True, help="vault: the KV v2 mount.")
@click.option(
    "--path-prefix",
    default="credstore",
    show_default=True,
    help="vault: entries at PREFIX/users/USER/PROFILE, service accounts at PREFIX/services/NAME.",
)
@click.option("--user", default=None, metavar="NAME", help="vault: the person's path segment (default: Unix user).")
@click.option(
    "--service",
    "service",
    default=None,
    metavar="NAME",
    help="vault, for admins: connect this profile to service account NAME (PREFIX/services/NAME) to manage it.",
)
@click.option("--ca-cert", default=None, metavar="FILE", help="vault: CA certificate of a private CA.")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="vault: seconds per request.")
@click.option(
    "--cache-max-age",
    default=None,
    metavar="DURATION",
    help="vault: let env fall back to a last-known-good copy (in the local encrypted store) this old.",
)
@click.option("--proxy", default=None, metavar="URL", help="vault: HTTP proxy to the server (never from http_proxy).")
@click.option("--approle", is_flag=True, help="vault: log in with AppRole (--role-id; secret id from stdin).")
@click.option("--role-id", default=None, metavar="ID", help="vault: AppRole role id.")
@click.option(
    "--ssh-key",
    default=None,
    metavar="FILE.pub|SHA256:FP",
    help="ssh-agent: which key of the agent (default: the only usable one).",
)
@click.pass_context
def init(ctx: click.Context, protection_level: str | None, backend: str, ssh_key: str | None, **vault: object) -> None:
    """Create the profile's encrypted store, or connect the profile to OpenBao / Vault (--backend vault).

    \b
    passphrase  Argon2id over a passphrase (terminal, hidden; or one line on stdin)
    ssh-agent   a signature by a key in your ssh agent (no typing; works through ssh -A)
    keyring     a random key in your OS keyring (Secret Service / Keychain)
    keyfile     a key file beside the store (weakest)

    \b
    credstore init --protection passphrase
    credstore init --backend vault --url https://bao.example.org:8200   # then paste the token
    """
    if backend == "vault":
        from credstore.app import vault as vault_app

        cli_ctx = passphrase_context(ctx)
        line = vault_app.connect(cli_ctx, protection=protection_level, read_secret=terminal.read_secret, **vault)  # type: ignore[arg-type]
        terminal.info(line)
        return
    if any(v not in (None, False, "secret", "credstore", 3.0) for v in vault.values()):
        raise UsageError(
            "--url, --user, --service, --ca-cert, --cache-max-age, --proxy and --approle need --backend vault"
        )
    app_ctx = passphrase_context(ctx)
    protection.create_profile(app_ctx, protection_level, options={"ssh-key": ssh_key} if ssh_key else None)
    app_ctx.audit("init")


@click.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--secret", "secret_flag", flag_value="secret", default=None, help="Store as a secret (masked).")
@click.option("--plain", "secret_flag", flag_value="plain", help="Store as a plain, non-secret value.")
@click.option("--force", "-f", is_flag=True, help="Replace a stored secret without asking.")
@click.option(
    "--allow-dangerous",
    is_flag=True,
    help="Store a name that changes how programs or shells run (PATH, LD_PRELOAD, PYTHONPATH, BASH_ENV...).",
)
@click.pass_context
def set_(
    ctx: click.Context, name: str, value: str | None, secret_flag: str | None, force: bool, allow_dangerous: bool
) -> None:
    """Store NAME. Secrets are read from the terminal (hidden) or stdin, never from the command line.

    \b
    printf %s "$KEY" | credstore set WANDB_API_KEY
    credstore set WANDB_USERNAME alice

    Replacing a stored secret asks `replace? [y/N]` when you typed the value at a terminal (--force does not ask);
    from a pipe or a script it is replaced. Either way the previous value is kept for 7 days: `credstore rollback
    NAME` restores it.
    """
    check_name(name)
    if catalog.is_dangerous(name) and not allow_dangerous:
        entries.refuse_dangerous(name, "set")  # before a value is asked for
    secret = catalog.is_secret(name) if secret_flag is None else secret_flag == "secret"  # noqa: S105
    if value is not None and secret:
        entries.refuse_secret_on_argv(name, f"set {name}")
    if value is None:
        value = terminal.read_value(name, secret=secret)
    app_ctx = context(ctx)
    ask = None if force or not (terminal.stdin_is_terminal() and app_ctx.terminal) else _confirm_replace(app_ctx)
    profile, replaced = entries.put(
        app_ctx, [(name, value, secret)], confirm_replace=ask, allow_dangerous=allow_dangerous
    )
    app_ctx.info(f"stored {name} in profile '{profile}'" + (" (secret)" if secret else ""))
    if replaced:
        app_ctx.info(_rollback_hint(app_ctx, replaced))


def _confirm_replace(app_ctx: Context) -> Callable[[list[str]], bool]:
    def ask(names: list[str]) -> bool:
        return terminal.confirm(f"{', '.join(names)} is already stored in profile '{app_ctx.profile}'; replace? [y/N] ")

    return ask


def _rollback_hint(app_ctx: Context, replaced: list[str]) -> str:
    undo = "; ".join(f"credstore {app_ctx.profile_flag}rollback {name}" for name in replaced)
    return f"the previous value of {', '.join(replaced)} is kept for 7 days; to restore it: {undo}"


@click.command()
@click.argument("name")
@click.pass_context
def get(ctx: click.Context, name: str) -> None:
    """Print the stored value of NAME (for scripts)."""
    click.echo(entries.get(context(ctx), name))


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Remove stored entries."""
    app_ctx = context(ctx)
    removed = entries.remove(app_ctx, names)
    app_ctx.info(f"removed {', '.join(removed)} from profile '{app_ctx.profile}'")


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Show stored entries; secret values are masked entirely."""
    app_ctx = context(ctx)
    rows = entries.list_rows(app_ctx)
    if as_json:
        write(tables.json_text(rows))
        return
    if not rows:
        app_ctx.info(f"profile '{app_ctx.profile}' is empty")
        return
    write(tables.list_table(rows))


class _AddCommand(click.Command):
    """``add``: its help lists the fields of the service named on the command line (`add wandb --help`), else of
    every service."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["credstore.add_service"] = next((a for a in args if a in SERVICES), None)
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        chosen = ctx.meta.get("credstore.add_service")
        for service in [SERVICES[chosen]] if chosen else SERVICES.values():
            rows = [
                (v.name, v.description + ("" if v.prompt else "; not asked: credstore set " + v.name))
                for v in service.variables
            ]
            title = f"{service.name} ({service.title})" + (f", keys at {service.key_url}" if service.key_url else "")
            with formatter.section(title):
                formatter.write_dl(rows)


def field_prompt(service: Service, variable: KnownVariable, stored: Entry | None) -> str:
    """One prompt of `add`, without nested parentheses; the key prompt says where keys come from, and a stored value
    is the default (a secret one is only said to be there)."""
    text = f"{variable.name}, {variable.description}"
    if variable.secret and service.key_url and variable.name == service.variables[0].name:
        text += f" from {service.key_url}"
    if variable.secret:
        return text + (" (hidden; stored already, Enter keeps it): " if stored else " (hidden; Enter skips): ")
    return text + (f" [{stored.value}]: " if stored else " (Enter skips): ")


@click.command(cls=_AddCommand)
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.pass_context
def add(ctx: click.Context, service: str) -> None:
    """Guided prompts for a service's variables (the key hidden); Enter skips a field, or keeps what is stored.

    Without a terminal, one line per prompted variable is read from stdin, in the order listed below (an empty line
    skips it or keeps the stored value). A replaced value is kept for 7 days: `credstore rollback NAME`.
    """
    chosen = SERVICES[service]

    def collect(current: Mapping[str, Entry]) -> list[tuple[str, str, bool]]:
        values: list[tuple[str, str, bool]] = []
        for variable in chosen.variables:
            if not variable.prompt:
                continue
            stored = current.get(variable.name)
            value = terminal.read_line(
                variable.name, secret=variable.secret, prompt=field_prompt(chosen, variable, stored)
            )
            if value and not (stored is not None and stored.value == value):
                values.append((variable.name, value, variable.secret))
        return values

    app_ctx = context(ctx)
    profile, stored_names, replaced = entries.put_guided(app_ctx, collect, via="add")
    if not stored_names:
        raise UsageError(f"nothing entered for {service}; nothing changed")
    app_ctx.info(f"stored {', '.join(stored_names)} in profile '{profile}'")
    if replaced:
        app_ctx.info(_rollback_hint(app_ctx, replaced))


@click.command("accept-rollback")
@click.pass_context
def accept_rollback(ctx: click.Context) -> None:
    """Accept a store restored from an older copy on purpose (clears the rollback alarm)."""
    app_ctx = context(ctx)
    generation = entries.accept_rollback(app_ctx)
    app_ctx.info(f"profile '{app_ctx.profile}' accepted at generation {generation}")


COMMANDS = [init, set_, get, rm, list_, add, accept_rollback]
