"""Permissions: umask 000 at creation, group/world-writable parents, loose modes, symlinked store files and
directories, and a store owned by another user. Each unsafe case is refused (exit 8) with the fix in the message,
and where the fix is a command, running it makes the store work again.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from credstore.errors import EXIT_PERMISSION
from tests.adversarial_support import CLI_LEVELS, assert_one_line_error, cli_at_level
from tests.conftest import credstore_argv

KEY = "k" * 40
FIX_HINTS = ("fix it with:", "replace the link", "set CREDSTORE_HOME", "move it away")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def assert_refused_with_fix(result) -> str:
    assert_one_line_error(result, EXIT_PERMISSION)
    assert any(hint in result.stderr for hint in FIX_HINTS), f"no fix in: {result.stderr!r}"
    assert result.stdout == ""
    return result.stderr


def apply_fix(message: str) -> None:
    """Run the `chmod ...` the message suggests, the way a person would copy it."""
    match = re.search(r"fix it with: (chmod [^\s]+ \S+)", message)
    assert match, message
    subprocess.run(shlex.split(match.group(1)), check=True)


def store_paths(cli) -> tuple[Path, Path, Path]:
    profiles = cli.store_dir / "profiles"
    return profiles, profiles / "default.store", profiles / "default.key"


@pytest.fixture
def ready(cli):
    assert cli("init", "--protection", "keyfile").returncode == 0
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    return cli


def works(cli) -> bool:
    return cli("get", "WANDB_API_KEY").stdout == KEY + "\n"


@pytest.mark.parametrize("level", CLI_LEVELS)
def test_umask_000_still_gives_private_modes(cli, level: str) -> None:
    def umask_0() -> None:
        os.umask(0)

    with cli_at_level(cli, level, init=False) as login:

        def run(*args: str, data: bytes = b"") -> None:
            login.call(
                subprocess.run,
                [*credstore_argv(), *args],
                input=data,
                env=cli.env,
                cwd=cli.home,
                check=True,
                capture_output=True,
                preexec_fn=umask_0,
            )

        login.init(preexec_fn=umask_0)  # for a passphrase: init, then unlock, both under umask 000
        run("set", "WANDB_API_KEY", data=KEY.encode())
        run("set", "WANDB_API_KEY", data=(KEY + "2").encode())
    dirs = [p for p in cli.store_dir.rglob("*") if p.is_dir()] + [cli.store_dir]
    files = [p for p in cli.store_dir.rglob("*") if p.is_file()]
    expected = {"default.store", "default.lock"} | ({"default.key"} if level == "keyfile" else set())
    assert {p.name for p in files} >= expected
    assert len(dirs) >= 4  # home, profiles, state, state/generations
    assert {str(p): oct(mode(p)) for p in dirs if mode(p) != 0o700} == {}
    assert {str(p): oct(mode(p)) for p in files if mode(p) != 0o600} == {}


@pytest.mark.parametrize("where", ["store home", "HOME", "profiles"])
@pytest.mark.parametrize("bits", [0o020, 0o002])
def test_group_or_world_writable_directories_refused(ready, where: str, bits: int) -> None:
    cli = ready
    path = {"store home": cli.store_dir, "HOME": cli.home, "profiles": cli.store_dir / "profiles"}[where]
    path.chmod(mode(path) | bits)
    for args, data in ((("get", "WANDB_API_KEY"), ""), (("set", "WANDB_API_KEY"), "new-" + KEY), (("env",), "")):
        message = assert_refused_with_fix(cli(*args, input=data))
    apply_fix(message)
    assert works(cli)


@pytest.mark.parametrize("bits", [0o040, 0o004, 0o050])
def test_readable_store_directory_refused(ready, bits: int) -> None:
    cli = ready
    profiles, _, _ = store_paths(cli)
    profiles.chmod(0o700 | bits)
    message = assert_refused_with_fix(cli("get", "WANDB_API_KEY"))
    assert "chmod 700" in message
    apply_fix(message)
    assert works(cli)


@pytest.mark.parametrize(("which", "bits"), [("store", 0o020), ("store", 0o002), ("key", 0o040), ("key", 0o004)])
def test_loose_file_modes_refused(ready, which: str, bits: int) -> None:
    cli = ready
    _, store, key = store_paths(cli)
    path = store if which == "store" else key
    path.chmod(0o600 | bits)
    message = assert_refused_with_fix(cli("get", "WANDB_API_KEY"))
    assert "chmod 600" in message
    apply_fix(message)
    assert works(cli)


@pytest.mark.parametrize("which", ["store", "key", "profiles", "lock"])
def test_symlinks_refused(ready, which: str, tmp_path: Path) -> None:
    cli = ready
    profiles, store, key = store_paths(cli)
    target_dir = cli.home / "elsewhere"
    target_dir.mkdir(mode=0o700)
    path = {"store": store, "key": key, "profiles": profiles, "lock": profiles / "default.lock"}[which]
    moved = target_dir / path.name
    path.rename(moved)
    path.symlink_to(moved)
    before = moved.read_bytes() if moved.is_file() else None
    commands = [(("set", "WANDB_API_KEY"), "new-" + KEY)]
    if which != "lock":  # readers never take the lock, so only writers meet it
        commands += [(("get", "WANDB_API_KEY"), ""), (("env",), "")]
    for args, data in commands:
        message = assert_refused_with_fix(cli(*args, input=data))
        assert "symlink" in message
    if before is not None:
        assert moved.read_bytes() == before, "a write went through the symlink"
    path.unlink()
    moved.rename(path)
    assert works(cli)


def test_symlinked_store_pointing_at_a_victim_file_is_never_written(ready) -> None:
    """The classic attack: the store path is a link to some other file of the user's; a write must not clobber it."""
    cli = ready
    _, store, _ = store_paths(cli)
    victim = cli.home / "thesis.tex"
    victim.write_text("years of work")
    store.unlink()
    store.symlink_to(victim)
    for args, data in ((("set", "WANDB_API_KEY"), "x"), (("rm", "WANDB_API_KEY"), ""), (("init",), "")):
        result = cli(*args, input=data)
        assert result.returncode != 0
    assert victim.read_text() == "years of work"
    assert store.is_symlink()


def test_store_home_that_is_a_symlink_to_a_private_directory_is_accepted(cli) -> None:
    """Only the store's own directory and files must be real; CREDSTORE_HOME may sit behind a link (like a
    symlinked home directory), as long as everything it resolves to passes the checks."""
    real = cli.home / "real-store"
    real.mkdir(mode=0o700)
    link = cli.home / "link-store"
    link.symlink_to(real)
    env = {"CREDSTORE_HOME": str(link)}
    assert cli("init", "--protection", "keyfile", env=env).returncode == 0
    cli("set", "WANDB_API_KEY", input=KEY, env=env, check=True)
    assert (real / "profiles" / "default.store").is_file()


@pytest.mark.parametrize("which", ["store", "key", "profiles", "store home parent"])
def test_store_owned_by_another_user(ready, unix_users, which: str) -> None:
    cli = ready
    other = unix_users.create("csperm")
    profiles, store, key = store_paths(cli)
    path = {"store": store, "key": key, "profiles": profiles, "store home parent": cli.store_dir.parent}[which]
    os.chown(path, other.uid, other.gid)
    before = store.read_bytes()
    for args, data in ((("get", "WANDB_API_KEY"), ""), (("set", "WANDB_API_KEY"), "new-" + KEY)):
        message = assert_refused_with_fix(cli(*args, input=data))
        assert f"uid {other.uid}" in message
    assert store.read_bytes() == before
    if which != "store home parent":
        assert f"chown -R {os.geteuid()}" in message
    os.chown(path, os.geteuid(), os.getegid())
    assert works(cli)
