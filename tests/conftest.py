"""Shared fixtures: an isolated home per test and a runner for the real `credstore` command."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.fixtures_services"] if (REPO / "tests" / "fixtures_services.py").exists() else []


@functools.cache
def _installed_from_this_checkout() -> bool:
    try:
        dist = importlib.metadata.distribution("credstore")
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return url == REPO.as_uri()


def credstore_argv() -> list[str]:
    """The installed console script when it was installed from this checkout, else `python -m credstore`."""
    script = shutil.which("credstore")
    if script and _installed_from_this_checkout():
        return [script]
    return [sys.executable, "-m", "credstore"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


class CLI:
    """Runs `credstore` in a fresh HOME with its own store, the way a user would."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "CREDSTORE_HOME": str(home / ".local" / "share" / "credstore"),
            "PYTHONPATH": str(REPO),
            "SHELL": "/bin/sh",
        }

    @property
    def store_dir(self) -> Path:
        return Path(self.env["CREDSTORE_HOME"])

    def __call__(
        self,
        *args: str,
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
        check: bool = False,
        timeout: float = 60,
    ) -> Result:
        full_env = {**self.env, **(env or {})}
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [*credstore_argv(), *args],
            input=data if data is not None else b"",
            capture_output=True,
            env=full_env,
            timeout=timeout,
            cwd=self.home,
        )
        result = Result(
            proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"), proc.stdout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"credstore {' '.join(args)} failed ({proc.returncode}): {result.stderr}")
        return result


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return CLI(home)
