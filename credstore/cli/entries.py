"""Commands that change or show stored entries: init, set, get, rm, list, add, accept-rollback."""

from __future__ import annotations

import json

import click

from credstore import catalog
from credstore.app import entries, protection
from credstore.catalog import SERVICES, check_name
from credstore.cli import terminal
from credstore.cli.common import context, passphrase_context
from credstore.crypto.protection import LEVELS
from credstore.errors import UsageError


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
        click.echo(line, err=True)
        return
    if any(v not in (None, False, "secret", "credstore", 3.0) for v in vault.values()):
        raise UsageError("--url, --user, --service, --ca-cert, --cache-max-age and --approle need --backend vault")
    app_ctx = passphrase_context(ctx)
    protection.create_profile(app_ctx, protection_level, options={"ssh-key": ssh_key} if ssh_key else None)
    app_ctx.audit("init")


@click.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--secret", "secret_flag", flag_value="secret", default=None, help="Store as a secret (masked).")
@click.option("--plain", "secret_flag", flag_value="plain", help="Store as a plain, non-secret value.")
@click.pass_context
def set_(ctx: click.Context, name: str, value: str | None, secret_flag: str | None) -> None:
    """Store NAME. Secrets are read from the terminal (hidden) or stdin, never from the command line.

    \b
    printf %s "$KEY" | credstore set WANDB_API_KEY
    credstore set WANDB_USERNAME alice
    """
    check_name(name)
    secret = catalog.is_secret(name) if secret_flag is None else secret_flag == "secret"  # noqa: S105
    if value is not None and secret:
        entries.refuse_secret_on_argv(name, f"set {name}")
    if value is None:
        value = terminal.read_value(name, secret=secret)
    app_ctx = context(ctx)
    profile = entries.put(app_ctx, [(name, value, secret)])
    click.echo(f"stored {name} in profile '{profile}'" + (" (secret)" if secret else ""), err=True)


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
    click.echo(f"removed {', '.join(removed)} from profile '{app_ctx.profile}'", err=True)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Show stored entries; secret values are masked entirely."""
    app_ctx = context(ctx)
    rows = entries.list_rows(app_ctx)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"profile '{app_ctx.profile}' is empty", err=True)
        return
    header = ("PROFILE", "NAME", "SERVICE", "SECRET", "AGE", "VALUE")
    table = [header]
    for r in rows:
        table.append((r["profile"], r["name"], r["service"], "yes" if r["secret"] else "no", r["age"], r["value"]))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    for row in table:
        click.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + str(row[-1])
        )


@click.command()
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.pass_context
def add(ctx: click.Context, service: str) -> None:
    """Guided prompts for a service's variables (the key hidden); leave a field empty to skip it.

    Without a terminal, one line per prompted variable is read from stdin, in the order shown by
    `credstore add SERVICE --help`.
    """
    values: list[tuple[str, str, bool]] = []
    for variable in SERVICES[service].variables:
        if not variable.prompt:
            continue
        value = terminal.read_line(f"{variable.name} ({variable.description})", secret=variable.secret)
        if not value:
            continue
        values.append((variable.name, value, variable.secret))
    if not values:
        raise UsageError(f"nothing entered for {service}; nothing stored")
    profile = entries.put(context(ctx), values, via="add")
    click.echo(f"stored {', '.join(n for n, _, _ in values)} in profile '{profile}'", err=True)


@click.command("accept-rollback")
@click.pass_context
def accept_rollback(ctx: click.Context) -> None:
    """Accept a store restored from an older copy on purpose (clears the rollback alarm)."""
    app_ctx = context(ctx)
    generation = entries.accept_rollback(app_ctx)
    click.echo(f"profile '{app_ctx.profile}' accepted at generation {generation}", err=True)


COMMANDS = [init, set_, get, rm, list_, add, accept_rollback]
