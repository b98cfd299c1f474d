"""Where keys sit in plaintext today, and parsers for those places: netrc, the Hugging Face token file, .env files,
shell startup files, git's credential store. Pure functions over files, shared by the importers
(``credstore import``) and ``doctor``.

Which hosts and files belong to which service is the catalog's knowledge (``catalog.py``); this module knows the
file formats.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from credstore import fsutil
from credstore.errors import NotFoundError, UsageError

#: Shell startup files where people paste `export KEY=...` (relative to the home directory).
STARTUP_FILES = (
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".config/fish/config.fish",
)


def read_text(path: Path, what: str) -> str:
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

    read_text(path, "netrc file")  # clear errors for missing / unreadable / non-UTF-8 files
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


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, origin: str, warn: Callable[[str], None]) -> dict[str, str]:
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
            warn(f"{origin}:{start_line}: not NAME=VALUE; skipped")
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
                if quote == "'" and ch == "\\" and text[i + 1 : i + 2] == "'":
                    # python-dotenv and compose read \' inside single quotes as a quote (our dotenv output uses it)
                    chars.append("'")
                    i += 2
                    continue
                chars.append(ch)
                i += 1
            if i >= n:
                warn(f"{origin}:{start_line}: {name} has an unterminated quote; skipped")
                break
            i += 1
            value = "".join(chars)
            rest_end = skip_line(i)
            rest = text[i:rest_end].strip()
            if rest and not rest.startswith("#"):
                warn(f"{origin}:{start_line}: {name} has text after its closing quote; skipped")
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
            warn(f"{origin}:{start_line}: {name} is empty; skipped")
            continue
        if "\0" in value:
            warn(f"{origin}:{start_line}: {name} contains a NUL byte; skipped")
            continue
        out[name] = value
    return out


def netrc_machines(text: str) -> list[tuple[str, int, bool]]:
    """(machine, line number, has a password) for each entry of a netrc file (``default`` for the default entry)."""
    tokens = _netrc_tokens(text)
    entries: list[list] = []
    k = 0
    while k < len(tokens):
        word, start, _ = tokens[k]
        if word in ("machine", "default"):
            name = "default"
            if word == "machine" and k + 1 < len(tokens):
                k += 1
                name = tokens[k][0]
            entries.append([name, text.count("\n", 0, start) + 1, False])
        elif word in ("login", "account", "macdef"):
            k += 1  # skip the value
        elif word == "password" and entries:
            entries[-1][2] = True
            k += 1
        k += 1
    return [(str(name), int(line), bool(has)) for name, line, has in entries]


_POSIX_ASSIGN = re.compile(r"^\s*(?:export\s+|declare\s+-x\s+|typeset\s+-x\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_FISH_ASSIGN = re.compile(r"^\s*set\s+(?:-[A-Za-z]+\s+)*([A-Za-z_][A-Za-z0-9_]*)\s+(.+)$")


def _literal(value: str) -> bool:
    """Whether an assigned shell value is a literal (a key pasted in) rather than a lookup ($(...), $VAR)."""
    value = value.strip()
    try:
        words = shlex.split(value, comments=True)
    except ValueError:
        words = [value]
    if not words or not words[0]:
        return False
    raw = value.lstrip("\"'")
    return not (raw.startswith(("$", "`", "(")) or "$(" in value or "`" in value)


def startup_assignments(home: Path) -> Iterator[tuple[Path, int, str, bool]]:
    """(file, line number, variable name, whether the value is a literal) for each assignment in the shell startup
    files under ``home`` (comments skipped)."""
    for rel in STARTUP_FILES:
        path = home / rel
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        pattern = _FISH_ASSIGN if rel.endswith(".fish") else _POSIX_ASSIGN
        for number, line in enumerate(lines, 1):
            if line.lstrip().startswith("#"):
                continue
            match = pattern.match(line)
            if match:
                yield path, number, match.group(1), _literal(match.group(2))


# -- git's credential store (`credential.helper=store`) ---------------------------------------------------------------


class GitCredential(NamedTuple):
    """One line of a git credentials file. ``password`` is kept out of ``repr``."""

    line: int
    protocol: str
    host: str
    path: str
    username: str | None
    password: str

    def __repr__(self) -> str:
        return f"GitCredential(line={self.line}, protocol={self.protocol!r}, host={self.host!r})"


def git_credentials_paths(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Where ``git credential-store`` keeps plaintext passwords: ``~/.git-credentials`` and
    ``$XDG_CONFIG_HOME/git/credentials`` (``~/.config/git/credentials``)."""
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    config = Path(environ["XDG_CONFIG_HOME"]).expanduser() if environ.get("XDG_CONFIG_HOME") else home / ".config"
    return [home / ".git-credentials", config / "git" / "credentials"]


def parse_git_credentials(text: str, origin: str, warn: Callable[[str], None]) -> list[GitCredential]:
    """Lines as git-credential-store writes them: ``protocol://user:password@host[:port][/path]``, user, password
    and path percent-encoded. Lines that are not such URLs are skipped with a warning naming the line number only
    (the line holds a password)."""
    from urllib.parse import unquote, urlsplit

    found: list[GitCredential] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            parts = urlsplit(line)
            userinfo, at, host = parts.netloc.rpartition("@")
        except ValueError:
            at = ""
        if not at or not parts.scheme or not host or ":" not in userinfo:
            warn(f"{origin}:{number}: not a protocol://user:password@host line; skipped")
            continue
        user, _, password = userinfo.partition(":")
        found.append(
            GitCredential(
                number, parts.scheme, unquote(host), unquote(parts.path.lstrip("/")), unquote(user), unquote(password)
            )
        )
    return found


def remove_lines(text: str, numbers: set[int]) -> str:
    """``text`` without the lines numbered ``numbers`` (1-based); the rest byte for byte."""
    lines = text.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, 1) if number not in numbers)
