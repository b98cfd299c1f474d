#!/usr/bin/env python3
"""Shell-start benchmark: how much `eval "$(credstore env)"` costs a new shell.

Builds throw-away stores in a temporary directory, then runs every command many times, interleaved round by round
with the baseline `python3 -c pass` so that machine noise hits all of them alike. Prints median / min / max wall
time, the ratio of each median to the baseline median of the same run, and peak RSS (from wait4).

    python3 scripts/bench.py [--runs 40] [--json]

Peers (`pass show` with a warm gpg-agent, `direnv export bash`, `keyring get` with a plaintext file backend) are
run on the same data when installed; missing ones are listed. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEY = "local-" + "b3nch" * 10


def credstore_cmd() -> list[str]:
    script = shutil.which("credstore")
    return [script] if script else [sys.executable, "-m", "credstore"]


def run_once(argv: list[str], env: dict[str, str], cwd: str) -> float:
    """Wall time (s) of one run; output discarded; a failure aborts the benchmark."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return elapsed


def peak_rss_kib(argv: list[str], env: dict[str, str], cwd: str) -> int | None:
    """Peak RSS through GNU time: ru_maxrss of a child forked from this Python would include this Python's own
    pages (Linux carries the high-water mark across exec), so a small forking parent must do the measuring."""
    gnu_time = "/usr/bin/time"
    if not os.access(gnu_time, os.X_OK):
        return None
    proc = subprocess.run(
        [gnu_time, "-f", "%M", *argv],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    try:
        return int(proc.stderr.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


class Case:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.times: list[float] = []
        self.rss: list[int] = []

    def run(self) -> None:
        self.times.append(run_once(self.argv, self.env, self.cwd))

    def measure_rss(self, runs: int = 5) -> None:
        for _ in range(runs):
            rss = peak_rss_kib(self.argv, self.env, self.cwd)
            if rss is not None:
                self.rss.append(rss)


PASSPHRASE = "correct horse battery staple"


def in_own_session_keyring() -> None:
    """Run the benchmark in a fresh kernel session keyring (as a login has), so `credstore unlock` can cache the
    data key for the passphrase case; re-executes this script under `keyctl session -` where needed."""
    if os.environ.get("CREDSTORE_BENCH_SESSION") == "1" or not shutil.which("keyctl"):
        return
    sys.path.insert(0, str(REPO))
    from credstore.crypto import kernel_keyring

    if kernel_keyring.available()[0] and kernel_keyring.session_keyring_state() == "user-session":
        os.environ["CREDSTORE_BENCH_SESSION"] = "1"
        os.execvp("keyctl", ["keyctl", "session", "-", sys.executable, *sys.argv])


def make_store(base: Path, name: str, count: int, protection: str, env: dict[str, str]) -> dict[str, str]:
    home = base / name
    home.mkdir()
    store_env = {**env, "HOME": str(home), "CREDSTORE_HOME": str(home / "store")}
    cmd = credstore_cmd()

    def cs(*args: str, data: str | None = None) -> None:
        subprocess.run([*cmd, *args], input=(data or "").encode(), env=store_env, check=True, capture_output=True)

    cs("init", "--protection", protection, data=PASSPHRASE + "\n" if protection == "passphrase" else None)
    cs("set", "WANDB_API_KEY", data=KEY)
    for name_, value in (
        ("WANDB_USERNAME", "alice"),
        ("WANDB_USER_EMAIL", "alice@example.org"),
        ("WANDB_ENTITY", "ml-team"),
        ("WANDB_PROJECT", "bench"),
    ):
        cs("set", name_, value)
    # The rest as one import so that 1,000 variables do not take 1,000 processes.
    extra = [f"BENCH_VAR_{i:04d}=value-{i}" for i in range(count - 5)]
    if extra:
        dotenv = home / "extra.env"
        dotenv.write_text("\n".join(extra) + "\n")
        bulk = (
            "import sys, time\n"
            "from credstore import config\n"
            "from credstore.store.base import Entry\n"
            "store = config.open_profile()\n"
            "now = time.time()\n"
            "def change(s):\n"
            "    for line in open(sys.argv[1]).read().split():\n"
            "        n, _, v = line.partition('=')\n"
            "        s.entries[n] = Entry(n, v, True, now, now)\n"
            "store.modify(change)\n"
        )
        subprocess.run(
            [sys.executable, "-c", bulk, str(dotenv)], env={**store_env, "PYTHONPATH": str(REPO)}, check=True
        )
    if protection == "passphrase":
        cs("unlock", data=PASSPHRASE + "\n")
    return store_env


def peers(base: Path, env: dict[str, str]) -> tuple[list[Case], list[str]]:
    cases: list[Case] = []
    missing: list[str] = []
    # pass, with a throw-away GnuPG home and a warm agent
    if shutil.which("pass") and shutil.which("gpg"):
        gnupg = base / "gnupg"
        gnupg.mkdir(mode=0o700)
        penv = {**env, "GNUPGHOME": str(gnupg), "PASSWORD_STORE_DIR": str(base / "pass")}
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-gen-key",
                "bench@credstore.invalid",
                "default",
                "default",
                "never",
            ],
            env=penv,
            check=True,
            capture_output=True,
        )
        subprocess.run(["pass", "init", "bench@credstore.invalid"], env=penv, check=True, capture_output=True)
        subprocess.run(["pass", "insert", "-m", "wandb"], input=KEY.encode(), env=penv, check=True, capture_output=True)
        subprocess.run(["pass", "show", "wandb"], env=penv, check=True, capture_output=True)  # warm the agent
        cases.append(Case("pass show (warm gpg-agent)", ["pass", "show", "wandb"], penv, str(base)))
    else:
        missing.append("pass")
    if shutil.which("direnv"):
        project = base / "direnv-project"
        project.mkdir()
        (project / ".envrc").write_text(f"export WANDB_API_KEY={KEY}\nexport WANDB_USERNAME=alice\n")
        denv = {**env, "XDG_DATA_HOME": str(base / "direnv-data"), "XDG_CONFIG_HOME": str(base / "direnv-cfg")}
        subprocess.run(["direnv", "allow", str(project)], env=denv, check=True, capture_output=True)
        cases.append(Case("direnv export bash", ["direnv", "export", "bash"], denv, str(project)))
    else:
        missing.append("direnv")
    keyring_cli = shutil.which("keyring")
    try:
        import keyrings.alt  # noqa: F401
    except ImportError:
        keyring_cli = None
    if keyring_cli:
        kenv = {
            **env,
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(base / "keyring-data"),
        }
        subprocess.run(
            [keyring_cli, "set", "wandb", "alice"], input=KEY.encode(), env=kenv, check=True, capture_output=True
        )
        cases.append(Case("keyring get (plaintext file)", [keyring_cli, "get", "wandb", "alice"], kenv, str(base)))
    else:
        missing.append("keyring (with keyrings.alt)")
    return cases, missing


def summarize(case: Case, baseline: float) -> dict[str, object]:
    median = statistics.median(case.times)
    return {
        "command": case.name,
        "median_ms": round(median * 1000, 1),
        "min_ms": round(min(case.times) * 1000, 1),
        "max_ms": round(max(case.times) * 1000, 1),
        "ratio": round(median / baseline, 2),
        "peak_rss_mib": round(max(case.rss) / 1024, 1) if case.rss else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="rounds (each runs every command once)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-peers", action="store_true", help="skip pass / direnv / keyring")
    parser.add_argument("--vault", action="store_true", help="also time env against OpenBao on loopback")
    args = parser.parse_args()
    in_own_session_keyring()

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDSTORE_", "WANDB_"))}
    base_env["PYTHONPATH"] = str(REPO) if not shutil.which("credstore") else base_env.get("PYTHONPATH", "")
    # Byte-compile as `pip install` does, so that a checkout run with PYTHONDONTWRITEBYTECODE is not measured
    # recompiling its sources on every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "credstore")], check=True)
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="credstore-bench-") as tmp:
        base = Path(tmp)
        cmd = credstore_cmd()
        small = make_store(base, "keyfile-10", 10, "keyfile", base_env)
        large = make_store(base, "keyfile-1000", 1000, "keyfile", base_env)
        cases = [
            Case("python3 -c pass (baseline)", [sys.executable, "-c", "pass"], base_env, tmp),
            Case("credstore env (keyfile, 10 vars)", [*cmd, "env", "--shell", "bash"], small, tmp),
            Case("credstore exec -- true (keyfile, 10 vars)", [*cmd, "exec", "--", "true"], small, tmp),
            Case("credstore env (keyfile, 1000 vars)", [*cmd, "env", "--shell", "bash"], large, tmp),
        ]
        try:
            unlocked = make_store(base, "passphrase-10", 10, "passphrase", base_env)
            cases.append(Case("credstore env (passphrase, unlocked)", [*cmd, "env", "--shell", "bash"], unlocked, tmp))
        except subprocess.CalledProcessError:
            print("bench: passphrase case skipped (no kernel session keyring to unlock into)", file=sys.stderr)
        missing: list[str] = []
        if not args.no_peers:
            peer_cases, missing = peers(base, base_env)
            cases += peer_cases
        for case in cases:  # warm-up round, not counted
            run_once(case.argv, case.env, case.cwd)
        for _ in range(args.runs):
            for case in cases:
                case.run()
        for case in cases:
            case.measure_rss()
        baseline = statistics.median(cases[0].times)
        rows = [summarize(case, baseline) for case in cases]
        by_name = {row["command"]: row for row in rows}
        scale = (
            by_name["credstore env (keyfile, 1000 vars)"]["median_ms"]
            / by_name["credstore env (keyfile, 10 vars)"]["median_ms"]
        )
    report = {
        "runs": args.runs,
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "results": rows,
        "env_1000_vs_10": round(scale, 2),
        "peers_missing": missing,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.runs} interleaved runs each, Python {report['python']}, {report['cores']} cores\n")
    print(f"| {'command':<46} | median ms | min ms | max ms | x baseline | peak RSS MiB |")
    print(f"|{'-' * 48}|-----------|--------|--------|------------|--------------|")
    for row in rows:
        print(
            f"| {row['command']:<46} | {row['median_ms']:>9} | {row['min_ms']:>6} | {row['max_ms']:>6} "
            f"| {row['ratio']:>10} | {row['peak_rss_mib']:>12} |"
        )
    print(f"\nenv with 1000 variables / env with 10: {report['env_1000_vs_10']}x")
    if missing:
        print(f"peers not installed (skipped): {', '.join(missing)}")
    if args.vault:
        vault_table(args.runs)
    return 0


def vault_table(runs: int) -> None:
    """`credstore env` on an OpenBao profile over loopback, with and without the cache (scripts/bench_vault.py)."""
    sys.path.insert(0, str(REPO))
    from scripts.bench_vault import bench_vault, format_table

    print("\nOpenBao on loopback (baseline measured in the same run):\n")
    print(format_table(bench_vault(runs=runs)))


if __name__ == "__main__":
    sys.exit(main())
