"""Service accounts with real Unix users and groups (root only): alice and bob in group ml share the team key, each
with their own WANDB_USERNAME; carol outside the group is refused; an admin rotation reaches alice's open bash."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures_services import UnixUser, UnixUsers, UserPython, real_shell, require_binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="multi-user tests create Unix users (useradd): need root")


def wandb_key() -> str:
    return "svc" + secrets.token_hex(24)  # 51 chars of [a-z0-9]: a plausible W&B key, unique per test


@dataclass
class Team:
    shared: Path
    group: str
    alice: UnixUser
    bob: UnixUser
    carol: UnixUser
    users: UnixUsers
    python: UserPython
    admin: object  # the `cli` fixture, running as root

    def env_for(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.python.env, "CREDSTORE_SHARED_DIR": str(self.shared), **(extra or {})}

    def run(self, user: UnixUser, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.users.run_as(user, self.python.argv("-m", "credstore", *args), env=self.env_for(), input=input)

    def admin_run(self, *args: str, input: str | None = None):
        return self.admin(*args, input=input, env={"CREDSTORE_SHARED_DIR": str(self.shared)})  # type: ignore[operator]


@pytest.fixture
def team(unix_users: UnixUsers, user_python: UserPython, cli) -> Iterator[Team]:
    base = Path(tempfile.mkdtemp(prefix="credstore-shared-"))
    base.chmod(0o755)
    group = unix_users.group("ml")
    alice = unix_users.create("alice", groups=[group])
    bob = unix_users.create("bob", groups=[group])
    carol = unix_users.create("carol")
    t = Team(base / "credstore", group, alice, bob, carol, unix_users, user_python, cli)
    for user, who in ((alice, "alice"), (bob, "bob")):
        r = t.run(user, "init", "--protection", "keyfile")
        assert r.returncode == 0, r.stderr
        r = t.run(user, "set", "WANDB_USERNAME", f"{who}-{user.uid}")
        assert r.returncode == 0, r.stderr
    try:
        yield t
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make_service(team: Team, key: str) -> None:
    r = team.admin_run("service", "add", "ml-team", "--group", team.group)
    assert r.returncode == 0, r.stderr
    r = team.admin_run("service", "set", "ml-team", "WANDB_API_KEY", input=key)
    assert r.returncode == 0, r.stderr
    r = team.admin_run("service", "set", "ml-team", "WANDB_ENTITY", "the-team")
    assert r.returncode == 0, r.stderr


def env_of(team: Team, user: UnixUser, *flags: str) -> dict[str, str]:
    r = team.run(user, "exec", *flags, "--", "env")
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def test_members_share_the_key_with_their_own_attribution(team: Team) -> None:
    key = wandb_key()
    make_service(team, key)
    d = team.shared / "ml-team"
    assert (d.stat().st_mode & 0o7777) == 0o2750
    assert ((d / "service.key").stat().st_mode & 0o777) == 0o640
    assert ((d / "service.store").stat().st_mode & 0o777) == 0o640
    assert key.encode() not in (d / "service.store").read_bytes()  # encrypted at rest

    alice = env_of(team, team.alice, "--service", "ml-team")
    bob = env_of(team, team.bob, "--service", "ml-team")
    assert alice["WANDB_API_KEY"] == key == bob["WANDB_API_KEY"]
    assert alice["WANDB_ENTITY"] == "the-team" == bob["WANDB_ENTITY"]
    assert alice["WANDB_USERNAME"] == f"alice-{team.alice.uid}"
    assert bob["WANDB_USERNAME"] == f"bob-{team.bob.uid}"

    # As a profile default too, and explain names the source.
    assert team.run(team.alice, "use-service", "ml-team").returncode == 0
    assert env_of(team, team.alice)["WANDB_API_KEY"] == key
    r = team.run(team.alice, "explain", "wandb")
    assert "WANDB_API_KEY: service:ml-team = ********" in r.stdout
    assert f"WANDB_USERNAME: profile:default = alice-{team.alice.uid}" in r.stdout
    assert key not in r.stdout + r.stderr


def test_outsider_is_refused_with_a_clear_error(team: Team) -> None:
    key = wandb_key()
    make_service(team, key)
    for args in (("env", "--service", "ml-team"), ("use-service", "ml-team"), ("service", "show", "ml-team")):
        r = team.run(team.carol, *args)
        assert r.returncode == 8, (args, r.returncode, r.stderr)
        assert "not a member" in r.stderr and team.group in r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert r.stdout == ""
    # The file system itself refuses her, not only credstore.
    r = team.users.run_as(team.carol, ["cat", str(team.shared / "ml-team" / "service.key")])
    assert r.returncode != 0
    r = team.run(team.carol, "service", "list")
    assert r.returncode == 0 and "ml-team" in r.stdout and "member" not in r.stdout


def test_members_cannot_change_the_service(team: Team) -> None:
    make_service(team, wandb_key())
    r = team.run(team.alice, "service", "set", "ml-team", "WANDB_API_KEY", input=wandb_key())
    assert r.returncode == 8 and "only the admin" in r.stderr
    r = team.run(team.alice, "rotate", "WANDB_API_KEY", "--service", "ml-team", input=wandb_key())
    assert r.returncode == 8


def test_admin_rotation_reaches_an_open_bash_that_exported_the_old_key(team: Team) -> None:
    old, new = wandb_key(), wandb_key()
    make_service(team, old)
    assert team.run(team.alice, "use-service", "ml-team").returncode == 0
    bash = real_shell("bash")
    env = {**team.alice.base_env(), **team.env_for(), "SHELL": bash}
    python = str(team.python.python)
    proc = subprocess.Popen(
        [require_binary("runuser"), "-u", team.alice.name, "-m", "--", bash, "--norc", "--noprofile"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(team.alice.home),
        text=True,
    )
    assert proc.stdin and proc.stdout

    def say(line: str) -> str:
        proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return proc.stdout.readline().strip()  # type: ignore[union-attr]

    try:
        first = say(f'eval "$({python} -m credstore env)"; echo "K=$WANDB_API_KEY U=$WANDB_USERNAME"')
        assert first == f"K={old} U=alice-{team.alice.uid}"
        r = team.admin_run("rotate", "WANDB_API_KEY", "--service", "ml-team", input=new)
        assert r.returncode == 0, r.stderr
        second = say(f'eval "$({python} -m credstore env)"; echo "K=$WANDB_API_KEY U=$WANDB_USERNAME"')
        assert second == f"K={new} U=alice-{team.alice.uid}"
        # A key alice exported by hand is hers and wins over the service default.
        third = say(f'export WANDB_API_KEY=mine; eval "$({python} -m credstore env)"; echo "K=$WANDB_API_KEY"')
        assert third == "K=mine"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    # bob's next exec gets the new key as well
    assert env_of(team, team.bob, "--service", "ml-team")["WANDB_API_KEY"] == new


def test_service_changes_are_in_the_shared_log_reads_in_each_persons_log(team: Team) -> None:
    key = wandb_key()
    make_service(team, key)
    env_of(team, team.alice, "--service", "ml-team")
    shared_log = (team.shared / "audit.log").read_text()
    assert '"event":"service-add"' in shared_log and '"event":"service-set"' in shared_log
    assert ((team.shared / "audit.log").stat().st_mode & 0o777) == 0o600
    alice_log = (team.alice.home / ".local/share/credstore/audit.log").read_text()
    assert '"event":"exec"' in alice_log and '"service:ml-team":["WANDB_API_KEY"' in alice_log
    assert f'"user":"{team.alice.name}"' in alice_log
    assert key not in shared_log and key not in alice_log
