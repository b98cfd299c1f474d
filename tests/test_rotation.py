"""Rotation (grace, --verify, --rollback), status, check --max-age, and the shared duration parser."""

from __future__ import annotations

import grp
import json
import os
import secrets
import time
from pathlib import Path

import pytest

from credstore.durations import format_duration, parse_duration
from credstore.errors import UsageError
from credstore.store.local import LocalStore
from credstore.store.shared import ServiceStore, SharedRoot


def key() -> str:
    return "rot" + secrets.token_hex(24)


def profile_store(cli) -> LocalStore:
    return LocalStore(cli.store_dir, "default")


def entry(cli, name: str):
    return profile_store(cli).read().entries[name]


@pytest.fixture
def store(cli):
    cli("init", "--protection", "keyfile", check=True)
    cli.old = key()
    cli("set", "WANDB_API_KEY", input=cli.old, check=True)
    return cli


def get(cli, name: str = "WANDB_API_KEY") -> str:
    r = cli("get", name)
    assert r.returncode == 0, r.stderr
    return r.stdout.rstrip("\n")


# -- durations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("1d12h", 129600), ("0d", 0)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1.5d", "7 d", "1d 2h", "d7"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(93784) == "1d2h"
    assert format_duration(0) == "0s"
    assert format_duration(90 * 86400) == "12w6d"


# -- rotate ------------------------------------------------------------------------------------------------------


def test_rotate_keeps_previous_for_grace_and_rollback(store) -> None:
    new = key()
    before = time.time()
    r = store("rotate", "WANDB_API_KEY", input=new)
    assert r.returncode == 0, r.stderr
    assert "--rollback" in r.stderr and new not in r.stderr + r.stdout and store.old not in r.stderr
    assert get(store) == new
    e = entry(store, "WANDB_API_KEY")
    assert e.previous == store.old and len(e.rotations) == 1 and e.rotations[0] >= before
    assert e.previous_expires is not None and abs(e.previous_expires - (e.rotations[0] + 7 * 86400)) < 1
    r = store("rotate", "WANDB_API_KEY", "--rollback")
    assert r.returncode == 0, r.stderr
    assert get(store) == store.old
    e = entry(store, "WANDB_API_KEY")
    assert e.previous is None and e.rotations == ()
    # Nothing left to roll back to.
    r = store("rotate", "WANDB_API_KEY", "--rollback")
    assert r.returncode == 3 and "no previous value" in r.stderr


def test_rollback_refused_after_grace_and_expired_previous_dropped_on_next_write(store) -> None:
    store("rotate", "WANDB_API_KEY", "--grace", "1h", input=key(), check=True)
    # Move the end of the grace period into the past (as if an hour had gone by).
    profile_store(store).modify(
        lambda s: s.entries.__setitem__(
            "WANDB_API_KEY", s.entries["WANDB_API_KEY"]._replace(previous_expires=time.time() - 1)
        )
    )
    assert entry(store, "WANDB_API_KEY").previous == store.old  # still in the file until the next write
    r = store("rotate", "WANDB_API_KEY", "--rollback")
    assert r.returncode == 3
    store("set", "WANDB_PROJECT", "p", check=True)  # any write
    assert entry(store, "WANDB_API_KEY").previous is None


def test_grace_zero_keeps_no_previous(store) -> None:
    store("rotate", "WANDB_API_KEY", "--grace", "0s", input=key(), check=True)
    assert entry(store, "WANDB_API_KEY").previous is None


def test_failing_verify_keeps_the_old_value(store) -> None:
    r = store("rotate", "WANDB_API_KEY", "--verify", "exit 3", input=key())
    assert r.returncode == 1
    assert "failed (exit status 3)" in r.stderr and "not changed" in r.stderr
    assert get(store) == store.old
    assert entry(store, "WANDB_API_KEY").rotations == ()


def test_verify_sees_the_new_value_in_its_environment_only(store, tmp_path: Path) -> None:
    new = key()
    seen = tmp_path / "seen"
    r = store("rotate", "WANDB_API_KEY", "--verify", f'printf %s "$WANDB_API_KEY" > {seen}', input=new)
    assert r.returncode == 0, r.stderr
    assert seen.read_text() == new
    assert get(store) == new


def test_verify_gets_the_candidate_and_its_services_plain_values_only(store, tmp_path: Path) -> None:
    """--verify's command sees the candidate and the non-secret values of the same service (the W&B server it checks
    against), never the store's other values; the read is audited."""
    store("set", "WANDB_BASE_URL", "https://wandb.example.org", check=True)
    store("set", "OPENAI_API_KEY", input="sk-" + "o" * 40, check=True)
    store("set", "HF_ENDPOINT", "https://hf.example.org", check=True)
    seen = tmp_path / "seen"
    probe = f'printf "%s|%s|%s" "$WANDB_BASE_URL" "${{OPENAI_API_KEY-unset}}" "${{HF_ENDPOINT-unset}}" > {seen}'
    r = store("rotate", "WANDB_API_KEY", "--verify", probe, input=key())
    assert r.returncode == 0, r.stderr
    assert seen.read_text() == "https://wandb.example.org|unset|unset"
    events = json.loads(store("audit", "--json", check=True).stdout)
    assert any(e["event"] == "get" and e.get("via") == "rotate --verify" for e in events)


def test_verify_with_a_missing_command_keeps_old(store) -> None:
    r = store("rotate", "WANDB_API_KEY", "--verify", "no-such-command-xyz", input=key())
    assert r.returncode == 1 and get(store) == store.old


def test_change_during_verify_is_not_overwritten(store) -> None:
    # The verify command itself changes the entry (another admin, in effect): the rotation must not clobber it.
    other = key()
    argv = " ".join(__import__("tests.conftest", fromlist=["credstore_argv"]).credstore_argv())
    r = store("rotate", "WANDB_API_KEY", "--verify", f"printf %s {other} | {argv} set WANDB_API_KEY", input=key())
    assert r.returncode == 1 and "changed by someone else" in r.stderr
    assert get(store) == other


def test_rotate_rules(store) -> None:
    assert store("rotate", "WANDB_API_KEY", input=store.old).returncode == 2  # same value
    assert store("rotate", "NOT_STORED", input=key()).returncode == 3
    assert store("rotate", "WANDB_API_KEY", "--grace", "7", input=key()).returncode == 2
    assert store("rotate", "WANDB_API_KEY", "--rollback", "--grace", "1d").returncode == 2
    assert get(store) == store.old


def test_rotate_service_key(cli, tmp_path: Path) -> None:
    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    cli("service", "add", "team", "--group", grp.getgrgid(os.getegid()).gr_name, check=True)
    old, new = key(), key()
    cli("service", "set", "team", "WANDB_API_KEY", input=old, check=True)
    r = cli("rotate", "WANDB_API_KEY", "--service", "team", "--verify", "false", input=new)
    assert r.returncode == 1
    svc = ServiceStore(SharedRoot(tmp_path / "shared"), "team")
    assert svc.read().entries["WANDB_API_KEY"].value == old
    cli("rotate", "WANDB_API_KEY", "--service", "team", input=new, check=True)
    e = svc.read().entries["WANDB_API_KEY"]
    assert e.value == new and e.previous == old and len(e.rotations) == 1
    cli("rotate", "WANDB_API_KEY", "--service", "team", "--rollback", check=True)
    assert svc.read().entries["WANDB_API_KEY"].value == old
    log = (tmp_path / "shared" / "audit.log").read_text()
    assert '"event":"rotate"' in log and '"event":"rollback"' in log
    assert old not in log and new not in log


# -- status and check --------------------------------------------------------------------------------------------


def age_entry(cli, name: str, days: float) -> None:
    then = time.time() - days * 86400
    profile_store(cli).modify(
        lambda s: s.entries.__setitem__(name, s.entries[name]._replace(created=then, updated=then))
    )


def test_status_lists_personal_and_service_entries(store, tmp_path: Path) -> None:
    store.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    store("service", "add", "team", "--group", grp.getgrgid(os.getegid()).gr_name, check=True)
    store("service", "set", "team", "HF_TOKEN", input="hf_" + secrets.token_hex(16), check=True)
    store("rotate", "WANDB_API_KEY", input=key(), check=True)
    r = store("status", "--json")
    assert r.returncode == 0, r.stderr
    rows = {(row["scope"], row["name"]): row for row in json.loads(r.stdout)}
    assert set(rows) == {("profile:default", "WANDB_API_KEY"), ("service:team", "HF_TOKEN")}
    mine = rows[("profile:default", "WANDB_API_KEY")]
    assert mine["rotations"] == 1 and mine["last_rotation"] and mine["previous_until"]
    assert mine["value"] == "********"
    assert rows[("service:team", "HF_TOKEN")]["last_rotation"] is None
    r = store("status")
    assert "profile:default" in r.stdout and "service:team" in r.stdout and "never" in r.stdout


def test_check_max_age_exit_codes(store) -> None:
    store("set", "WANDB_ENTITY", "team", check=True)  # not secret: never a finding
    age_entry(store, "WANDB_API_KEY", 100)
    age_entry(store, "WANDB_ENTITY", 100)
    r = store("check", "--max-age", "90d")
    assert r.returncode == 1
    assert "profile:default WANDB_API_KEY" in r.stdout and "WANDB_ENTITY" not in r.stdout
    assert "14w2d old" in r.stdout
    assert store("check", "--max-age", "200d").returncode == 0
    assert store("check", "--max-age", "ninety").returncode == 2
    # A rotation makes it young again.
    store("rotate", "WANDB_API_KEY", input=key(), check=True)
    assert store("check", "--max-age", "90d").returncode == 0


def test_check_without_anything_is_clean(cli, tmp_path: Path) -> None:
    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "nothing-here")
    r = cli("check", "--max-age", "1d")
    assert r.returncode == 0 and "all 0 secrets" in r.stderr
