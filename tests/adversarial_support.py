"""Shared helpers of the adversarial suites (test_tamper, test_crash, test_concurrency, test_bad_input, ...).

Stores are made explicitly at a protection level. ``LEVELS`` lists the levels the Python-API tests run over: a level
whose module is not on this branch yet is skipped with the reason, so the integrator only has to merge.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

from credstore.errors import CredstoreError
from credstore.store.base import Entry, Snapshot
from credstore.store.local import LocalStore

PASSPHRASE = "correct horse battery staple 4711"


def level_available(kind: str) -> bool:
    if kind == "keyfile":
        return True
    module = {"passphrase": "credstore.crypto.passphrase", "keyring": "credstore.crypto.oskeyring"}[kind]
    return importlib.util.find_spec(module) is not None


PASSPHRASE_MISSING = "passphrase level not built yet (branch protection)"

#: Levels for Python-API tests. The keyring level needs the Secret Service fixture and is left to its own suite.
LEVELS = [
    pytest.param("keyfile", id="keyfile"),
    pytest.param(
        "passphrase",
        id="passphrase",
        marks=pytest.mark.skipif(not level_available("passphrase"), reason=PASSPHRASE_MISSING),
    ),
]

#: Levels the CLI can create without a terminal. The passphrase level needs a terminal (or a way the protection
#: branch provides); the integrator adds it here once `credstore init --protection passphrase` can be scripted.
CLI_LEVELS = [pytest.param("keyfile", id="keyfile")]


def open_store(home: Path, profile: str = "default", **kwargs: object) -> LocalStore:
    """A fresh LocalStore object (nothing cached) for the store under ``home`` with its own state dir."""
    kwargs.setdefault("lock_timeout", 120.0)
    return LocalStore(
        home,
        profile,
        state_dir=home / "state",
        interactive=True,
        ask_passphrase=lambda prompt: PASSPHRASE,
        **kwargs,  # type: ignore[arg-type]
    )


def make_store(home: Path, level: str, entries: dict[str, str] | None = None, profile: str = "default") -> LocalStore:
    """Create a store at ``level`` under ``home`` (made 0700) holding ``entries``."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = open_store(home, profile)
    store.create(level)
    if entries:
        put(store, entries)
    return store


def put(store: LocalStore, entries: dict[str, str]) -> None:
    """Store ``entries`` (secret, created and updated now, as `credstore set` records them)."""

    def change(snapshot: Snapshot) -> None:
        now = time.time()
        for name, value in entries.items():
            old = snapshot.entries.get(name)
            created = old.created if old is not None else now
            snapshot.entries[name] = Entry(name, value, created=created, updated=now)

    store.modify(change)


def values(store: LocalStore) -> dict[str, str]:
    return {name: e.value for name, e in store.read().entries.items()}


def read_values_fresh(home: Path, profile: str = "default") -> dict[str, str]:
    return values(open_store(home, profile))


def write_over(path: Path, data: bytes) -> None:
    """Replace a file's bytes in place, keeping its inode and mode (as a tamperer with write access would)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def assert_one_line_error(result, code: int | None = None) -> None:
    """A CLI failure: the documented code, exactly one line `credstore: ...` on stderr, no traceback."""
    assert result.returncode != 0, f"expected a failure, got 0 (stdout {result.stdout!r})"
    if code is not None:
        assert result.returncode == code, f"exit {result.returncode}, expected {code}: {result.stderr!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"stderr is not one line: {result.stderr!r}"
    assert lines[0].startswith("credstore: "), lines[0]
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr, result.stderr


def error_class(exc: BaseException) -> str:
    assert isinstance(exc, CredstoreError), f"not a credstore error: {type(exc).__name__}: {exc}"
    return type(exc).__name__
