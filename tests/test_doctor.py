"""`credstore doctor`: one finding per planted problem, exit 1 when anything is wrong, exit 0 on a clean account
(a fresh Unix user), and never a secret value in its output."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess

import pytest

from tests.test_protection import KEY, PW, WEAK, shell_env

HF = "hf_" + "q" * 34
NETRC_KEY = "netrcnetrcnetrcnetrcnetrcnetrcnetrcnetrc"
RC_KEY = "sk-" + "r" * 40


def doctor(cli, env=None):
    result = cli("doctor", env=env)
    for secret in (KEY, HF, NETRC_KEY, RC_KEY, PW):
        assert secret not in result.stdout and secret not in result.stderr
    return result


def lines_with(result, *words):
    return [line for line in result.stdout.splitlines() if all(w in line for w in words)]


def test_planted_plaintext_keys_are_each_reported_with_a_fix(cli):
    home = cli.home
    (home / ".netrc").write_text(
        f"machine example.org login x password other\nmachine api.wandb.ai\n  login user\n  password {NETRC_KEY}\n"
    )
    (home / ".netrc").chmod(0o600)
    (home / ".bashrc").write_text(
        "# my settings\n"
        f"export OPENAI_API_KEY={RC_KEY}\n"
        'export HF_TOKEN="$(credstore get HF_TOKEN)"\n'  # a lookup, not a plaintext key
        "alias ll='ls -l'\n"
    )
    (home / ".profile").write_text(f"WANDB_API_KEY='{KEY}'\n")
    (home / ".config" / "fish").mkdir(parents=True)
    (home / ".config" / "fish" / "config.fish").write_text(f"set -gx HF_TOKEN {HF}\n")
    hf_home = home / "hf"
    hf_home.mkdir()
    (hf_home / "token").write_text(HF)
    cli("init", "--protection", "passphrase", input=PW + "\n", env=WEAK, check=True)
    result = doctor(cli, env={"HF_HOME": str(hf_home)})
    assert result.returncode == 1
    out = result.stdout
    netrc = lines_with(result, "[warning] plaintext key", ".netrc line 2", "machine api.wandb.ai")
    assert len(netrc) == 1
    assert "example.org" not in out
    assert lines_with(result, "[warning] plaintext key", ".bashrc line 2 sets OPENAI_API_KEY")
    assert not lines_with(result, ".bashrc line 3")
    assert lines_with(result, "[warning] plaintext key", ".profile line 1 sets WANDB_API_KEY")
    assert lines_with(result, "[warning] plaintext key", "config.fish line 1 sets HF_TOKEN")
    assert lines_with(result, "[warning] plaintext key", f"{hf_home / 'token'} holds a Hugging Face token")
    # Each fix names the one command that does it.
    assert "fix: credstore import hf --remove-source" in out
    assert "fix: credstore import env OPENAI_API_KEY" in out
    assert "fix: credstore import netrc --remove-source" in out
    assert lines_with(result, "[ok] protection", "protected by passphrase")


def test_netrc_readable_by_others_is_an_error(cli):
    (cli.home / ".netrc").write_text(f"machine api.forge.coreweave.com login user password {NETRC_KEY}\n")
    (cli.home / ".netrc").chmod(0o644)
    result = doctor(cli)
    assert result.returncode == 1
    assert lines_with(result, "[warning] plaintext key", "machine api.forge.coreweave.com")
    assert lines_with(result, "[error] permissions", ".netrc is readable by other users")
    assert f"fix: chmod 600 {cli.home / '.netrc'}" in result.stdout


def test_keyfile_level_is_a_warning(cli):
    cli("init", "--protection", "keyfile", check=True)
    result = doctor(cli)
    assert result.returncode == 1
    assert lines_with(result, "[warning] protection", "profile 'default' uses keyfile")
    assert "fix: credstore protect passphrase" in result.stdout


@pytest.mark.parametrize(
    ("target", "mode", "words", "fix"),
    [
        ("profiles", 0o770, "is accessible by other users", "chmod 700"),
        ("store-home", 0o775, "is writable by group or others", "chmod go-w"),
        ("keyfile", 0o640, "is accessible by other users", "chmod 600"),
        ("store", 0o664, "is accessible by other users", "chmod 600"),
    ],
)
def test_permission_problems_are_reported_with_the_exact_chmod(cli, target, mode, words, fix):
    cli("init", "--protection", "keyfile", check=True)
    paths = {
        "profiles": cli.store_dir / "profiles",
        "store-home": cli.store_dir,
        "keyfile": cli.store_dir / "profiles" / "default.key",
        "store": cli.store_dir / "profiles" / "default.store",
    }
    path = paths[target]
    path.chmod(mode)
    result = doctor(cli)
    assert result.returncode == 1
    assert lines_with(result, "[error] permissions", str(path), words), result.stdout
    assert f"fix: {fix} {path}" in result.stdout
    # and the store itself refuses to be used, with the same fix
    used = cli("list")
    assert used.returncode == 8
    assert f"{fix} {path}" in used.stderr


def test_environment_variable_shadowing_a_stored_value(cli):
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    other = "z" * 40
    result = doctor(cli, env={"WANDB_API_KEY": other})
    assert other not in result.stdout
    assert lines_with(result, "[warning] environment", "WANDB_API_KEY is set in this environment")
    # The same variable exported by `credstore env` (its marker says so) is not a shadow; nor is an equal value.
    exported = subprocess.run(
        ["bash", "-c", 'eval "$(credstore env --shell bash)"; credstore doctor'],
        capture_output=True,
        text=True,
        env=shell_env(cli),
        cwd=cli.home,
    )
    assert "[warning] environment" not in exported.stdout
    same = doctor(cli, env={"WANDB_API_KEY": KEY})
    assert "[warning] environment" not in same.stdout


def test_locked_profile_is_not_compared_and_says_so(cli):
    cli("init", "--protection", "passphrase", input=PW + "\n", env=WEAK, check=True)
    result = doctor(cli, env={"WANDB_API_KEY": "x" * 40})
    assert lines_with(result, "[info] environment", "profile 'default' is locked")


def test_other_terminal_session_of_the_same_account_is_reported(cli):
    pid, fd = pty.fork()
    if pid == 0:  # a second "login": its own session with a controlling terminal
        os.execv("/bin/sleep", ["sleep", "120"])
    try:
        result = doctor(cli)
        # Information, not a failure: another terminal of the same person is normal (issue: doctor exited 1 for it).
        assert result.returncode == 0
        assert lines_with(result, "[info] sessions", "other terminal session")
        assert "--profile NAME init --protection passphrase" in result.stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_clean_account_exits_0(unix_users, user_python):
    """A fresh Unix user with a passphrase profile and nothing planted: no problem, exit 0."""
    user = unix_users.create("csdoc")
    env = {**user_python.env, **WEAK}
    init = unix_users.run_as(
        user, user_python.argv("-m", "credstore", "init", "--protection", "passphrase"), env=env, input=PW + "\n"
    )
    assert init.returncode == 0, init.stderr
    result = unix_users.run_as(user, user_python.argv("-m", "credstore", "doctor"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok] protection: profile 'default' is protected by passphrase" in result.stdout
    assert "[ok] sessions" in result.stdout
    assert "no problems found" in result.stderr
    # The same user with a key pasted into ~/.bashrc: exit 1.
    (user.home / ".bashrc").write_text(f"export WANDB_API_KEY={KEY}\n")
    os.chown(user.home / ".bashrc", user.uid, user.gid)
    again = unix_users.run_as(user, user_python.argv("-m", "credstore", "doctor"), env=env)
    assert again.returncode == 1
    assert KEY not in again.stdout + again.stderr


def test_finding_rendering_and_severity():
    from credstore.app.doctor import Finding

    finding = Finding("warning", "t", "m", "f")
    assert finding.is_problem and finding.render() == "[warning] t: m\n    fix: f"
    assert not Finding("info", "t", "m").is_problem
