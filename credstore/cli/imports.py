"""`credstore import netrc|hf|dotenv|env`: move keys people keep in plaintext today into the encrypted store.

Each command says which names it imported (never a value). ``--remove-source`` deletes the plaintext afterwards,
but only once every value it read is safely in the store: for netrc only the imported machine entries are cut out,
the rest of the file and its mode stay as they were.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Mapping
from pathlib import Path

import click

from credstore import audit, catalog
from credstore.catalog import NAME_RE, check_value
from credstore.cli import terminal
from credstore.cli.common import open_store
from credstore.errors import CredstoreError, NotFoundError, UsageError
from credstore.store import fsutil
from credstore.store.base import Snapshot
from credstore.store.shared import drop_expired_previous

WANDB_DEFAULT_HOSTS = ("api.forge.coreweave.com", "api.wandb.ai")  # wandb >= 0.31 reads the first, falls back


class ImportConflict(CredstoreError):
    """A value differs from what is already stored and --overwrite was not given (exit 1)."""


# -- storing ---------------------------------------------------------------------------------------------------


def store_values(
    ctx: click.Context, values: Mapping[str, str], source: str, *, overwrite: bool
) -> tuple[list[str], list[str], list[str]]:
    """Store ``values`` in the profile in one write. Returns (imported, already identical, conflicting) names."""
    for name, value in values.items():
        check_value(name, value)
        terminal.check_length(name, value)
    from credstore.cli.entries import ensure_store, set_value

    store = open_store(ctx)
    ensure_store(store)
    now = time.time()

    def change(snapshot: Snapshot) -> tuple[list[str], list[str], list[str]]:
        drop_expired_previous(snapshot, now)
        imported, same, conflicts = [], [], []
        for name, value in values.items():
            old = snapshot.entries.get(name)
            if old is not None and old.value == value:
                same.append(name)
                continue
            if old is not None and not overwrite:
                conflicts.append(name)
                continue
            set_value(snapshot, name, value, catalog.is_secret(name) if old is None else old.secret, now)
            imported.append(name)
        return imported, same, conflicts

    imported, same, conflicts = store.modify(change) if values else ([], [], [])
    if imported:
        audit.record("import", profile=store.profile, names=imported, via=source)
        terminal.warn(f"imported {', '.join(imported)} from {source} into profile '{store.profile}'")
    if same:
        terminal.warn(f"already stored with the same value: {', '.join(same)}")
    for name in values:
        warning = catalog.format_warning(name, values[name])
        if warning and name in imported:
            terminal.warn(warning)
    if conflicts:
        terminal.warn(
            f"not imported, a different value is already stored: {', '.join(conflicts)} "
            "(rerun with --overwrite to replace it)"
        )
    return imported, same, conflicts


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
    terminal.warn(f"removed the plaintext source {path}")


def _read_text(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no {what} at {path}") from None
    except OSError as exc:
        raise fsutil.io_error("read", path, exc) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; nothing imported") from None


# -- netrc -----------------------------------------------------------------------------------------------------


def netrc_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``$NETRC``, else ``~/.netrc`` (else ``~/_netrc`` when only that exists), as wandb and requests look."""
    if environ.get("NETRC"):
        return Path(environ["NETRC"]).expanduser()
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    default = home / ".netrc"
    if not default.exists() and (home / "_netrc").exists():
        return home / "_netrc"
    return default


def netrc_passwords(path: Path) -> dict[str, str]:
    """machine -> password, parsed with the stdlib ``netrc`` module.

    The file is passed explicitly, so the module's permission check for ``~/.netrc`` (which rejects group/world
    readable files on some Python versions) does not stop an import meant to get the key out of that very file.
    Parse errors are reported by line number only: the module's message can quote a token, which may be a key.
    """
    import netrc

    _read_text(path, "netrc file")  # clear errors for missing / unreadable / non-UTF-8 files
    try:
        parsed = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:
        raise UsageError(f"cannot parse {path} (near line {exc.lineno}); nothing imported") from None
    except OSError as exc:
        raise fsutil.io_error("read", path, exc) from None
    return {host: auth[2] for host, auth in parsed.hosts.items() if auth and auth[2]}


_BOUNDARY = {"machine", "default", "macdef"}


def _netrc_tokens(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for each word, skipping comments and macro bodies."""
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        start = i
        chars = []
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
        word = "".join(chars)
        out.append((word, start, i))
        if word == "macdef" and not (len(out) >= 2 and out[-2][0] in ("login", "password", "account", "machine")):
            # the macro's name, then its body up to the first empty line
            j = text.find("\n", i)
            if j < 0:
                break
            blank = text.find("\n\n", j)
            body_end = n if blank < 0 else blank + 2
            out.append(("<macro>", j + 1, body_end))
            i = body_end
    return out


def remove_netrc_machines(text: str, machines: set[str]) -> str:
    """``text`` without the entries of ``machines`` (from ``machine X`` to the next entry); the rest unchanged."""
    tokens = _netrc_tokens(text)
    # Which tokens are keywords (not the value following login/password/...): decided left to right.
    keyword = []
    expect_value = False
    for word, _, _ in tokens:
        keyword.append(not expect_value and word != "<macro>")
        expect_value = keyword[-1] and word in ("machine", "login", "password", "account", "macdef")
    cuts: list[tuple[int, int]] = []
    k = 0
    while k < len(tokens):
        word, start, _ = tokens[k]
        if keyword[k] and word == "machine" and k + 1 < len(tokens) and tokens[k + 1][0] in machines:
            end_k = k + 2
            while end_k < len(tokens) and not (keyword[end_k] and tokens[end_k][0] in _BOUNDARY):
                end_k += 1
            end = tokens[end_k][1] if end_k < len(tokens) else len(text)
            line_start = text.rfind("\n", 0, start) + 1
            if text[line_start:start].strip() == "":
                start = line_start
            if end_k < len(tokens):
                next_line_start = text.rfind("\n", 0, end) + 1
                if text[next_line_start:end].strip() == "" and next_line_start > start:
                    end = next_line_start
            cuts.append((start, end))
            k = end_k
            continue
        k += 1
    for start, end in reversed(cuts):
        text = text[:start] + text[end:]
    return text


def rewrite_keeping_mode(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, keeping its mode (and, when run as root, its owner)."""
    st = os.stat(path)
    owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None
    fsutil.atomic_replace(path, data, mode=stat.S_IMODE(st.st_mode), owner=owner)


@click.group("import")
def import_() -> None:
    """Import keys from netrc, the Hugging Face token file, a .env file or the environment (names shown, never
    values). --remove-source deletes the plaintext afterwards."""


@import_.command("netrc")
@click.option("--host", default=None, metavar="HOST|URL", help="W&B server (default: the wandb.ai / CoreWeave hosts).")
@click.option("--file", "file", default=None, type=click.Path(dir_okay=False), help="netrc file [$NETRC or ~/.netrc].")
@click.option("--remove-source", is_flag=True, help="Afterwards remove the imported machine entries from the file.")
@click.option("--overwrite", is_flag=True, help="Replace values already stored with different ones.")
@click.pass_context
def import_netrc(ctx: click.Context, host: str | None, file: str | None, remove_source: bool, overwrite: bool) -> None:
    """WANDB_API_KEY from a netrc `machine` entry (and WANDB_BASE_URL when the host is not wandb's default)."""
    path = Path(file).expanduser() if file else netrc_path()
    passwords = netrc_passwords(path)
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
        if machine in WANDB_DEFAULT_HOSTS:
            base_url = None
        candidates = [machine]
    else:
        candidates = list(WANDB_DEFAULT_HOSTS)
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
    _, _, conflicts = store_values(ctx, values, f"{path} (machine {chosen})", overwrite=overwrite)

    def remove() -> None:
        remaining = remove_netrc_machines(_read_text(path, "netrc file"), removable)
        if remaining.strip() == "":
            _unlink(path)
            return
        rewrite_keeping_mode(path, remaining.encode())
        terminal.warn(f"removed the entries for {', '.join(sorted(removable))} from {path}; the rest is unchanged")

    _finish(conflicts, remove_source, remove, str(path))


# -- Hugging Face ----------------------------------------------------------------------------------------------


def hf_token_path(environ: Mapping[str, str] = os.environ) -> Path:
    """As huggingface_hub: $HF_TOKEN_PATH, else $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token or
    ~/.cache/huggingface/token."""
    if environ.get("HF_TOKEN_PATH"):
        return Path(environ["HF_TOKEN_PATH"]).expanduser()
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]).expanduser() / "token"
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    cache = Path(environ["XDG_CACHE_HOME"]).expanduser() if environ.get("XDG_CACHE_HOME") else home / ".cache"
    return cache / "huggingface" / "token"


@import_.command("hf")
@click.option("--remove-source", is_flag=True, help="Afterwards delete the token file.")
@click.option("--overwrite", is_flag=True, help="Replace a different HF_TOKEN already stored.")
@click.pass_context
def import_hf(ctx: click.Context, remove_source: bool, overwrite: bool) -> None:
    """HF_TOKEN from the Hugging Face token file (where `huggingface-cli login` put it)."""
    path = hf_token_path()
    token = _read_text(path, "Hugging Face token file").strip()
    if not token:
        raise NotFoundError(f"the Hugging Face token file {path} is empty; nothing imported")
    _, _, conflicts = store_values(ctx, {"HF_TOKEN": token}, str(path), overwrite=overwrite)
    stored_tokens = path.with_name("stored_tokens")
    _finish(conflicts, remove_source, lambda: _unlink(path), str(path))
    if stored_tokens.exists():
        terminal.warn(f"{stored_tokens} also keeps named tokens in plaintext; credstore left it alone")


# -- dotenv ----------------------------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, origin: str) -> dict[str, str]:
    """``NAME=value`` lines as docker/python-dotenv write them: optional ``export``, '...' (literal), "..." (with
    \\n \\t \\" \\\\ escapes, may span lines), unquoted (a `` #`` starts a comment). ``$VAR`` is not expanded.
    Malformed lines are skipped with a warning naming the line number, never its content."""
    out: dict[str, str] = {}
    i, n, line = 0, len(text), 1
    name_re = re.compile(r"(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*")

    def skip_line(pos: int) -> int:
        end = text.find("\n", pos)
        return n if end < 0 else end

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if c == "#":
            i = skip_line(i)
            continue
        start_line = line
        m = name_re.match(text, i)
        if not m:
            terminal.warn(f"{origin}:{start_line}: not NAME=VALUE; skipped")
            i = skip_line(i)
            continue
        name = m.group(1)
        i = m.end()
        if i < n and text[i] in "\"'":
            quote = text[i]
            i += 1
            chars: list[str] = []
            while i < n and text[i] != quote:
                ch = text[i]
                if ch == "\n":
                    line += 1
                if quote == '"' and ch == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    chars.append(_ESCAPES.get(nxt, "\\" + nxt))
                    i += 2
                    continue
                chars.append(ch)
                i += 1
            if i >= n:
                terminal.warn(f"{origin}:{start_line}: {name} has an unterminated quote; skipped")
                break
            i += 1
            value = "".join(chars)
            rest_end = skip_line(i)
            rest = text[i:rest_end].strip()
            if rest and not rest.startswith("#"):
                terminal.warn(f"{origin}:{start_line}: {name} has text after its closing quote; skipped")
                i = rest_end
                continue
            i = rest_end
        else:
            end = skip_line(i)
            raw = text[i:end]
            comment = re.search(r"[ \t]#", raw)
            if comment:
                raw = raw[: comment.start()]
            value = raw.strip()
            i = end
        if value == "":
            terminal.warn(f"{origin}:{start_line}: {name} is empty; skipped")
            continue
        if "\0" in value:
            terminal.warn(f"{origin}:{start_line}: {name} contains a NUL byte; skipped")
            continue
        out[name] = value
    return out


@import_.command("dotenv")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--remove-source", is_flag=True, help="Afterwards delete FILE.")
@click.option("--overwrite", is_flag=True, help="Replace values already stored with different ones.")
@click.pass_context
def import_dotenv(ctx: click.Context, file: str, remove_source: bool, overwrite: bool) -> None:
    """Every NAME=value of a .env FILE (secret unless credstore knows the name as plain)."""
    path = Path(file).expanduser()
    values = parse_dotenv(_read_text(path, "file"), str(path))
    if not values:
        raise NotFoundError(f"no NAME=value lines in {path}; nothing imported")
    _, _, conflicts = store_values(ctx, values, str(path), overwrite=overwrite)
    _finish(conflicts, remove_source, lambda: _unlink(path), str(path))


# -- environment -----------------------------------------------------------------------------------------------

_STARTUP_FILES = (".bashrc", ".bash_profile", ".profile", ".zshrc", ".zshenv", ".config/fish/config.fish")


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
    _, _, conflicts = store_values(ctx, values, "the environment", overwrite=overwrite)
    # credstore cannot unset variables in its parent shell; point at where they come from instead.
    home = Path(os.path.expanduser("~"))
    for rel in _STARTUP_FILES:
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
