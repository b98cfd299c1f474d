"""Crash consistency: a writer killed with SIGKILL at every write, fsync and rename of a command, before and after it.

No hook lives in the product: a small driver (``DRIVER``) runs the real command in a child process after wrapping
``os.write``, ``os.fsync`` and ``os.replace`` so that the Nth call sends SIGKILL to the child itself, either just
before or just after the real call. An uninterrupted run counts the calls first. After every crash the store must
open and hold the old or the new content, never neither, and the next write must work (the flock died with the
writer). A second test kills the real `credstore set` at random moments from outside.

SIGKILL models a process crash (OOM killer, kill -9, a node reclaiming a job). The page cache survives it; power loss
is covered only by the fsync discipline that the call order below shows (file fsync before rename, directory fsync
after), not by this test.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credstore.errors import CredstoreError
from tests.adversarial_support import make_store, open_store, put, values

REPO = Path(__file__).resolve().parent.parent

DRIVER = r"""
import os, signal, sys, json
target, when = int(sys.argv[1]), sys.argv[2]
calls = []

def wrap(name):
    real = getattr(os, name)
    def hooked(*args, **kwargs):
        if name == "write" and args and args[0] in (0, 1, 2):
            return real(*args, **kwargs)
        calls.append(name)
        if len(calls) == target and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(*args, **kwargs)
        if len(calls) == target and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return hooked

for name in ("write", "fsync", "replace"):
    setattr(os, name, wrap(name))

from credstore.__main__ import main
code = main(sys.argv[3:])
sys.stdout.write("\n" + json.dumps({"code": code, "calls": calls}) + "\n")
"""

OLD = "old-" + "a" * 40
NEW = "new-" + "b" * 40
OTHER = {"WANDB_ENTITY": "team", "HF_TOKEN": "hf_" + "h" * 34}


def run_driver(home: Path, target: int, when: str, args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {
        "HOME": str(home.parent),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "CREDSTORE_HOME": str(home),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(target), when, *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def count_calls(home: Path, args: list[str], stdin: bytes) -> list[str]:
    done = run_driver(home, 0, "never", args, stdin)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr.decode()
    return report["calls"]


def fresh_values(home: Path) -> dict[str, str] | None:
    """The store's contents, or None when no store file exists (an interrupted first write)."""
    store = open_store(home)
    if not store.exists():
        return None
    return values(store)


# Each scenario: how to prepare the store, the command, its stdin, and the contents allowed after a crash.
SCENARIOS = {
    "set-existing": (
        lambda home: make_store(home, "keyfile", {"WANDB_API_KEY": OLD, **OTHER}),
        ["set", "WANDB_API_KEY"],
        NEW.encode(),
        [{"WANDB_API_KEY": OLD, **OTHER}, {"WANDB_API_KEY": NEW, **OTHER}],
    ),
    "set-new-name": (
        lambda home: make_store(home, "keyfile", OTHER),
        ["set", "COMET_API_KEY"],
        NEW.encode(),
        [dict(OTHER), {"COMET_API_KEY": NEW, **OTHER}],
    ),
    "rm": (
        lambda home: make_store(home, "keyfile", {"WANDB_API_KEY": OLD, **OTHER}),
        ["rm", "WANDB_API_KEY"],
        b"",
        [{"WANDB_API_KEY": OLD, **OTHER}, dict(OTHER)],
    ),
    "init": (
        lambda home: None,
        ["init", "--protection", "keyfile"],
        b"",
        [None, {}],
    ),
    "rotate": (
        lambda home: make_store(home, "keyfile", {"WANDB_API_KEY": OLD, **OTHER}),
        ["rotate", "WANDB_API_KEY"],
        NEW.encode(),
        [{"WANDB_API_KEY": OLD, **OTHER}, {"WANDB_API_KEY": NEW, **OTHER}],
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_sigkill_at_every_write_fsync_and_rename(scenario: str, tmp_path: Path) -> None:
    prepare, args, stdin, allowed = SCENARIOS[scenario]
    template = tmp_path / "template" / "store"
    template.parent.mkdir(mode=0o700)
    prepare(template)
    (tmp_path / "probe").mkdir(mode=0o700)
    probe = tmp_path / "probe" / "store"
    if template.exists():
        shutil.copytree(template, probe, symlinks=True)
    calls = count_calls(probe, args, stdin)
    assert {"write", "fsync", "replace"} <= set(calls), calls
    crash_points = 0
    seen_outcomes = set()
    for target in range(1, len(calls) + 1):
        for when in ("before", "after"):
            work = tmp_path / f"crash-{target}-{when}"
            work.mkdir(mode=0o700)
            home = work / "store"
            if template.exists():
                shutil.copytree(template, home, symlinks=True)
            done = run_driver(home, target, when, args, stdin)
            assert done.returncode == -signal.SIGKILL, (target, when, done.returncode, done.stderr.decode()[-2000:])
            crash_points += 1
            try:
                got = fresh_values(home)
            except CredstoreError as exc:
                pytest.fail(f"after a crash {when} call {target} ({calls[target - 1]}) the store fails: {exc}")
            assert got in allowed, (target, when, calls[target - 1], got)
            seen_outcomes.add(json.dumps(got, sort_keys=True))
            # Leftover temporary files hold only ciphertext; the next command works (no stale lock, no false
            # rollback alarm) and keeps what the crash left.
            for leftover in home.rglob("*.tmp"):
                assert NEW.encode() not in leftover.read_bytes() and OLD.encode() not in leftover.read_bytes()
            retry = run_driver(home, 0, "never", args, stdin)
            assert retry.returncode == 0, (target, when, retry.stderr.decode()[-2000:])
            assert fresh_values(home) == allowed[-1]
            # That successful write (under the lock) removed the store's temporary files the crash left behind.
            assert list((home / "profiles").glob(".default.store.*.tmp")) == [], (target, when)
            shutil.rmtree(work)
    # The points cover both outcomes: a crash early keeps the old content, a crash after the rename the new one.
    assert len(seen_outcomes) >= 2, seen_outcomes
    print(f"\n[crash] {scenario}: {len(calls)} calls, {crash_points} crash points, outcomes {len(seen_outcomes)}")


def test_sigkill_at_random_moments_of_the_real_command(tmp_path: Path) -> None:
    """The installed command killed from outside at random times during `set`, alternating values."""
    home = tmp_path / "store"
    make_store(home, "keyfile", {"WANDB_API_KEY": "v0-" + "x" * 40, **OTHER})
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "CREDSTORE_HOME": str(home),
        "PYTHONPATH": str(REPO),
    }
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "credstore", "set", "WANDB_API_KEY"],
        input=b"v1-" + b"x" * 40,
        env=env,
        check=True,
        capture_output=True,
    )
    full = time.monotonic() - started
    rng = random.Random(5)
    current = "v1-" + "x" * 40
    kills = 0
    for i in range(2, 18):
        new = f"v{i}-" + "x" * 40
        proc = subprocess.Popen(
            [sys.executable, "-m", "credstore", "set", "WANDB_API_KEY"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        proc.stdin.write(new.encode())
        proc.stdin.close()
        time.sleep(rng.uniform(0.3, 1.0) * full)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += proc.returncode == -signal.SIGKILL
        got = values(open_store(home))
        assert got["WANDB_API_KEY"] in (current, new), (i, got)
        assert {k: got[k] for k in OTHER} == OTHER
        current = got["WANDB_API_KEY"]
    put(open_store(home), {"AFTER": "ok"})
    assert values(open_store(home))["AFTER"] == "ok"
    print(f"\n[crash] random-time kills: {kills} of 16 landed before the command finished")
