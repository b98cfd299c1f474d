"""Multi-user (root only): real Unix users made with useradd. One cannot read, list, change or unlock another's store,
even when pointed straight at it, and credstore run by one user never touches another user's files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from credstore.errors import EXIT_PERMISSION
from tests.adversarial_support import assert_one_line_error

SECRET = "csk-multiuser-" + uuid.uuid4().hex


class Result:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def two_users(unix_users, user_python):
    alice = unix_users.create("csalice")
    bob = unix_users.create("csbob")

    def run(user, *args: str, input: str = "", env: dict[str, str] | None = None) -> Result:
        return Result(
            unix_users.run_as(
                user, user_python.argv("-m", "credstore", *args), env={**user_python.env, **(env or {})}, input=input
            )
        )

    assert run(alice, "init", "--protection", "keyfile").returncode == 0
    assert run(alice, "set", "WANDB_API_KEY", input=SECRET).returncode == 0
    assert run(alice, "get", "WANDB_API_KEY").stdout == SECRET + "\n"
    store = alice.home / ".local" / "share" / "credstore"
    assert (store / "profiles" / "default.store").is_file()
    return alice, bob, run, store


COMMANDS = [
    (("get", "WANDB_API_KEY"), ""),
    (("list",), ""),
    (("list", "--json"), ""),
    (("env",), ""),
    (("explain",), ""),
    (("exec", "--", "env"), ""),
    (("set", "WANDB_API_KEY"), "bob-was-here-" + "x" * 30),
    (("rm", "WANDB_API_KEY"), ""),
    (("init", "--protection", "keyfile"), ""),
    (("accept-rollback",), ""),
]


@pytest.mark.parametrize("home_mode", [0o700, 0o755], ids=["home-0700", "home-0755"])
def test_other_user_cannot_use_my_store(two_users, home_mode: int) -> None:
    alice, bob, run, store = two_users
    alice.home.chmod(home_mode)
    before = (store / "profiles" / "default.store").read_bytes()
    for args, data in COMMANDS:
        result = run(bob, *args, input=data, env={"CREDSTORE_HOME": str(store)})
        assert_one_line_error(result, EXIT_PERMISSION)
        assert SECRET not in result.stdout + result.stderr
    assert (store / "profiles" / "default.store").read_bytes() == before
    assert run(alice, "get", "WANDB_API_KEY").stdout == SECRET + "\n"


def test_other_user_cannot_read_the_files_directly(two_users, unix_users) -> None:
    alice, bob, _, store = two_users
    alice.home.chmod(0o755)  # even with a traversable home, the store directory and its files stay closed
    for path in ("profiles/default.store", "profiles/default.key", "profiles"):
        done = unix_users.run_as(bob, ["cat" if not path.endswith("profiles") else "ls", str(store / path)])
        assert done.returncode != 0 and "Permission denied" in done.stderr, path
        assert SECRET not in done.stdout


PASSPHRASE = "alice's passphrase " + uuid.uuid4().hex[:8]
WEAK = {"CREDSTORE_TEST_WEAK_KDF": "1"}


def in_login(unix_users, user_python, user, *args: str, input: str = "", env: dict[str, str] | None = None) -> Result:
    """`credstore ARGS` as ``user`` inside a fresh session keyring of its own (`keyctl session -`), as a login has,
    so nothing lands in the test runner's keyrings. keyctl's "Joined session keyring" line is taken off stderr."""
    keyctl = shutil.which("keyctl")
    if keyctl is None:
        pytest.skip("keyctl (package keyutils) is not installed; it gives each run a login-like session keyring")
    done = unix_users.run_as(
        user,
        [keyctl, "session", "-", *user_python.argv("-m", "credstore", *args)],
        env={**user_python.env, **(env or {})},
        input=input,
    )
    result = Result(done)
    result.stderr = "".join(
        line for line in done.stderr.splitlines(keepends=True) if not line.startswith("Joined session keyring:")
    )
    return result


def test_unlock_of_another_users_store(two_users, unix_users, user_python) -> None:
    """Bob, even knowing Alice's passphrase, cannot unlock (or lock, re-key, re-protect) her passphrase profile."""
    alice, bob, run, store = two_users
    alice.home.chmod(0o755)
    made = in_login(
        unix_users,
        user_python,
        alice,
        "--profile",
        "pp",
        "init",
        "--protection",
        "passphrase",
        input=PASSPHRASE + "\n",
        env=WEAK,
    )
    assert made.returncode == 0, made.stderr
    mine = in_login(unix_users, user_python, alice, "--profile", "pp", "unlock", input=PASSPHRASE + "\n")
    assert mine.returncode == 0, mine.stderr  # the positive control: the owner can
    path = store / "profiles" / "pp.store"
    before = path.read_bytes()
    theirs = {"CREDSTORE_HOME": str(store), **WEAK}
    for args, data in (
        (("unlock",), PASSPHRASE + "\n"),
        (("unlock", "--ttl", "1h"), PASSPHRASE + "\n"),
        (("lock",), ""),
        (("passwd",), f"{PASSPHRASE}\nbob's new one\n"),
        (("protect", "keyfile"), PASSPHRASE + "\n"),
    ):
        result = in_login(unix_users, user_python, bob, "--profile", "pp", *args, input=data, env=theirs)
        assert_one_line_error(result, EXIT_PERMISSION)
        assert PASSPHRASE not in result.stdout + result.stderr
        assert result.stdout == "", args
    assert path.read_bytes() == before
    # Nothing was cached for bob either: his own session shows no credstore key after the attempt.
    probe = unix_users.run_as(
        bob,
        [
            shutil.which("keyctl") or "keyctl",
            "session",
            "-",
            "sh",
            "-c",
            '"$0" -m credstore --profile pp unlock; grep -c " credstore:" /proc/keys; true',
            str(user_python.python),
        ],
        env={**user_python.env, **theirs},
        input=PASSPHRASE + "\n",
    )
    assert probe.stdout.strip() == "0", (probe.stdout, probe.stderr)
    assert "Traceback" not in probe.stderr


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_my_credstore_never_touches_another_users_files(two_users, unix_users, user_python) -> None:
    """Bob's own credstore (set, get, list, env, exec), traced: no file-system call names a path of Alice's."""
    alice, bob, run, _ = two_users
    trace_dir = Path(f"/tmp/credstore-trace-{uuid.uuid4().hex}")
    trace_dir.mkdir(mode=0o777)
    trace_dir.chmod(0o777)
    try:
        steps = [
            (("init", "--protection", "keyfile"), ""),
            (("set", "HF_TOKEN"), "hf_" + "b" * 34),
            (("get", "HF_TOKEN"), ""),
            (("list",), ""),
            (("env",), ""),
            (("exec", "--", "true"), ""),
        ]
        traced = 0
        for i, (args, data) in enumerate(steps):
            out = trace_dir / f"{i}.trace"
            done = unix_users.run_as(
                bob,
                [
                    "strace",
                    "-f",
                    "-qq",
                    "-e",
                    "trace=%file",
                    "-o",
                    str(out),
                    *user_python.argv("-m", "credstore", *args),
                ],
                env=user_python.env,
                input=data,
            )
            if done.returncode != 0 and "ptrace" in done.stderr:
                pytest.skip(f"strace cannot trace here: {done.stderr.strip()[-200:]}")
            assert done.returncode == 0, (args, done.stderr)
            text = out.read_text()
            traced += len(text.splitlines())
            touching = [line for line in text.splitlines() if re.search(re.escape(str(alice.home)) + r"\b", line)]
            assert not touching, touching[:5]
        assert traced > 100  # the trace really recorded the commands' file access
    finally:
        shutil.rmtree(trace_dir, ignore_errors=True)


def test_root_running_credstore_on_a_users_store_is_refused(two_users, cli) -> None:
    """credstore itself refuses a store it does not own, even as root. (Root can still read the files and the key
    file directly: SECURITY.md lists root as an attacker credstore does not stop.)"""
    alice, _, run, store = two_users
    result = cli("get", "WANDB_API_KEY", env={"CREDSTORE_HOME": str(store)})
    assert_one_line_error(result, EXIT_PERMISSION)
    assert f"uid {alice.uid}" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert run(alice, "get", "WANDB_API_KEY").stdout == SECRET + "\n"
