"""Commands that change or show stored entries: init, set, get, rm, list, add, accept-rollback."""

from __future__ import annotations

import json
import time

import click

from credstore import audit, catalog
from credstore.catalog import SERVICES, check_name
from credstore.cli import terminal
from credstore.cli.common import accept_value, age, open_local, open_store
from credstore.errors import AuthError, NotFoundError, UsageError
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.local import LocalStore


def ensure_store(store: LocalStore, protection: str | None = None) -> bool:
    """Create the profile if it does not exist yet (the first `set` does this). True if it was created."""
    if store.exists():
        return False
    from credstore.cli.protection import create_store

    create_store(store, protection)  # the default level rule; says which level was used
    audit.record("init", profile=store.profile, via="first write")
    return True


def set_value(snapshot: Snapshot, name: str, value: str, secret: bool, now: float) -> None:
    """Put ``value`` under ``name``: a new entry, or the old one with the new value (its creation time, rotation
    history and previous value kept)."""
    old = snapshot.entries.get(name)
    if old is None:
        snapshot.entries[name] = Entry(name, value, secret, created=now, updated=now)
    else:
        snapshot.entries[name] = old._replace(value=value, secret=secret, updated=now)


def put_entry(store: Backend, name: str, value: str, secret: bool) -> None:
    """Store one value in one write (previous values whose grace period is over are forgotten on the way)."""
    now = time.time()

    def change(snapshot: Snapshot) -> None:
        from credstore.store.shared import drop_expired_previous

        drop_expired_previous(snapshot, now)
        set_value(snapshot, name, value, secret, now)

    store.modify(change)


@click.command()
@click.option(
    "--protection",
    type=click.Choice(["passphrase", "keyring", "keyfile"]),
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
@click.option("--proxy", default=None, metavar="URL", help="vault: HTTP proxy to the server (never from http_proxy).")
@click.pass_context
def init(ctx: click.Context, protection: str | None, backend: str, **vault: object) -> None:
    """Create the profile's encrypted store, or connect the profile to OpenBao / Vault (--backend vault).

    \b
    passphrase  Argon2id over a passphrase (terminal, hidden; or one line on stdin)
    keyring     a random key in your OS keyring (Secret Service / Keychain)
    keyfile     a key file beside the store (weakest)

    \b
    credstore init --protection passphrase
    credstore init --backend vault --url https://bao.example.org:8200   # then paste the token
    """
    if backend == "vault":
        from credstore.cli.vault import init_vault

        init_vault(ctx, protection=protection, **vault)  # type: ignore[arg-type]
        return
    if any(v not in (None, False, "secret", "credstore", 3.0) for v in vault.values()):
        raise UsageError(
            "--url, --user, --service, --ca-cert, --cache-max-age, --proxy and --approle need --backend vault"
        )
    from credstore.cli.protection import create_store, passphrase_store

    store = passphrase_store(ctx)
    if store.exists():
        raise UsageError(f"profile '{store.profile}' already exists at {store.path}")
    create_store(store, protection)
    audit.record("init", profile=store.profile)


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
        raise UsageError(
            f"refusing to take the secret {name} from the command line, where `ps` shows it to every user; "
            f'pipe it instead: printf %s "$VALUE" | credstore set {name} (or run `credstore set {name}` and type it)'
        )
    if value is None:
        value = terminal.read_value(name, secret=secret)
    accept_value(name, value)
    store = open_store(ctx)
    ensure_store(store)
    put_entry(store, name, value, secret)
    audit.record("set", profile=store.profile, names=[name])
    click.echo(f"stored {name} in profile '{store.profile}'" + (" (secret)" if secret else ""), err=True)


@click.command()
@click.argument("name")
@click.pass_context
def get(ctx: click.Context, name: str) -> None:
    """Print the stored value of NAME (for scripts)."""
    check_name(name)
    store = open_store(ctx)
    try:
        entry = store.read().entries.get(name)
    except AuthError:
        audit.record("failed-unlock", profile=store.profile)
        raise
    if entry is None:
        raise NotFoundError(f"{name} is not stored in profile '{store.profile}'")
    audit.record("get", profile=store.profile, names=[name])
    click.echo(entry.value)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Remove stored entries."""
    for name in names:
        check_name(name)
    store = open_store(ctx)

    def change(snapshot: Snapshot) -> list[str]:
        missing = [n for n in names if n not in snapshot.entries]
        if missing:
            raise NotFoundError(f"not stored in profile '{store.profile}': {', '.join(missing)}; nothing removed")
        for n in names:
            del snapshot.entries[n]
        return list(names)

    removed = store.modify(change)
    audit.record("rm", profile=store.profile, names=removed)
    click.echo(f"removed {', '.join(removed)} from profile '{store.profile}'", err=True)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Show stored entries; secret values are masked entirely."""
    store = open_store(ctx)
    snapshot = store.read()
    now = time.time()
    rows = []
    for name, entry in sorted(snapshot.entries.items()):
        rows.append(
            {
                "profile": store.profile,
                "name": name,
                "service": catalog.service_of(name) or "-",
                "secret": entry.secret,
                "age": age(entry.updated, now),
                "value": "********" if entry.secret else entry.value,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"profile '{store.profile}' is empty", err=True)
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
        accept_value(variable.name, value)
        values.append((variable.name, value, variable.secret))
    if not values:
        raise UsageError(f"nothing entered for {service}; nothing stored")
    store = open_store(ctx)
    ensure_store(store)
    now = time.time()

    def change(snapshot: Snapshot) -> None:
        from credstore.store.shared import drop_expired_previous

        drop_expired_previous(snapshot, now)
        for name, value, secret in values:
            set_value(snapshot, name, value, secret, now)  # keeps rotation history and a previous value

    store.modify(change)
    audit.record("set", profile=store.profile, names=[n for n, _, _ in values], via="add")
    click.echo(f"stored {', '.join(n for n, _, _ in values)} in profile '{store.profile}'", err=True)


@click.command("accept-rollback")
@click.pass_context
def accept_rollback(ctx: click.Context) -> None:
    """Accept a store restored from an older copy on purpose (clears the rollback alarm)."""
    store = open_local(ctx)
    generation = store.accept_rollback()
    click.echo(f"profile '{store.profile}' accepted at generation {generation}", err=True)


COMMANDS = [init, set_, get, rm, list_, add, accept_rollback]
