"""Leak canaries: a unique secret set through the CLI must never show up where others (or logs) can see it.

Checked: every process's /proc/PID/cmdline while `set`, `get`, `env`, `exec`, `list`, `explain` run (a thread scans
/proc the whole time), the environment of the credstore processes themselves, stderr of every command including
failures and a forced internal error with its traceback, the masked output of list/explain, the repr of the Python
objects that carry values, and every byte under the home and store directories (raw, hex, base64, UTF-16).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.adversarial_support import write_over
from tests.conftest import REPO

CANARY = "csk-canary-" + uuid.uuid4().hex + "-" + uuid.uuid4().hex[:8]


class ProcScanner(threading.Thread):
    """Scans every /proc/PID/cmdline (and the environ of credstore's own processes) for the canary until stopped."""

    def __init__(self, needle: bytes) -> None:
        super().__init__(daemon=True)
        self.needle = needle
        self.stop = threading.Event()
        self.hits: list[str] = []
        self.credstore_pids: set[int] = set()
        self.probe_pids: set[int] = set()
        self.scans = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) == me:
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        cmdline = f.read()
                except OSError:
                    continue
                if self.needle in cmdline:
                    self.hits.append(f"cmdline of {entry}: {cmdline[:200]!r}")
                if b"leakprobe" in cmdline:
                    self.probe_pids.add(int(entry))
                if b"credstore" in cmdline and b"pytest" not in cmdline:
                    self.credstore_pids.add(int(entry))
                    try:
                        with open(f"/proc/{entry}/environ", "rb") as f:
                            environ = f.read()
                        with open(f"/proc/{entry}/cmdline", "rb") as f:
                            still = f.read() == cmdline  # not yet replaced by `exec`'s command
                    except OSError:
                        continue
                    if still and self.needle in environ:
                        self.hits.append(f"environ of credstore process {entry}")
            self.scans += 1


@pytest.fixture
def scanner():
    scan = ProcScanner(CANARY.encode())
    scan.start()
    yield scan
    scan.stop.set()
    scan.join(timeout=10)


def encodings(text: str) -> list[bytes]:
    raw = text.encode()
    return [
        raw,
        raw.hex().encode(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        text.encode("utf-16-le"),
        raw[4:28],  # a fragment: no prefix or suffix of the secret either
    ]


def assert_no_plaintext_under(*roots: Path) -> int:
    checked = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                checked += 1
                for form in encodings(CANARY):
                    assert form not in data, f"the secret is readable in {path}"
    return checked


def test_canary_never_leaks_through_normal_use(cli, scanner) -> None:
    outputs: list[tuple[str, str]] = []

    def run(*args: str, input: str | bytes = b"", expect_stdout: bool = False, code: int | None = 0):
        result = cli(*args, input=input)
        if code is not None:
            assert result.returncode == code, (args, result.returncode, result.stderr)
        assert CANARY not in result.stderr, f"secret in stderr of {args}"
        if expect_stdout:
            assert CANARY in result.stdout, args
        else:
            assert CANARY not in result.stdout, f"secret in stdout of {args}"
        outputs.append((" ".join(args), result.stderr))
        return result

    run("init", "--protection", "keyfile")
    run("set", "WANDB_API_KEY", input=CANARY)
    run("set", "MY_SERVICE_TOKEN", input=CANARY + "-2")
    run("set", "HF_TOKEN", input=CANARY)  # does not start with hf_: a warning, which must not quote it
    assert "warning" in outputs[-1][1]
    run("get", "WANDB_API_KEY", expect_stdout=True)
    run("env", expect_stdout=True)
    run("env", "wandb", "--shell", "fish", expect_stdout=True)
    run("env", "--format", "json", expect_stdout=True)
    run("env", "--for", "apptainer", expect_stdout=True)
    run("list")
    run("list", "--json")
    run("explain")
    run("explain", "--json", "wandb", "hf")
    # exec: the child has the secret in its environment (that is the point) but not on any command line.
    probe = 'sleep 0.4; printf %s "$WANDB_API_KEY" | sha256sum'
    result = cli("exec", "--", "sh", "-c", probe, "leakprobe")
    assert result.stdout.split()[0] == hashlib.sha256(CANARY.encode()).hexdigest(), result.stderr
    assert CANARY not in result.stderr
    run("exec", "wandb", "--", "sh", "-c", "sleep 0.2; echo done leakprobe")
    run("rm", "MY_SERVICE_TOKEN")
    assert scanner.probe_pids, "the /proc scanner never saw the exec'd command"
    assert len(scanner.credstore_pids) >= 5, "the /proc scanner saw too few credstore processes to mean anything"
    scanner.stop.set()
    scanner.join(timeout=10)
    assert not scanner.hits, scanner.hits[:5]
    files = assert_no_plaintext_under(cli.home)
    assert files >= 3
    print(f"\n[leaks] {scanner.scans} /proc scans, {len(scanner.credstore_pids)} credstore processes, {files} files")


def test_canary_never_in_error_messages(cli) -> None:
    """Some of these put the secret on argv on purpose (a user's mistake), so /proc is not scanned here."""
    assert cli("init", "--protection", "keyfile").returncode == 0
    cli("set", "WANDB_API_KEY", input=CANARY, check=True)
    cli("set", "MULTI", input=CANARY + "\nsecond line", check=True)
    failures = [
        (("set", "WANDB_API_KEY"), CANARY + "\0"),
        (("set", "WANDB_API_KEY"), CANARY.encode() + b"\xff"),
        (("set", "WANDB_API_KEY"), CANARY * 5000),
        (("set", "1BAD"), CANARY),
        (("env", "--set", f"WANDB_API_KEY:{CANARY}"), ""),
        (("env", "--set", f"1BAD={CANARY}"), ""),
        (("env", "--set", f"{CANARY}"), ""),
        (("env", "--format", "docker", "MULTI"), ""),
        (("exec", "--", f"/nonexistent/{CANARY[:5]}"), ""),
        (("get", "NOPE"), ""),
    ]
    for args, data in failures:
        result = cli(*args, input=data)
        assert result.returncode != 0, args
        assert CANARY not in result.stderr and CANARY not in result.stdout, args
        assert "Traceback" not in result.stderr
    # A damaged store: corrupt, then rolled back; neither error nor anything else may carry the value.
    store = cli.store_dir / "profiles" / "default.store"
    good = store.read_bytes()
    write_over(store, good[:-1] + bytes([good[-1] ^ 1]))
    for args in (("get", "WANDB_API_KEY"), ("env",), ("exec", "--", "true")):
        result = cli(*args)
        assert result.returncode == 6 and CANARY not in result.stderr + result.stdout
    write_over(store, good)
    assert_no_plaintext_under(cli.home)


FORCED_ERROR = r"""
import sys
import credstore.fsutil as fsutil
import credstore.shells as shells

def broken(*args, **kwargs):
    raise RuntimeError("simulated failure")

fsutil.atomic_replace = broken
shells.render = broken
from credstore.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("debug", ["", "1"])
def test_canary_never_in_tracebacks(cli, debug: str) -> None:
    """Internal errors (a bug simulated in the child) while the secret is in memory: the message and, with
    CREDSTORE_DEBUG=1, the full traceback must not contain it."""
    assert cli("init", "--protection", "keyfile").returncode == 0
    cli("set", "WANDB_API_KEY", input=CANARY, check=True)
    env = {**cli.env, "CREDSTORE_DEBUG": debug}
    for args, data in ((["set", "WANDB_API_KEY"], CANARY + "x"), (["env"], ""), (["env", "--format", "json"], "")):
        proc = subprocess.run(
            [sys.executable, "-c", FORCED_ERROR, *args], input=data.encode(), capture_output=True, env=env, cwd=REPO
        )
        assert proc.returncode != 0
        err = proc.stderr.decode()
        if debug:
            # Where it happened and the exception's type; never its message (it may quote data).
            assert "Traceback" in err and "RuntimeError" in err and "simulated failure" not in err
        else:
            assert err.startswith("credstore: internal error (RuntimeError)") and len(err.splitlines()) == 1
        assert CANARY not in err and CANARY not in proc.stdout.decode(), args


def test_repr_of_value_carrying_objects(tmp_path: Path) -> None:
    """Everything a log line or a debugger's repr could show: LocalStore, Snapshot, Entry, layers, the env plan."""
    from credstore.resolver.gather import gather
    from tests.adversarial_support import make_store, open_store

    home = tmp_path / "s"
    make_store(home, "keyfile", {"WANDB_API_KEY": CANARY})
    store = open_store(home)
    snapshot = store.read()
    gathered = gather(store.source, snapshot, (), {"HF_TOKEN": CANARY}, {"OPENAI_API_KEY": CANARY})
    plan = gathered.plan({})
    from credstore.resolver.layers import resolve

    objects = [store, snapshot, snapshot.entries, gathered, plan, resolve(gathered.layers), gathered.layers]
    for obj in objects:
        assert CANARY not in repr(obj), type(obj).__name__
        assert CANARY not in str(obj), type(obj).__name__


# -- rotate, the audit log, the OpenBao token ---------------------------------------------------------------------


def test_canary_never_on_a_command_line_during_rotate(cli, scanner, tmp_path: Path) -> None:
    """`rotate` (with --verify, whose command gets the new value in its environment), a failed verify, rollback."""
    new = CANARY + "-rotated"
    assert cli("init", "--protection", "keyfile").returncode == 0
    cli("set", "WANDB_API_KEY", input=CANARY, check=True)
    verify = 'sleep 0.3; test -n "$WANDB_API_KEY" && echo leakprobe >/dev/null'
    steps = [
        (("rotate", "WANDB_API_KEY", "--verify", verify), new, 0),
        (("rotate", "WANDB_API_KEY", "--verify", "sleep 0.3; false"), CANARY + "-refused", 1),
        (("rotate", "WANDB_API_KEY", "--rollback"), "", 0),
        (("rotate", "WANDB_API_KEY", "--grace", "1h"), new, 0),
        (("get", "WANDB_API_KEY"), "", 0),
    ]
    for args, data, code in steps:
        result = cli(*args, input=data)
        assert result.returncode == code, (args, result.stderr)
        assert CANARY not in result.stderr, f"secret in stderr of {args}"
        if args[0] != "get":
            assert CANARY not in result.stdout, f"secret in stdout of {args}"
    assert result.stdout == new + "\n"
    scanner.stop.set()
    scanner.join(timeout=10)
    assert len(scanner.credstore_pids) >= 4, "the /proc scanner saw too few credstore processes to mean anything"
    assert not scanner.hits, scanner.hits[:5]
    assert_no_plaintext_under(cli.home)


def assert_not_in_log(path: Path, *secrets_: str) -> int:
    data = path.read_bytes()
    for secret in secrets_:
        for form in [*encodings(secret), hashlib.sha256(secret.encode()).hexdigest().encode()]:
            assert form not in data, f"the secret (or a form of it) is in {path}"
    return len(data.splitlines())


def test_canary_never_in_the_audit_logs(cli, tmp_path: Path) -> None:
    """Every event that handles a value (personal and service), then the personal and shared logs byte by byte."""
    import grp

    rotated, service_key = CANARY + "-rotated", CANARY + "-service"
    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    group = grp.getgrgid(os.getegid()).gr_name
    steps = [
        (("init", "--protection", "keyfile"), ""),
        (("set", "WANDB_API_KEY"), CANARY),
        (("set", "MY_SERVICE_TOKEN"), CANARY + "-2"),
        (("get", "WANDB_API_KEY"), ""),
        (("env",), ""),
        (("exec", "--", "true"), ""),
        (("rotate", "WANDB_API_KEY", "--verify", 'test -n "$WANDB_API_KEY"'), rotated),
        (("rotate", "WANDB_API_KEY", "--rollback"), ""),
        (("rotate", "WANDB_API_KEY"), rotated),
        (("rm", "MY_SERVICE_TOKEN"), ""),
        (("service", "add", "team", "--group", group), ""),
        (("service", "set", "team", "WANDB_API_KEY"), service_key),
        (("rotate", "WANDB_API_KEY", "--service", "team"), service_key + "-2"),
        (("env", "--service", "team"), ""),
        (("exec", "--service", "team", "--", "true"), ""),
        (("audit",), ""),
        (("audit", "--json"), ""),
        (("audit", "--shared"), ""),
    ]
    for args, data in steps:
        result = cli(*args, input=data)
        assert result.returncode == 0, (args, result.stderr)
        if args[0] == "audit":
            assert CANARY not in result.stdout + result.stderr, args
    personal = cli.store_dir / "audit.log"
    shared = tmp_path / "shared" / "audit.log"
    everything = (CANARY, CANARY + "-2", rotated, service_key, service_key + "-2")
    lines = assert_not_in_log(personal, *everything) + assert_not_in_log(shared, *everything)
    assert lines >= 15, "the audit logs recorded too few events to mean anything"
    events = {json.loads(line)["event"] for line in personal.read_text().splitlines()}
    assert {"set", "rotate", "rollback", "get", "env", "exec", "rm"} <= events, events


def test_openbao_token_never_on_a_command_line(tmp_path: Path, scanner) -> None:
    """The token goes to `init --backend vault` and `vault login` on stdin; no process's cmdline (or credstore's own
    environment) may show it while those and the commands that use it run. Output and disk: test_vault_cli.py."""
    pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")
    from tests.conftest import CLI
    from tests.fixtures_services import start_openbao

    server = start_openbao(tmp_path / "bao")
    try:
        token = server.request("POST", "auth/token/create", {"policies": ["root"], "ttl": "1h"})["auth"]["client_token"]
        scanner.needle = token.encode()
        home = tmp_path / "home"
        home.mkdir(mode=0o700)
        cli = CLI(home)
        init = ("init", "--backend", "vault", "--url", server.url, "--user", "leaks", "--protection", "keyfile")
        for args, data in (
            (init, token),
            (("vault", "login"), token),
            (("set", "WANDB_API_KEY"), CANARY),
            (("env",), ""),
            (("exec", "--", "sh", "-c", "sleep 0.3; echo leakprobe"), ""),
            (("vault", "status", "--json"), ""),
        ):
            result = cli(*args, input=data)
            assert result.returncode == 0, (args, result.stderr)
            assert token not in result.stdout + result.stderr, args
        scanner.stop.set()
        scanner.join(timeout=10)
        assert len(scanner.credstore_pids) >= 4, "the /proc scanner saw too few credstore processes"
        assert not scanner.hits, scanner.hits[:5]
    finally:
        server.stop()
