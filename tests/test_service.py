"""Service accounts for one user (admin == member): commands, precedence, attribution, permission checks."""

from __future__ import annotations

import grp
import json
import os
import secrets
from pathlib import Path

import pytest


def wandb_key() -> str:
    return "svc" + secrets.token_hex(24)


@pytest.fixture
def svc(cli, tmp_path: Path):
    """The `cli` runner with a shared dir and a service 'team' (group: our own primary group), plus a profile."""
    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    group = grp.getgrgid(os.getegid()).gr_name
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_USERNAME", "me", check=True)
    cli("service", "add", "team", "--group", group, check=True)
    key = wandb_key()
    cli("service", "set", "team", "WANDB_API_KEY", input=key, check=True)
    cli("service", "set", "team", "WANDB_ENTITY", "the-team", check=True)
    cli.key = key
    cli.shared = tmp_path / "shared"
    return cli


def json_env(cli, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    r = cli("env", "--format", "json", *args, env=env)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    return data if isinstance(data, dict) else {d["name"]: d["value"] for d in data}


def test_list_show_rm(svc) -> None:
    r = svc("service", "list", "--json")
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == ["team"] and rows[0]["member"] is True
    r = svc("service", "show", "team")
    assert r.returncode == 0 and "WANDB_API_KEY" in r.stdout and "********" in r.stdout and "the-team" in r.stdout
    assert svc.key not in r.stdout
    r = svc("service", "rm", "team")
    assert r.returncode == 0 and not (svc.shared / "team").exists()
    r = svc("service", "show", "team")
    assert r.returncode == 3 and "no service account 'team'" in r.stderr


def test_attribution_never_comes_from_a_service(svc) -> None:
    r = svc("service", "set", "team", "WANDB_USERNAME", "robot")
    assert r.returncode == 2 and "attributed" in r.stderr
    r = svc("service", "set", "team", "WANDB_USER_EMAIL", "robot@example.com")
    assert r.returncode == 2
    values = json_env(svc, "--service", "team")
    assert values["WANDB_USERNAME"] == "me"
    assert values["WANDB_API_KEY"] == svc.key


def test_explicit_service_beats_environment_default_service_does_not(svc) -> None:
    svc("set", "WANDB_API_KEY", input=wandb_key(), check=True)  # the person's own key
    own_env = {"WANDB_API_KEY": "typed-by-hand-" + "x" * 40}
    # --service counts as an explicit argument: above the environment.
    assert json_env(svc, "--service", "team", env=own_env)["WANDB_API_KEY"] == svc.key
    r = svc("explain", "--service", "team", "WANDB_API_KEY", env=own_env)
    assert "WANDB_API_KEY: service:team = ********" in r.stdout and "environment" in r.stdout
    # use-service: above the person's stored values, below the environment.
    svc("use-service", "team", check=True)
    assert json_env(svc)["WANDB_API_KEY"] == svc.key
    assert json_env(svc, env=own_env)["WANDB_API_KEY"] == own_env["WANDB_API_KEY"]
    r = svc("explain", "WANDB_API_KEY")
    assert "service:team = ********  (shadows profile:default)" in r.stdout
    svc("use-service", "--none", check=True)
    r = svc("explain", "WANDB_API_KEY")
    assert "WANDB_API_KEY: profile:default" in r.stdout


def test_warns_when_service_key_has_no_username(svc) -> None:
    svc("rm", "WANDB_USERNAME", check=True)
    r = svc("env", "--service", "team")
    assert r.returncode == 0
    assert "WANDB_USERNAME is not set" in r.stderr and "attributed to the service account" in r.stderr
    r = svc("env", "--service", "team", env={"WANDB_USERNAME": "from-env"})
    assert "WANDB_USERNAME is not set" not in r.stderr


def test_service_without_personal_profile(cli, tmp_path: Path) -> None:
    cli.env["CREDSTORE_SHARED_DIR"] = str(tmp_path / "shared")
    cli("service", "add", "team", "--group", grp.getgrgid(os.getegid()).gr_name, check=True)
    key = wandb_key()
    cli("service", "set", "team", "WANDB_API_KEY", input=key, check=True)
    assert json_env(cli, "--service", "team")["WANDB_API_KEY"] == key
    r = cli("env")
    assert r.returncode == 3  # no profile and no service: still an error


@pytest.mark.parametrize(
    ("target", "mode", "needle"),
    [
        ("team", 0o2770, "writable by its group"),
        ("team", 0o2755, "accessible by everyone"),
        ("team/service.key", 0o644, "chmod 640"),
        ("team/service.store", 0o660, "chmod 640"),
        ("", 0o775, "writable by group or others"),
    ],
)
def test_unsafe_permissions_are_refused(svc, target: str, mode: int, needle: str) -> None:
    path = svc.shared / target if target else svc.shared
    path.chmod(mode)
    r = svc("env", "--service", "team")
    assert r.returncode == 8, r.stderr
    assert needle in r.stderr and r.stdout == ""
    assert "Traceback" not in r.stderr


def test_symlinked_key_file_is_refused(svc, tmp_path: Path) -> None:
    key = svc.shared / "team" / "service.key"
    elsewhere = tmp_path / "key.copy"
    elsewhere.write_bytes(key.read_bytes())
    key.unlink()
    key.symlink_to(elsewhere)
    r = svc("env", "--service", "team")
    assert r.returncode == 8 and "symlink" in r.stderr


def test_unknown_service_and_group(svc) -> None:
    r = svc("env", "--service", "nope")
    assert r.returncode == 3
    r = svc("service", "add", "x", "--group", "no-such-group-" + secrets.token_hex(3))
    assert r.returncode == 3 and "no Unix group" in r.stderr
    r = svc("service", "add", "team", "--group", grp.getgrgid(os.getegid()).gr_name)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = svc("service", "add", "../evil", "--group", "root")
    assert r.returncode == 2


def test_service_secret_never_on_argv(svc) -> None:
    r = svc("service", "set", "team", "WANDB_API_KEY", wandb_key())
    assert r.returncode == 2 and "command line" in r.stderr


def test_store_copy_without_key_reveals_nothing(svc) -> None:
    data = (svc.shared / "team" / "service.store").read_bytes()
    assert svc.key.encode() not in data and b"the-team" not in data


@pytest.mark.parametrize("how", ["default", "explicit"])
def test_rotation_reaches_a_bash_that_exported_the_old_key(svc, how: str) -> None:
    import shutil
    import subprocess

    from tests.conftest import credstore_argv

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed")
    if how == "default":
        svc("use-service", "team", check=True)
    flag = "" if how == "default" else " --service team"
    cmd = " ".join(credstore_argv())
    new = wandb_key()
    proc = subprocess.Popen(
        [bash, "--norc", "--noprofile"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**svc.env, "SHELL": bash},
        cwd=svc.home,
        text=True,
    )

    def say(line: str) -> str:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    try:
        assert say(f'eval "$({cmd} env{flag})"; echo "$WANDB_API_KEY $WANDB_USERNAME"') == f"{svc.key} me"
        svc("rotate", "WANDB_API_KEY", "--service", "team", input=new, check=True)
        assert say(f'eval "$({cmd} env{flag})"; echo "$WANDB_API_KEY $WANDB_USERNAME"') == f"{new} me"
        svc("rotate", "WANDB_API_KEY", "--service", "team", "--rollback", check=True)
        assert say(f'eval "$({cmd} env{flag})"; echo "$WANDB_API_KEY"') == svc.key
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
