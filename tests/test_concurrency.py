"""Concurrency: 16 processes x 25 read-modify-write updates on one store, through the Python API and through the CLI.

Every update must be there at the end (the API workers also increment one shared counter, which loses increments
unless each update sees the previous one). Readers running at the same time (API and CLI) must never see an error or
a counter that goes backwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.adversarial_support import (
    CLI_LEVELS,
    CLI_PASSPHRASE,
    LEVELS,
    WEAK_KDF,
    make_store,
    open_store,
    unlock_in_this_thread,
    values,
)

REPO = Path(__file__).resolve().parent.parent
WORKERS = 16
UPDATES = 25

API_WORKER = r"""
import sys
from pathlib import Path
from credstore.store.base import Entry
from tests.adversarial_support import open_store

home, worker, updates = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
store = open_store(home)
for j in range(updates):
    def change(snapshot, j=j):
        count = int(snapshot.entries["COUNTER"].value) + 1
        snapshot.entries["COUNTER"] = Entry("COUNTER", str(count))
        name = f"W{worker}_{j}"
        snapshot.entries[name] = Entry(name, f"value-{worker}-{j}-" + "x" * 64)
    store.modify(change)
"""

API_READER = r"""
import json, sys, time
from pathlib import Path
from tests.adversarial_support import open_store

home, stop = Path(sys.argv[1]), Path(sys.argv[2])
reads, errors, last, backwards = 0, [], -1, 0
while not stop.exists():
    try:
        snapshot = open_store(home).read()
        count = int(snapshot.entries["COUNTER"].value)
        if count < last:
            backwards += 1
        last = count
        reads += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"reads": reads, "errors": errors[:5], "n_errors": len(errors), "backwards": backwards}))
"""


def env_for(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home.parent),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "CREDSTORE_HOME": str(home),
        "CREDSTORE_LOCK_TIMEOUT": "300",
        "PYTHONPATH": str(REPO),
    }


@pytest.mark.parametrize("level", LEVELS)
def test_api_read_modify_write_from_many_processes(level: str, tmp_path: Path) -> None:
    home = tmp_path / "store"
    make_store(home, level, {"COUNTER": "0"})
    stop = tmp_path / "stop"
    env = env_for(home)
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", API_READER, str(home), str(stop)], stdout=subprocess.PIPE, env=env, cwd=REPO
        )
        for _ in range(2)
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", API_WORKER, str(home), str(i), str(UPDATES)],
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        for i in range(WORKERS)
    ]
    failures = []
    for proc in workers:
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failures.append(err.decode()[-1000:])
    stop.touch()
    reports = [json.loads(proc.communicate(timeout=60)[0]) for proc in readers]
    assert not failures, failures[:3]
    got = values(open_store(home))
    assert got["COUNTER"] == str(WORKERS * UPDATES)
    missing = [f"W{i}_{j}" for i in range(WORKERS) for j in range(UPDATES) if f"W{i}_{j}" not in got]
    assert not missing, missing[:10]
    assert open_store(home).read().generation == WORKERS * UPDATES + 1
    for report in reports:
        assert report["n_errors"] == 0, report["errors"]
        assert report["backwards"] == 0
    assert sum(r["reads"] for r in reports) > 0
    print(f"\n[concurrency] API: {WORKERS * UPDATES} updates, {sum(r['reads'] for r in reports)} concurrent reads")


@pytest.mark.parametrize("level", CLI_LEVELS)
def test_cli_updates_from_many_processes(level: str, tmp_path: Path) -> None:
    home = tmp_path / "store"
    env = env_for(home)
    cmd = [sys.executable, "-m", "credstore"]
    # A passphrase store: the passphrase on stdin at init; every thread below unlocks it in a session keyring of its
    # own (as separate logins would) before its commands run.
    subprocess.run(
        [*cmd, "init", "--protection", level],
        input=(CLI_PASSPHRASE + "\n").encode(),
        env={**env, **WEAK_KDF},
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    failures: list[str] = []
    reader_errors: list[str] = []
    reads = [0]
    done = threading.Event()

    def login() -> bool:
        if level == "passphrase":
            try:
                unlock_in_this_thread(env, tmp_path)
            except AssertionError as exc:
                failures.append(f"unlock: {exc}")
                return False
        return True

    def seed() -> None:
        if login():
            subprocess.run(
                [*cmd, "set", "--plain", "SEED", "seed"], env=env, check=True, capture_output=True, cwd=tmp_path
            )

    seeding = threading.Thread(target=seed)
    seeding.start()
    seeding.join()

    def writer(i: int) -> None:
        if not login():
            return
        for j in range(UPDATES):
            result = subprocess.run(
                [*cmd, "set", f"C{i}_{j}"], input=f"cli-{i}-{j}".encode(), env=env, capture_output=True, cwd=tmp_path
            )
            if result.returncode != 0:
                failures.append(result.stderr.decode())

    def reader(args: list[str]) -> None:
        if not login():
            return
        while not done.is_set():
            result = subprocess.run([*cmd, *args], env=env, capture_output=True, cwd=tmp_path)
            if result.returncode != 0 or result.stderr:
                reader_errors.append(f"{args}: {result.returncode} {result.stderr.decode()}")
            elif args[0] == "list":
                json.loads(result.stdout)
            reads[0] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WORKERS)]
    readers = [threading.Thread(target=reader, args=(a,)) for a in (["list", "--json"], ["env", "--shell", "bash"])]
    for t in threads + readers:
        t.start()
    for t in threads:
        t.join(timeout=900)
    done.set()
    for t in readers:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not failures, failures[:3]
    assert not reader_errors, reader_errors[:3]
    got = values(open_store(home))
    missing = [f"C{i}_{j}" for i in range(WORKERS) for j in range(UPDATES) if got.get(f"C{i}_{j}") != f"cli-{i}-{j}"]
    assert not missing, missing[:10]
    assert got["SEED"] == "seed"
    print(
        f"\n[concurrency] CLI: {WORKERS * UPDATES} updates by {WORKERS} processes, {reads[0]} concurrent CLI reads,"
        f" {elapsed:.0f} s"
    )
