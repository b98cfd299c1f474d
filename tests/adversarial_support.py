"""Shared helpers of the adversarial suites (test_tamper, test_crash, test_concurrency, test_bad_input, ...).

Stores are made explicitly at a protection level. ``LEVELS`` lists the levels the Python-API tests run over;
``CLI_LEVELS`` the levels the suites drive through the real command. A CLI test at the passphrase level needs the
store unlocked (``credstore env`` never prompts, and nothing here has a terminal): ``cli_at_level`` creates the store
with the passphrase on stdin and runs ``credstore unlock`` from a helper thread that has a kernel session keyring of
its own, then runs every later command from that thread, so they all see the unlock, as the commands of one login do.
Linux keeps the session keyring per thread, so the test runner's other threads and its own keyrings are untouched.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

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

#: What CLI tests at the passphrase level give on stdin (the same as the API's, so ``open_store`` reads those stores
#: too), and the setting that keeps Argon2id at the OWASP floor for new stores.
CLI_PASSPHRASE = PASSPHRASE
WEAK_KDF = {"CREDSTORE_TEST_WEAK_KDF": "1"}


def _cli_passphrase_problem() -> str | None:
    if not level_available("passphrase"):
        return PASSPHRASE_MISSING
    from credstore.crypto import kernel_keyring

    ok, reason = kernel_keyring.available()
    return None if ok else f"`credstore unlock` needs the kernel session keyring, which is not usable here: {reason}"


_PASSPHRASE_CLI_PROBLEM = _cli_passphrase_problem()

#: Levels the CLI suites create through the real command (see ``cli_at_level``). The keyring level needs the Secret
#: Service fixture and is left to its own suite.
CLI_LEVELS = [
    pytest.param("keyfile", id="keyfile"),
    pytest.param(
        "passphrase",
        id="passphrase",
        marks=pytest.mark.skipif(_PASSPHRASE_CLI_PROBLEM is not None, reason=_PASSPHRASE_CLI_PROBLEM or ""),
    ),
]

T = TypeVar("T")


def join_new_session_keyring() -> None:
    """Give the calling thread a fresh anonymous session keyring (``KEYCTL_JOIN_SESSION_KEYRING`` with no name), as
    ``keyctl session -`` or a login does. Only this thread changes; every process it starts afterwards inherits it."""
    from credstore.crypto import kernel_keyring

    assert threading.current_thread() is not threading.main_thread(), "would change the test runner's keyring"
    kernel_keyring._keyctl(kernel_keyring.KEYCTL_JOIN_SESSION_KEYRING, None)
    assert kernel_keyring.session_keyring_state() == "session"


def unlock_in_this_thread(env: dict[str, str], cwd: Path | str, profile: str | None = None) -> None:
    """Join a fresh session keyring in this (non-main) thread and `credstore unlock` the store ``env`` points at."""
    join_new_session_keyring()
    args = ["--profile", profile] if profile else []
    done = subprocess.run(
        [sys.executable, "-m", "credstore", *args, "unlock"],
        input=(CLI_PASSPHRASE + "\n").encode(),
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()


class LevelCLI:
    """Runs commands like the ``cli`` fixture, against a store at ``level``.

    For ``passphrase`` every call runs on one helper thread with its own session keyring (see the module docstring);
    ``call(fn, ...)`` runs any callable there (for a raw ``subprocess.run`` with its own options).
    """

    def __init__(self, cli: Any, level: str) -> None:
        self.cli = cli
        self.level = level
        self.env: dict[str, str] = cli.env
        self.home: Path = cli.home
        self.store_dir: Path = cli.store_dir
        self._thread: ThreadPoolExecutor | None = None
        if level == "passphrase":
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="login", initializer=join_new_session_keyring)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._thread is None:
            return fn(*args, **kwargs)
        return self._thread.submit(fn, *args, **kwargs).result()

    def __call__(self, *args: str, **kwargs: Any) -> Any:
        return self.call(self.cli, *args, **kwargs)

    def init(self, *, profile: str | None = None, preexec_fn: Callable[[], None] | None = None) -> None:
        """``credstore init --protection LEVEL`` (and for a passphrase: the passphrase on stdin, then ``unlock``)."""
        prefix = ["--profile", profile] if profile else []
        data = (CLI_PASSPHRASE + "\n").encode() if self.level == "passphrase" else b""
        for args in ([*prefix, "init", "--protection", self.level], [*prefix, "unlock"]):
            if args[-1] == "unlock" and self.level != "passphrase":
                break
            done = self.call(
                subprocess.run,
                [sys.executable, "-m", "credstore", *args],
                input=data,
                env={**self.env, **WEAK_KDF},
                cwd=self.cli.home,
                capture_output=True,
                timeout=120,
                preexec_fn=preexec_fn,
            )
            assert done.returncode == 0, (args, done.stderr.decode())

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)  # the thread ends; its session keyring (and the cached key) goes with it


@contextlib.contextmanager
def cli_at_level(cli: Any, level: str, *, init: bool = True) -> Iterator[LevelCLI]:
    """A ``LevelCLI`` for ``cli``; with ``init`` the default profile is created (and unlocked) at ``level`` first."""
    run = LevelCLI(cli, level)
    try:
        if init:
            run.init()
        yield run
    finally:
        run.close()


def open_store(home: Path, profile: str = "default", **kwargs: object) -> LocalStore:
    """A fresh LocalStore object (nothing cached) for the store under ``home`` with its own state dir."""
    kwargs.setdefault("lock_timeout", 120.0)
    kwargs.setdefault("ask_passphrase", lambda prompt: PASSPHRASE)
    return LocalStore(
        home,
        profile,
        state_dir=home / "state",
        interactive=True,
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
