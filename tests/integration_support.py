"""Registering this checkout's entry points for real clients (keyring, pip, twine, git), without installing it.

keyring finds backends through the ``keyring.backends`` entry-point group of installed distributions, and git finds
``git-credential-credstore`` on PATH. The tests must exercise this checkout, not whatever copy of credstore is
installed, so :func:`register_checkout` writes what an install writes, from ``pyproject.toml`` itself: a
``credstore-<version>.dist-info`` directory (``METADATA``, ``entry_points.txt`` with every entry-point group and the
console scripts) in a directory put first on ``PYTHONPATH`` (so it shadows an installed credstore's metadata), and
each command of ``[tool.setuptools] script-files`` (``bin/credstore``, ...) in a ``bin`` directory, its ``#!`` line
naming this interpreter, as pip installs them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
BACKEND_CLASS = "credstore.integrations.keyring_backend.CredstoreKeyring"


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Registered:
    """``site``: put first on PYTHONPATH; ``bin``: put first on PATH."""

    site: Path
    bin: Path

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """A client's environment: a fresh HOME with its own store, no D-Bus session (a headless box), this
        checkout's code and entry points first."""
        env = {
            "HOME": str(home),
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8",
            "CREDSTORE_HOME": str(home / ".local" / "share" / "credstore"),
            "PYTHONPATH": f"{self.site}:{REPO}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "SHELL": "/bin/sh",
        }
        env.update(extra)
        return env


def register_checkout(root: Path) -> Registered:
    data = project()
    site, bin_dir = root / "site", root / "bin"
    info = site / f"credstore-{data['version']}.dist-info"
    info.mkdir(parents=True)
    bin_dir.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: credstore\nVersion: {data['version']}\n")
    groups = {"console_scripts": data.get("scripts", {}), **data.get("entry-points", {})}
    text = ""
    for group, entries in groups.items():
        text += f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items()) + "\n"
    (info / "entry_points.txt").write_text(text)
    for source in script_files():
        text = source.read_text()
        assert text.startswith("#!"), source
        script = bin_dir / source.name
        script.write_text(f"#!{sys.executable}\n" + text.partition("\n")[2])
        script.chmod(0o755)
    return Registered(site, bin_dir)


def script_files() -> list[Path]:
    """The commands the project installs (pyproject's ``tool.setuptools.script-files``)."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return [REPO / name for name in tool["script-files"]]
