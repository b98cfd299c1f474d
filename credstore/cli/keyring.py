"""`credstore keyring list|get|set|rm|enable`: the passwords credstore keeps for pip, twine, poetry, git ...

They are the items the ``keyring`` backend and the git credential helper read and write
(``credstore/app/keyring_items.py``): one per exact (service, username) pair, never exported by ``env``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from credstore.app import keyring_items
from credstore.cli import terminal
from credstore.cli.common import context
from credstore.errors import CredstoreError, NotFoundError, UsageError

BACKEND_NAME = "credstore.integrations.keyring_backend.CredstoreKeyring"


def _show(text: str) -> str:
    """A service or username for the table: quoted when it holds a newline or another unprintable character."""
    return text if text.isprintable() and text.strip() == text and text else json.dumps(text, ensure_ascii=False)


def _show_username(username: str | None) -> str:
    return "(none)" if username is None else _show(username)


@click.group("keyring")
def keyring_group() -> None:
    """Passwords for tools that use the `keyring` library (pip, twine, poetry, uv) and for git.

    \b
    printf %s "$TOKEN" | credstore keyring set https://upload.pypi.org/legacy/ __token__
    credstore keyring set https://pypi.example.org/simple/ alice      # asks, hidden
    credstore keyring list
    credstore keyring enable     # make credstore keyring's backend even where another would win

    Each item is an exact (SERVICE, USERNAME) pair; USERNAME may be left out (kept distinct from "").
    """


@keyring_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def keyring_list(ctx: click.Context, as_json: bool) -> None:
    """Show the stored (service, username) pairs; never a password."""
    app_ctx = context(ctx)
    rows = keyring_items.list_items(app_ctx)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"profile '{app_ctx.profile}' holds no keyring items", err=True)
        return
    table = [("SERVICE", "USERNAME", "AGE")]
    table += [(_show(str(r["service"])), _show_username(r["username"]), str(r["age"])) for r in rows]  # type: ignore[arg-type]
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    for service, username, age in table:
        click.echo(f"{service.ljust(widths[0])}  {username.ljust(widths[1])}  {age}")


@keyring_group.command("get")
@click.argument("service")
@click.argument("username", required=False)
@click.pass_context
def keyring_get(ctx: click.Context, service: str, username: str | None) -> None:
    """Print the password of SERVICE (for USERNAME; without one: the item of SERVICE a tool asking without a
    username gets, the one stored most recently)."""
    app_ctx = context(ctx)
    if username is None:
        item = keyring_items.get_any(app_ctx, service)
    else:
        item = keyring_items.get(app_ctx, service, username)
    if item is None:
        raise NotFoundError(
            f"no keyring item for {keyring_items.label(service, username)!r} in profile '{app_ctx.profile}'"
        )
    click.echo(item.password)


@keyring_group.command("set", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@click.argument("service")
@click.argument("username", required=False)
@click.pass_context
def keyring_set(ctx: click.Context, service: str, username: str | None) -> None:
    """Store the password for SERVICE and USERNAME: typed hidden on the terminal, or read from stdin; never from
    the command line."""
    if ctx.args:  # a password typed after the username: refuse it without echoing it (click's error would)
        raise UsageError(
            "refusing to take a password from the command line, where `ps` shows it to every user; pipe it instead: "
            'printf %s "$PASSWORD" | credstore keyring set SERVICE USERNAME (or run it and type the password)'
        )
    password = terminal.read_secret("password", f"password for {keyring_items.label(service, username)}: ")
    if not password:
        raise UsageError("the password is empty; nothing was stored")
    app_ctx = context(ctx)
    outcome = keyring_items.put(app_ctx, service, username, password)
    what = {"created": "stored", "replaced": "replaced", "unchanged": "already stored"}[outcome]
    terminal.warn(f"{what} the password for {keyring_items.label(service, username)} in profile '{app_ctx.profile}'")


@keyring_group.command("rm")
@click.argument("service")
@click.argument("username", required=False)
@click.pass_context
def keyring_rm(ctx: click.Context, service: str, username: str | None) -> None:
    """Remove the item of SERVICE and USERNAME (without USERNAME: the item stored without one)."""
    app_ctx = context(ctx)
    keyring_items.remove(app_ctx, service, username)
    terminal.warn(f"removed the password for {keyring_items.label(service, username)} from profile '{app_ctx.profile}'")


def keyringrc_path() -> Path:
    """keyring's own configuration file (``keyring diagnose`` prints it)."""
    from keyring.util import platform_

    return Path(platform_.config_root()) / "keyringrc.cfg"


@keyring_group.command("enable")
def keyring_enable() -> None:
    """Write keyring's keyringrc.cfg choosing credstore's backend (for boxes where an installed but locked
    gnome-keyring would win). An existing file is never overwritten."""
    import configparser

    from credstore import fsutil

    path = keyringrc_path()
    if path.exists() or path.is_symlink():
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
            chosen = parser.get("backend", "default-keyring", fallback="").strip()
        except (configparser.Error, OSError, UnicodeDecodeError):
            chosen = ""
        if chosen == BACKEND_NAME:
            terminal.warn(f"{path} already chooses credstore's keyring backend")
            return
        raise CredstoreError(
            f"{path} already exists" + (f" and chooses {chosen}" if chosen else "") + "; not overwritten. "
            f"Set default-keyring={BACKEND_NAME} in its [backend] section yourself, or export "
            f"PYTHON_KEYRING_BACKEND={BACKEND_NAME}"
        )
    text = f"[backend]\ndefault-keyring={BACKEND_NAME}\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # not secret: keyring's own directory, as keyring makes it
        with open(path, "x", encoding="utf-8") as handle:  # "x": never replace a file that appeared meanwhile
            handle.write(text)
    except FileExistsError:
        raise CredstoreError(f"{path} appeared while writing it; not overwritten") from None
    except OSError as exc:
        raise fsutil.io_error("write", path, exc) from None
    terminal.warn(f"wrote {path}: keyring now uses credstore's backend (profile: $CREDSTORE_PROFILE, else default)")


COMMANDS = [keyring_group]
