"""The audit log: a line per action, names only (never a value or fingerprint), never failing the command."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

from credstore import audit
from tests.conftest import credstore_argv


def events(cli) -> list[dict]:
    path = cli.store_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_action_is_logged_and_no_secret_leaks(cli, tmp_path: Path) -> None:
    secret = "leak" + secrets.token_hex(24)
    rotated = "leak" + secrets.token_hex(24)
    argv_secret = "argv" + secrets.token_hex(16)
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=secret, check=True)
    cli("set", "WANDB_USERNAME", "me", check=True)
    cli("get", "WANDB_API_KEY", check=True)
    env_out = cli("env", check=True).stdout
    cli("exec", "--", "sh", "-c", "true", argv_secret, check=True)
    cli("rotate", "WANDB_API_KEY", input=rotated, check=True)
    cli("rotate", "WANDB_API_KEY", "--rollback", check=True)
    cli("rm", "WANDB_USERNAME", check=True)
    dotenv = tmp_path / "x.env"
    dotenv.write_text(f"OPENAI_API_KEY={secret}x\n")
    cli("import", "dotenv", str(dotenv), check=True)

    got = events(cli)
    kinds = [e["event"] for e in got]
    assert kinds == ["init", "set", "set", "get", "env", "exec", "rotate", "rollback", "rm", "import"]
    by_kind = {e["event"]: e for e in got}
    assert audit.names_of(by_kind["get"]) == ["WANDB_API_KEY"]
    assert audit.names_of(by_kind["env"]) == ["WANDB_API_KEY", "WANDB_USERNAME"]
    # a read lists each name once, under its source
    assert by_kind["env"]["sources"] == {"profile:default": ["WANDB_API_KEY", "WANDB_USERNAME"]}
    assert by_kind["exec"]["command"] == "sh"
    for e in got:
        assert e["uid"] == os.geteuid() and e["user"] and e["pid"] > 0 and e["time"].endswith("Z")

    raw = (cli.store_dir / "audit.log").read_bytes()
    marker = next(line for line in env_out.splitlines() if "CREDSTORE_EXPORTED" in line)
    fingerprints = [part.split(":", 1)[1].rstrip("'") for part in marker.split("'")[1].split()[1:]]
    assert fingerprints
    for needle in (secret, rotated, argv_secret, *fingerprints):
        assert needle.encode() not in raw
    assert ((cli.store_dir / "audit.log").stat().st_mode & 0o777) == 0o600


def test_audit_command(cli) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_PROJECT", "p", check=True)
    old = {"time": "2020-01-01T00:00:00Z", "ts": 1577836800.0, "event": "set", "user": "old", "names": ["OLD"]}
    with open(cli.store_dir / "audit.log", "a") as handle:
        handle.write(json.dumps(old) + "\n" + "not json\n")
    r = cli("audit", "--json")
    assert r.returncode == 0
    items = json.loads(r.stdout)
    assert [i["event"] for i in items] == ["init", "set", "set"]
    r = cli("audit", "--since", "1d", "--json")
    assert [i.get("names") for i in json.loads(r.stdout)] == [None, ["WANDB_PROJECT"]]
    r = cli("audit")
    assert "set" in r.stdout and "WANDB_PROJECT" in r.stdout
    assert cli("audit", "--since", "yesterday").returncode == 2


def test_failed_unlock_is_logged(cli) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_PROJECT", "p", check=True)
    keyfile = cli.store_dir / "profiles" / "default.key"
    keyfile.write_bytes(os.urandom(32))  # the wrong key
    r = cli("env")
    assert r.returncode == 5
    r = cli("get", "WANDB_PROJECT")
    assert r.returncode == 5
    assert [e["event"] for e in events(cli)][-2:] == ["failed-unlock", "failed-unlock"]


def test_unwritable_log_never_fails_the_command(cli) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_PROJECT", "p", check=True)
    log = cli.store_dir / "audit.log"
    log.unlink()
    log.mkdir()  # open(O_WRONLY) fails with EISDIR
    r = cli("env")
    assert r.returncode == 0 and "export WANDB_PROJECT='p'" in r.stdout
    assert r.stderr.count("cannot write the audit log") == 1


def test_symlinked_log_is_not_followed(cli, tmp_path: Path) -> None:
    cli("init", "--protection", "keyfile", check=True)
    target = tmp_path / "elsewhere.log"
    target.write_text("")
    log = cli.store_dir / "audit.log"
    log.unlink()
    log.symlink_to(target)
    r = cli("set", "WANDB_PROJECT", "p")
    assert r.returncode == 0 and "symlink" in r.stderr
    assert target.read_text() == ""


def test_concurrent_writers_never_interleave(cli) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_PROJECT", "p", check=True)
    env = {**cli.env}
    procs = [
        subprocess.Popen([*credstore_argv(), "env"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(16)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    got = events(cli)  # json.loads of every line: a torn line would fail here
    assert sum(1 for e in got if e["event"] == "env") == 16
    assert len({e["pid"] for e in got if e["event"] == "env"}) == 16


def test_record_takes_no_value() -> None:
    from credstore import audit

    line = audit.make_line("set", names=["A"], now=time.time())
    assert json.loads(line)["names"] == ["A"]
    try:
        audit.make_line("set", value="x")  # type: ignore[call-arg]
    except TypeError:
        pass
    else:
        raise AssertionError("make_line accepted a value")


def test_a_read_line_is_never_larger_than_its_names_and_the_log_rotates_by_size(tmp_path) -> None:
    names = [f"VARIABLE_NUMBER_{i:05d}" for i in range(1000)]
    sources = {n: "profile:default" for n in names}
    line = audit.make_line("env", names=names, sources=sources, profile="default")
    fixed = audit.make_line("env", names=[], sources={}, profile="default")
    assert len(line) - len(fixed) <= sum(len(n) + 3 for n in names) + len('"sources":{"profile:default":[]},')
    log = tmp_path / "audit.log"
    for _ in range(40):  # about 30 KB per line
        assert audit.append(log, line, limit=100_000)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"]  # a few old files, no more
    assert all(p.stat().st_size <= 100_000 for p in tmp_path.iterdir())
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in tmp_path.iterdir())
    events = list(audit.read_lines(log))  # the old files are read too, oldest first
    assert 4 * 3 <= len(events) <= 40 and all(audit.names_of(e) == sorted(names) for e in events)
