"""`credstore import netrc|hf|dotenv|env`: move keys people keep in plaintext today into the encrypted store.

Each command says which names it imported (never a value). ``--remove-source`` deletes the plaintext afterwards,
but only once every value it read is safely in the store: for netrc only the imported machine entries are cut out,
the rest of the file and its mode stay as they were.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import click

from credstore import catalog, fsutil, sources
from credstore.app.context import Context
from credstore.app.imports import ImportConflict, merge
from credstore.catalog import NAME_RE
from credstore.cli import terminal
from credstore.cli.common import context
from credstore.errors import NotFoundError, UsageError


def store_values(ctx: Context, values: Mapping[str, str], source: str, *, overwrite: bool) -> list[str]:
    """Store ``values`` in the profile in one write, say what happened. Returns the conflicting names."""
    imported, same, conflicts = merge(ctx, values, source, overwrite=overwrite)
    if imported:
        terminal.info(f"imported {_names_said(imported)} from {source} into profile '{ctx.profile}'")
    if same:
        terminal.info(f"already stored with the same value: {_names_said(same)}")
    for name in imported:
        warning = catalog.format_warning(name, values[name])
        if warning:
            terminal.warn(warning)
    if conflicts:
        terminal.warn(
            f"not imported, a different value is already stored: {_names_said(conflicts)} "
            "(rerun with --overwrite to replace it)"
        )
    return conflicts


#: Up to this many names are listed; more are counted (an import of thousands would fill the terminal).
_NAMES_LISTED = 10


def _names_said(names: list[str]) -> str:
    """The names for a message: all of a few; of many, how many, the first and the last (``list`` shows them)."""
    if len(names) <= _NAMES_LISTED:
        return ", ".join(names)
    return f"{len(names)} variables ({names[0]} ... {names[-1]}; `credstore list` shows them)"


def _finish(conflicts: list[str], remove: bool, remover: object, what: str) -> None:
    if conflicts:
        if remove:
            terminal.warn(f"{what} was left in place because not every value from it is stored")
        raise ImportConflict(f"{len(conflicts)} value(s) not imported: {', '.join(conflicts)}")
    if remove and callable(remover):
        remover()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError as exc:
        raise fsutil.io_error("remove", path, exc) from None
    terminal.info(f"removed the plaintext source {path}")


@click.group("import")
def import_() -> None:
    """Import keys from netrc, the Hugging Face token file, a .env file, the environment or git's credential store
    (names shown, never values). --remove-source deletes the plaintext afterwards."""


@import_.command("netrc")
@click.option("--host", default=None, metavar="HOST|URL", help="W&B server (default: the wandb.ai / CoreWeave hosts).")
@click.option("--file", "file", default=None, type=click.Path(dir_okay=False), help="netrc file [$NETRC or ~/.netrc].")
@click.option("--remove-source", is_flag=True, help="Afterwards remove the imported machine entries from the file.")
@click.option("--overwrite", is_flag=True, help="Replace values already stored with different ones.")
@click.pass_context
def import_netrc(ctx: click.Context, host: str | None, file: str | None, remove_source: bool, overwrite: bool) -> None:
    """WANDB_API_KEY from a netrc `machine` entry (and WANDB_BASE_URL when the host is not wandb's default)."""
    path = Path(file).expanduser() if file else sources.netrc_path()
    passwords = sources.netrc_passwords(path)
    hosts = catalog.SERVICES["wandb"].netrc_hosts
    base_url: str | None = None
    if host is not None:
        if "://" in host:
            from urllib.parse import urlsplit

            machine = urlsplit(host).netloc
            base_url = host.rstrip("/")
        else:
            machine = host
            base_url = f"https://{host}"
        if not machine:
            raise UsageError(f"--host {host!r} names no host")
        if machine in hosts:
            base_url = None
        candidates = [machine]
    else:
        candidates = list(hosts)
    found = [m for m in candidates if m in passwords]
    if not found:
        raise NotFoundError(f"no entry for {' or '.join(candidates)} in {path}; nothing imported")
    chosen = found[0]
    key = passwords[chosen]
    removable = {m for m in found if passwords[m] == key}
    for other in found[1:]:
        if passwords[other] != key:
            terminal.warn(
                f"{path} also holds a different key for {other}; imported the one for {chosen} (what wandb reads "
                "first); that entry is left in place"
            )
    values = {"WANDB_API_KEY": key}
    if base_url is not None:
        values["WANDB_BASE_URL"] = base_url
    conflicts = store_values(context(ctx), values, f"{path} (machine {chosen})", overwrite=overwrite)

    def remove() -> None:
        remaining = sources.remove_netrc_machines(sources.read_text(path, "netrc file"), removable)
        if remaining.strip() == "":
            _unlink(path)
            return
        sources.rewrite_keeping_mode(path, remaining.encode())
        terminal.warn(f"removed the entries for {', '.join(sorted(removable))} from {path}; the rest is unchanged")

    _finish(conflicts, remove_source, remove, str(path))


@import_.command("hf")
@click.option("--remove-source", is_flag=True, help="Afterwards delete the token file.")
@click.option("--overwrite", is_flag=True, help="Replace a different HF_TOKEN already stored.")
@click.pass_context
def import_hf(ctx: click.Context, remove_source: bool, overwrite: bool) -> None:
    """HF_TOKEN from the Hugging Face token file (where `huggingface-cli login` put it)."""
    path = sources.hf_token_path()
    token = sources.read_text(path, "Hugging Face token file").strip()
    if not token:
        raise NotFoundError(f"the Hugging Face token file {path} is empty; nothing imported")
    conflicts = store_values(context(ctx), {"HF_TOKEN": token}, str(path), overwrite=overwrite)
    stored_tokens = path.with_name("stored_tokens")
    _finish(conflicts, remove_source, lambda: _unlink(path), str(path))
    if stored_tokens.exists():
        terminal.warn(f"{stored_tokens} also keeps named tokens in plaintext; credstore left it alone")


@import_.command("dotenv")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--remove-source", is_flag=True, help="Afterwards delete FILE.")
@click.option("--overwrite", is_flag=True, help="Replace values already stored with different ones.")
@click.pass_context
def import_dotenv(ctx: click.Context, file: str, remove_source: bool, overwrite: bool) -> None:
    """Every NAME=value of a .env FILE (secret unless credstore knows the name as plain)."""
    path = Path(file).expanduser()
    values = sources.parse_dotenv(sources.read_text(path, "file"), str(path), terminal.warn)
    if not values:
        raise NotFoundError(f"no NAME=value lines in {path}; nothing imported")
    conflicts = store_values(context(ctx), values, str(path), overwrite=overwrite)
    _finish(conflicts, remove_source, lambda: _unlink(path), str(path))


@import_.command("git-credentials")
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A git credentials file [~/.git-credentials and ~/.config/git/credentials]; may be repeated.",
)
@click.option("--remove-source", is_flag=True, help="Afterwards remove the imported lines (the file when emptied).")
@click.option("--overwrite", is_flag=True, help="Replace passwords already stored with different ones.")
@click.pass_context
def import_git_credentials(ctx: click.Context, files: tuple[str, ...], remove_source: bool, overwrite: bool) -> None:
    """Passwords git's `credential.helper=store` keeps in plaintext, as items of the git credential helper
    (then: git config --global credential.helper credstore)."""
    from credstore.app import keyring_items

    paths = [Path(f).expanduser() for f in files] or [p for p in sources.git_credentials_paths() if p.exists()]
    if not paths:
        raise NotFoundError(f"no git credentials file at {' or '.join(map(str, sources.git_credentials_paths()))}")
    app_ctx = context(ctx)
    for path in paths:
        text = sources.read_text(path, "git credentials file")
        found = sources.parse_git_credentials(text, str(path), terminal.warn)
        if not found:
            terminal.warn(f"no credentials in {path}; nothing imported from it")
            continue
        triples = [(keyring_items.git_service(c.protocol, c.host, c.path), c.username, c.password) for c in found]
        imported, same, conflicts = keyring_items.merge(app_ctx, triples, str(path), overwrite=overwrite)
        if imported:
            terminal.warn(f"imported {len(imported)} git credential(s) from {path}: {', '.join(imported)}")
        if same:
            terminal.warn(f"already stored with the same password: {', '.join(same)}")
        if conflicts:
            terminal.warn(
                f"not imported, a different password is already stored: {', '.join(conflicts)} "
                "(rerun with --overwrite to replace it)"
            )
        done = {c.line for c, t in zip(found, triples, strict=True) if keyring_items.label(t[0], t[1]) not in conflicts}

        def remove(path: Path = path, text: str = text, done: set[int] = done) -> None:
            remaining = sources.remove_lines(text, done)
            if remaining.strip() == "":
                _unlink(path)
                return
            sources.rewrite_keeping_mode(path, remaining.encode())
            terminal.warn(f"removed the imported lines from {path}; the rest is unchanged")

        _finish(conflicts, remove_source, remove, str(path))
    terminal.warn("for git to use them: git config --global credential.helper credstore")


# -- environment -----------------------------------------------------------------------------------------------


@import_.command("env")
@click.argument("names", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Replace values already stored with different ones.")
@click.pass_context
def import_env(ctx: click.Context, names: tuple[str, ...], overwrite: bool) -> None:
    """NAMES from the current environment (e.g. keys exported by ~/.bashrc)."""
    values: dict[str, str] = {}
    for name in names:
        if not NAME_RE.match(name):
            raise UsageError(f"invalid variable name {name!r}")
        if os.environ.get(name):
            values[name] = os.environ[name]
        else:
            terminal.warn(f"{name} is not set in this environment; skipped")
    if not values:
        raise NotFoundError("none of the named variables is set; nothing imported")
    conflicts = store_values(context(ctx), values, "the environment", overwrite=overwrite)
    # credstore cannot unset variables in its parent shell; point at where they come from instead.
    home = Path(os.path.expanduser("~"))
    for rel in sources.STARTUP_FILES:
        path = home / rel
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for lineno, text in enumerate(lines, 1):
            for name in values:
                if re.match(rf"\s*(export\s+|set\s+-gx\s+)?{name}[=\s]", text):
                    terminal.warn(f"{name} is also set in plaintext in {path} line {lineno}; remove it there")
    terminal.warn(f"to drop the plaintext copies from this shell: unset {' '.join(values)}")
    _finish(conflicts, False, None, "the environment")


COMMANDS = [import_]
