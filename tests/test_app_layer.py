"""One road per operation: the Python API, the hot path and the click commands share the application layer.

Each test here failed before the application layer existed (issue 10's four bugs):

- ``credstore.resolve`` on an OpenBao profile returned ``{}`` (the API went around the backend choice);
- reads through the API left no audit line;
- ``rotate --service`` asked for the admin's *personal* passphrase, accepted a wrong one, and logged an OpenBao
  service account's rotation under its engine path;
- ``unlock`` in an unlocked session accepted a wrong passphrase.
"""

from __future__ import annotations

import grp
import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect

from credstore import audit
from tests.conftest import CLI, credstore_argv
from tests.test_protection import PW, WEAK, in_session, need_keyctl, shell_env
from tests.test_vault_cli import WANDB, connect, host, make_token, new_user

KEY = "k" * 40
NEW_KEY = "n" * 40


def api(cli: CLI, code: str) -> subprocess.CompletedProcess[str]:
    """Run Python API code as a notebook would: a fresh interpreter with the person's environment."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli.env, cwd=cli.home, timeout=60
    )


RESOLVE = (
    "import credstore, json; r = credstore.resolve('WANDB_API_KEY'); "
    "print(json.dumps({n: [x.source, x.value] for n, x in r.items()}))"
)


def audit_events(cli: CLI, event: str) -> list[dict]:
    result = cli("audit", "--json", check=True)
    return [e for e in json.loads(result.stdout) if e["event"] == event]


def test_api_read_of_a_local_profile_is_audited_as_a_get(cli: CLI) -> None:
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    result = api(cli, RESOLVE)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"WANDB_API_KEY": ["profile:default", KEY]}
    [line] = audit_events(cli, "get")
    assert audit.names_of(line) == ["WANDB_API_KEY"] and line["via"] == "api" and line["profile"] == "default"
    assert KEY not in json.dumps(line)


def test_api_reads_an_openbao_profile_like_env_does(openbao, tmp_path: Path) -> None:
    cli = host(tmp_path, "a")
    connect(cli, openbao, new_user(), make_token(openbao))
    cli("set", "WANDB_API_KEY", input=WANDB, check=True)
    result = api(cli, RESOLVE)
    assert result.returncode == 0, result.stderr
    [(source, value)] = json.loads(result.stdout).values()
    assert source.startswith("vault:secret/credstore/users/") and value == WANDB
    [line] = audit_events(cli, "get")
    assert line["via"] == "api" and line["sources"] == {source: ["WANDB_API_KEY"]}


def test_unlock_checks_the_passphrase_even_when_already_unlocked(cli: CLI) -> None:
    need_keyctl()
    cli("init", "--protection", "passphrase", input=PW + "\n", env=WEAK, check=True)
    script = f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 10
printf '%s\\n' 'not the passphrase' | credstore unlock
echo "wrong: $?"
credstore env --shell sh >/dev/null; echo "env: $?"
"""
    result = in_session(cli, script, env=WEAK)
    assert "wrong: 5" in result.stdout, result.stdout + result.stderr
    assert "env: 0" in result.stdout  # the unlock that was in place still holds
    [failed] = audit_events(cli, "failed-unlock")
    assert failed["profile"] == "default"


def test_rotate_service_never_opens_the_personal_store(cli: CLI, tmp_path: Path) -> None:
    """An admin with a locked passphrase profile rotates a service key on a real terminal: the only prompt is for
    the new value; nothing is counted against (or logged for) the personal profile."""
    keyctl = need_keyctl()
    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    env = shell_env(cli, WEAK)
    init = subprocess.run(
        [keyctl, "session", "-", *credstore_argv(), "init", "--protection", "passphrase"],
        input=PW + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    group = grp.getgrgid(os.getegid()).gr_name
    cli("service", "add", "team", "--group", group, check=True)
    cli("service", "set", "team", "WANDB_API_KEY", input=KEY, check=True)
    argv = [*credstore_argv(), "rotate", "WANDB_API_KEY", "--service", "team"]
    child = pexpect.spawn(keyctl, ["session", "-", *argv], env=env, cwd=str(cli.home), timeout=30, encoding="utf-8")
    which = child.expect(["Passphrase for credstore profile", "new value for WANDB_API_KEY"])
    assert which == 1, "rotate --service asked for the personal passphrase"
    child.sendline(NEW_KEY)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    shown = cli("service", "show", "team", "--json", check=True)
    assert json.loads(shown.stdout)["entries"][0]["rotations"] == 1
    assert not audit_events(cli, "failed-unlock")
    shared_log = (tmp_path / "shared" / "audit.log").read_text().splitlines()
    rotated = [json.loads(line) for line in shared_log if '"event":"rotate"' in line]
    assert rotated and rotated[-1]["service"] == "team" and rotated[-1]["names"] == ["WANDB_API_KEY"]
    attempts = cli.store_dir / "state" / "attempts"
    assert not attempts.exists() or not any(attempts.iterdir())


def test_rotating_an_openbao_service_account_names_the_account_in_the_log(openbao, tmp_path: Path) -> None:
    admin = host(tmp_path, "admin")
    token = make_token(openbao)
    connect(admin, openbao, new_user(), token)
    team = "t" + new_user()
    made = admin(
        "--profile", "teamcfg", "init", "--backend", "vault", "--url", openbao.url, "--service", team,
        "--protection", "keyfile", input=token,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    admin("--profile", "teamcfg", "set", "WANDB_API_KEY", input=WANDB, check=True)
    rotated = admin("rotate", "WANDB_API_KEY", "--service", team, input=NEW_KEY)
    assert rotated.returncode == 0, rotated.stderr
    [line] = audit_events(admin, "rotate")
    assert line["service"] == team and line["profile"] == "default", line
