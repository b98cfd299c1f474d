"""``credstore hook install`` / ``uninstall``: the shell hook written once to a file that the rc file sources.

The hook file (``$XDG_CONFIG_HOME/credstore/hook.<shell>``) holds the static hook text with credstore's absolute
command (``shells/posix_hook.py``, ``shells/fish.py``). The rc file gets one marked block that sources it if it is
still there, so removing credstore, or the file, never puts an error into a new shell. Installing again rewrites
the file and leaves one block; uninstalling removes the block and the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence

from credstore import shells
from credstore.errors import StoreIOError, UsageError

BEGIN = "# >>> credstore hook >>>"
END = "# <<< credstore hook <<<"


def config_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(_home(environ), ".config")
    return os.path.join(base, "credstore")


def _home(environ: Mapping[str, str]) -> str:
    return environ.get("HOME") or os.path.expanduser("~")


def rc_file(shell: str, environ: Mapping[str, str]) -> str:
    """The rc file an interactive ``shell`` reads: ~/.bashrc, ${ZDOTDIR:-~}/.zshrc, ~/.config/fish/config.fish."""
    home = _home(environ)
    if shell == "bash":
        return os.path.join(home, ".bashrc")
    if shell == "zsh":
        return os.path.join(environ.get("ZDOTDIR") or home, ".zshrc")
    if shell == "fish":
        base = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(home, ".config")
        return os.path.join(base, "fish", "config.fish")
    raise UsageError(f"no hook for {shell!r}: choose one of {', '.join(shells.HOOK_SHELLS)}")


def hook_file(shell: str, environ: Mapping[str, str]) -> str:
    return os.path.join(config_dir(environ), f"hook.{shell}")


def default_shell(environ: Mapping[str, str]) -> str:
    try:
        shell = shells.detect_shell(environ)
    except UsageError:  # a csh, say: its own words list shells `hook` has no use for
        shell = ""
    if shell not in shells.HOOK_SHELLS:
        raise UsageError(f"$SHELL is not one of {', '.join(shells.HOOK_SHELLS)}: name it with --shell")
    return shell


def _block(shell: str, path: str) -> str:
    quoted = shells.quote(shell, path)
    line = f"test -f {quoted}; and source {quoted}" if shell == "fish" else f"if [ -f {quoted} ]; then . {quoted}; fi"
    return f"{BEGIN}\n# added by `credstore hook install`; `credstore hook uninstall` removes it\n{line}\n{END}\n"


def _without_block(text: str) -> tuple[str, bool]:
    """``text`` without credstore's marked block(s); whether there was one."""
    out: list[str] = []
    inside = found = False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == BEGIN:
            inside = found = True
            continue
        if inside:
            if line.rstrip("\n") == END:
                inside = False
            continue
        out.append(line)
    return "".join(out), found


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise StoreIOError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: str, text: str, mode: int) -> None:
    """Replace ``path`` atomically, keeping its mode (``mode`` for a new file); a symlinked rc file is followed."""
    target = os.path.realpath(path)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(target).st_mode & 0o7777
        temp = f"{target}.credstore-{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, text.encode("utf-8", "surrogateescape"))
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except OSError as exc:
        raise StoreIOError(f"cannot write {path}: {exc.strerror}") from None


def install(shell: str, command: Sequence[str], probe: str, environ: Mapping[str, str]) -> tuple[str, str, bool]:
    """Write the hook file (running ``command``, when ``probe`` exists) and make the rc file source it (once).
    Returns (rc file, hook file, whether the rc file changed)."""
    rc, path = rc_file(shell, environ), hook_file(shell, environ)
    _write(path, shells.hook_text(shell, list(command), probe), 0o644)
    before = _read(rc)
    rest, _found = _without_block(before)
    if rest and not rest.endswith("\n"):
        rest += "\n"
    after = rest + _block(shell, path)
    if after != before:
        _write(rc, after, 0o644)
    return rc, path, after != before


def uninstall(shell_names: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Remove the block from each shell's rc file and the hook files. Returns the files changed or removed."""
    changed: list[str] = []
    for shell in shell_names:
        rc = rc_file(shell, environ)
        text, found = _without_block(_read(rc))
        if found:
            _write(rc, text, 0o644)
            changed.append(rc)
        path = hook_file(shell, environ)
        try:
            os.unlink(path)
            changed.append(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreIOError(f"cannot remove {path}: {exc.strerror}") from None
    return changed
