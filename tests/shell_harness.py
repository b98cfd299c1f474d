"""Run emitted text through real shells and read back, byte for byte, what they set.

Every run writes the emitted text to a file, has the real shell load it (``eval "$(cat FILE)"``, ``. FILE``,
``source FILE`` or ``cat FILE | source``), then reports each variable twice: as the shell itself sees it
(``printf '%s\\0'``) and as a child process sees it (``env -0``). Many variables go through one invocation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Test shell name -> (credstore shell name, executable candidates).
SHELL_BINARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bash": ("bash", ("bash",)),
    "zsh": ("zsh", ("zsh",)),
    "dash": ("sh", ("dash",)),
    "fish": ("fish", ("fish",)),
    "pwsh": ("powershell", ("pwsh", "powershell")),
}

POSIX_MODES = ("eval", "dot")
FISH_MODES = ("source", "pipe")

UNSET = None  # what a variable that is not set reads back as


def find_shell(test_shell: str) -> str | None:
    for candidate in SHELL_BINARIES[test_shell][1]:
        path = shutil.which(candidate)
        if path:
            return path
    return None


@dataclass
class Result:
    shell_view: dict[str, bytes | None]  # as the shell sees the variable (None = not set)
    env_view: dict[str, bytes | None]  # as a child process sees it (None = not exported)
    stderr: bytes


def _posix_driver(script: Path, names: list[str], mode: str, preamble: str, dump: Path) -> str:
    load = f'eval "$(cat {script})"' if mode == "eval" else f". {script}"
    lines = [preamble, load]
    for name in names:
        lines.append(f"if [ \"${{{name}+x}}\" = x ]; then printf 'S%s\\0' \"${name}\"; else printf 'U\\0'; fi")
    lines.append(f"exec env -0 >{dump}")
    return "\n".join(lines) + "\n"


def _fish_driver(script: Path, names: list[str], mode: str, preamble: str, dump: Path) -> str:
    load = f"source {script}" if mode == "source" else f"cat {script} | source"
    lines = [preamble, load]
    for name in names:
        lines.append(f"if set -q {name}; printf 'S%s\\0' \"${name}\"; else; printf 'U\\0'; end")
    lines.append(f"env -0 >{dump}")
    return "\n".join(lines) + "\n"


def _pwsh_driver(script: Path, names: list[str], mode: str, preamble: str, dump: Path) -> str:
    lines = [preamble, f". {script}"]
    lines.append("$out = [System.IO.MemoryStream]::new()")
    lines.append("$enc = [System.Text.UTF8Encoding]::new($false)")
    for name in names:
        lines.append(
            f"if (Test-Path Env:{name}) {{ $b = $enc.GetBytes('S' + $env:{name} + [char]0) }}"
            f" else {{ $b = $enc.GetBytes('U' + [char]0) }}; $out.Write($b, 0, $b.Length)"
        )
    lines.append("[System.Console]::OpenStandardOutput().Write($out.ToArray(), 0, [int]$out.Length)")
    # The child view comes from sh, so PowerShell's pipeline never re-encodes the bytes.
    lines.append(f"& sh -c 'env -0 >{dump}'")
    return "\n".join(lines) + "\n"


def run(
    test_shell: str,
    text: str,
    names: list[str],
    *,
    mode: str | None = None,
    preset: dict[str, str] | None = None,
    preamble: str = "",
    lang: str = "C.UTF-8",
) -> Result:
    """Load ``text`` into a fresh ``test_shell`` and read back ``names``.

    ``preset`` is put in the shell's environment first (to test unsets). ``preamble`` runs before loading.
    """
    exe = find_shell(test_shell)
    assert exe is not None, f"{test_shell} not installed"
    if mode is None:
        mode = FISH_MODES[0] if test_shell == "fish" else POSIX_MODES[0]
    with tempfile.TemporaryDirectory(prefix="credstore-shell-") as tmp:
        tmpdir = Path(tmp)
        script = tmpdir / "emitted.txt"
        script.write_bytes(text.encode("utf-8"))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmpdir),
            "XDG_CONFIG_HOME": str(tmpdir / "config"),
            "XDG_DATA_HOME": str(tmpdir / "data"),
            "XDG_CACHE_HOME": str(tmpdir / "cache"),
            "LANG": lang,
            "LC_ALL": lang,
        }
        env.update(preset or {})
        env_dump = tmpdir / "env.bin"
        if test_shell == "fish":
            driver = _fish_driver(script, names, mode, preamble, env_dump)
            argv = [exe, "--no-config", str(tmpdir / "driver")]
        elif test_shell == "pwsh":
            driver = _pwsh_driver(script, names, mode, preamble, env_dump)
            argv = [exe, "-NoProfile", "-NonInteractive", "-File", str(tmpdir / "driver.ps1")]
        else:
            driver = _posix_driver(script, names, mode, preamble, env_dump)
            argv = (
                [exe]
                + (["-f"] if test_shell == "zsh" else [])
                + (["--norc", "--noprofile"] if test_shell == "bash" else [])
                + [str(tmpdir / "driver")]
            )
        driver_path = tmpdir / ("driver.ps1" if test_shell == "pwsh" else "driver")
        driver_path.write_text(driver, encoding="utf-8")
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        assert proc.returncode == 0, f"{test_shell} exited {proc.returncode}: {proc.stderr[-2000:]!r}"
        records = proc.stdout.split(b"\0")
        assert records[-1] == b"", f"unterminated output from {test_shell}"
        records = records[:-1]
        assert len(records) == len(names), f"{test_shell} printed {len(records)} records for {len(names)} names"
        shell_view: dict[str, bytes | None] = {}
        for name, rec in zip(names, records):
            shell_view[name] = rec[1:] if rec[:1] == b"S" else UNSET
        exported = parse_env0(env_dump.read_bytes())
        env_view = {name: exported.get(name.encode()) for name in names}
        return Result(shell_view, env_view, proc.stderr)


def parse_env0(data: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for entry in data.split(b"\0"):
        if entry:
            key, _, value = entry.partition(b"=")
            out[key] = value
    return out


def run_interactive(test_shell: str, text: str, names: list[str]) -> tuple[dict[str, bytes | None], bool]:
    """Type ``text`` into an interactive bash or zsh (as if pasted at the prompt), then read ``names`` back.

    Returns the values as the shell sees them and whether history expansion (``!``) was switched on, so a
    caller can check that the test really exercised it.
    """
    assert test_shell in ("bash", "zsh")
    exe = find_shell(test_shell)
    assert exe is not None, f"{test_shell} not installed"
    option = "histexpand" if test_shell == "bash" else "banghist"
    lines = [text.rstrip("\n")]
    lines.append(f"if [[ -o {option} ]]; then printf 'H1\\0'; else printf 'H0\\0'; fi")
    for name in names:
        lines.append(f"if [ \"${{{name}+x}}\" = x ]; then printf 'S%s\\0' \"${name}\"; else printf 'U\\0'; fi")
    lines.append("exit 0")
    argv = [exe, "-f", "-i"] if test_shell == "zsh" else [exe, "--norc", "--noprofile", "-i"]
    with tempfile.TemporaryDirectory(prefix="credstore-shell-") as tmp:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "HISTFILE": os.devnull,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PS1": "",
            "PS2": "",
        }
        proc = subprocess.run(
            argv, env=env, input=("\n".join(lines) + "\n").encode("utf-8"), capture_output=True, timeout=120
        )
    assert proc.returncode == 0, f"interactive {test_shell} exited {proc.returncode}: {proc.stderr[-2000:]!r}"
    records = proc.stdout.split(b"\0")
    assert records[-1] == b"", f"unterminated output from interactive {test_shell}: {proc.stdout[-200:]!r}"
    records = records[:-1]
    assert len(records) == len(names) + 1, f"interactive {test_shell}: {len(records)} records, {proc.stderr!r}"
    hist_on = records[0] == b"H1"
    values = {name: (rec[1:] if rec[:1] == b"S" else UNSET) for name, rec in zip(names, records[1:])}
    return values, hist_on
