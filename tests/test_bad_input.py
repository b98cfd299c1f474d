"""Bad input: each gives one line on stderr, its documented exit code, nothing on stdout, and loses nothing stored.

The table covers names that are not variable names, empty / NUL / oversized / non-UTF-8 values, unknown services,
malformed ``--set``, bad options; separate tests cover the file system: a store directory that is a file, a full
disk (a 64 KiB tmpfs when root, RLIMIT_FSIZE otherwise) and a read-only store (a read-only bind mount when root).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from credstore.cli.terminal import MAX_ENV_STRING
from credstore.errors import (
    EXIT_COMMAND_NOT_FOUND,
    EXIT_IO,
    EXIT_NOT_FOUND,
    EXIT_PERMISSION,
    EXIT_USAGE,
)
from tests.adversarial_support import assert_one_line_error, make_store, read_values_fresh
from tests.conftest import credstore_argv

KEY = "k" * 40
STORED = {"WANDB_API_KEY": KEY, "WANDB_ENTITY": "team", "HF_TOKEN": "hf_" + "t" * 34}

# (id, argv, stdin, exit code)
CASES: list[tuple[str, tuple[str, ...], bytes, int]] = [
    # names that are not variable names
    ("name-leading-digit", ("set", "1ABC"), b"v", EXIT_USAGE),
    ("name-dash", ("set", "A-B"), b"v", EXIT_USAGE),
    ("name-empty", ("set", ""), b"v", EXIT_USAGE),
    ("name-space", ("set", "A B"), b"v", EXIT_USAGE),
    ("name-equals", ("set", "A=B"), b"v", EXIT_USAGE),
    ("name-non-ascii", ("set", "SCHLÜSSEL"), b"v", EXIT_USAGE),
    ("name-newline", ("set", "A\nB"), b"v", EXIT_USAGE),
    ("name-dollar", ("set", "$HOME"), b"v", EXIT_USAGE),
    ("get-bad-name", ("get", "BAD NAME"), b"", EXIT_USAGE),
    ("rm-one-bad-name", ("rm", "WANDB_API_KEY", "1BAD"), b"", EXIT_USAGE),
    ("rm-one-missing", ("rm", "WANDB_API_KEY", "NOT_STORED"), b"", EXIT_NOT_FOUND),
    ("env-bad-name", ("env", "1BAD"), b"", EXIT_USAGE),
    ("explain-bad-name", ("explain", "A-B"), b"", EXIT_USAGE),
    # values
    ("value-empty", ("set", "WANDB_API_KEY"), b"", EXIT_USAGE),
    ("value-only-newline", ("set", "WANDB_API_KEY"), b"\n", EXIT_USAGE),
    ("value-nul", ("set", "WANDB_API_KEY"), b"abc\0def", EXIT_USAGE),
    ("value-only-nul", ("set", "NEW_NAME"), b"\0", EXIT_USAGE),
    ("value-1MiB", ("set", "WANDB_API_KEY"), b"x" * (1 << 20), EXIT_USAGE),
    ("value-one-over-env-limit", ("set", "BIG"), b"x" * (MAX_ENV_STRING - len("BIG")), EXIT_USAGE),
    ("value-invalid-utf8", ("set", "WANDB_API_KEY"), b"\xff\xfe" + KEY.encode(), EXIT_USAGE),
    ("value-overlong-utf8", ("set", "WANDB_API_KEY"), b"\xc0\xaf", EXIT_USAGE),
    ("value-utf8-surrogate", ("set", "WANDB_API_KEY"), b"\xed\xa0\x80", EXIT_USAGE),
    ("value-truncated-utf8", ("set", "WANDB_API_KEY"), "ab✓".encode()[:-1], EXIT_USAGE),
    ("secret-on-argv", ("set", "WANDB_API_KEY", "on-the-command-line"), b"", EXIT_USAGE),
    ("unknown-secret-on-argv", ("set", "MY_TOKEN", "on-the-command-line"), b"", EXIT_USAGE),
    # unknown services
    ("env-unknown-service", ("env", "no-such-service"), b"", EXIT_USAGE),
    ("add-unknown-service", ("add", "nosuch"), b"", EXIT_USAGE),
    ("explain-unknown-service", ("explain", "wand-b"), b"", EXIT_USAGE),
    ("exec-unknown-service", ("exec", "no-such-service", "--", "true"), b"", EXIT_USAGE),
    # malformed --set
    ("set-without-equals", ("env", "--set", "NOEQUALS"), b"", EXIT_USAGE),
    ("set-empty-name", ("env", "--set", "=value"), b"", EXIT_USAGE),
    ("set-bad-name", ("env", "--set", "1A=v"), b"", EXIT_USAGE),
    ("set-empty-value", ("env", "--set", "A="), b"", EXIT_USAGE),
    ("set-space-name", ("explain", "--set", "A B=c"), b"", EXIT_USAGE),
    ("exec-set-without-equals", ("exec", "--set", "BAD", "--", "true"), b"", EXIT_USAGE),
    # options and commands
    ("profile-path", ("--profile", "../etc", "list"), b"", EXIT_USAGE),
    ("profile-slash", ("--profile", "a/b", "get", "X"), b"", EXIT_USAGE),
    ("unknown-protection", ("init", "--protection", "rot13"), b"", EXIT_USAGE),
    ("init-existing", ("init", "--protection", "keyfile"), b"", EXIT_USAGE),
    ("unknown-shell", ("env", "--shell", "tcsh"), b"", EXIT_USAGE),
    ("unknown-format", ("env", "--format", "yaml"), b"", EXIT_USAGE),
    ("bad-prefix", ("env", "--prefix", "1X_"), b"", EXIT_USAGE),
    ("prefix-and-for", ("env", "--prefix", "X_", "--for", "apptainer"), b"", EXIT_USAGE),
    ("docker-multiline", ("env", "--format", "docker", "MULTI"), b"", EXIT_USAGE),
    ("unknown-command", ("frobnicate",), b"", EXIT_USAGE),
    ("unknown-option", ("list", "--colour"), b"", EXIT_USAGE),
    ("exec-without-command", ("exec",), b"", EXIT_USAGE),
    ("exec-missing-command", ("exec", "--", "/nonexistent/credstore-test-cmd"), b"", EXIT_COMMAND_NOT_FOUND),
    ("get-missing", ("get", "NOT_STORED"), b"", EXIT_NOT_FOUND),
    ("other-profile-missing", ("--profile", "nobody", "get", "X"), b"", EXIT_NOT_FOUND),
]


@pytest.fixture
def populated(cli):
    """A keyfile store made through the Python API (fast); the case itself runs through the real command."""
    make_store(cli.store_dir, "keyfile", {**STORED, "MULTI": "two\nlines"})
    store = cli.store_dir / "profiles" / "default.store"
    return cli, store, store.read_bytes()


def assert_nothing_lost(cli, store: Path, before: bytes) -> None:
    assert store.read_bytes() == before, "the store file changed"
    got = read_values_fresh(cli.store_dir)
    assert {name: got.get(name) for name in STORED} == STORED


@pytest.mark.parametrize(("case", "argv", "stdin", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(populated, case: str, argv: tuple[str, ...], stdin: bytes, code: int) -> None:
    cli, store, before = populated
    result = cli(*argv, input=stdin)
    assert_one_line_error(result, code)
    assert result.stdout == ""
    assert_nothing_lost(cli, store, before)


def test_longest_value_an_environment_can_hold_is_accepted(populated) -> None:
    """The boundary beside `value-one-over-env-limit`: one byte less is stored and exported whole."""
    cli, _, _ = populated
    value = "y" * (MAX_ENV_STRING - len("BIG") - 1)
    assert cli("set", "BIG", input=value).returncode == 0
    assert cli("get", "BIG").stdout == value + "\n"
    assert cli("exec", "BIG", "--", "printenv", "BIG").stdout == value + "\n"


BAD_DURATIONS = ("7", "90", "-1d", "1x", "7x", "x", "d", "99999999999d", "1.5.2h", "8 h", "1d-2h")
DURATION_COMMANDS: list[tuple[tuple[str, ...], str]] = [
    (("rotate", "WANDB_API_KEY", "--grace"), "new-" + KEY),
    (("check", "--max-age"), ""),
    (("unlock", "--ttl"), "a passphrase\n"),
    (("audit", "--since"), ""),
]


@pytest.mark.parametrize(("argv", "stdin"), DURATION_COMMANDS, ids=[c[0][-1].lstrip("-") for c in DURATION_COMMANDS])
def test_malformed_durations(populated, argv: tuple[str, ...], stdin: str) -> None:
    cli, store, before = populated
    for bad in BAD_DURATIONS:
        result = cli(*argv, bad, input=stdin)
        assert_one_line_error(result, EXIT_USAGE)
        assert result.stdout == "", (argv, bad)
        assert KEY not in result.stderr
    assert_nothing_lost(cli, store, before)
    # The same options accept a well-formed duration (so the refusals above are about the text, not the option).
    if argv[0] in ("check", "audit"):
        good = {"--max-age": "90d", "--since": "1d"}[argv[-1]]
        assert cli(*argv, good).returncode == 0


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        pytest.param(*DURATION_COMMANDS[0], id="grace"),
        pytest.param(*DURATION_COMMANDS[1], id="max-age"),
        pytest.param(*DURATION_COMMANDS[2], id="ttl"),
        pytest.param(*DURATION_COMMANDS[3], id="since"),
    ],
)
def test_empty_duration(populated, argv: tuple[str, ...], stdin: str) -> None:
    cli, store, before = populated
    result = cli(*argv, "", input=stdin)
    assert_one_line_error(result, EXIT_USAGE)
    assert_nothing_lost(cli, store, before)


def test_store_directory_that_is_a_file(cli, tmp_path: Path) -> None:
    # CREDSTORE_HOME itself is a file.
    home_file = tmp_path / "home" / "not-a-dir"
    home_file.write_text("x")
    env = {"CREDSTORE_HOME": str(home_file)}
    assert_one_line_error(cli("init", "--protection", "keyfile", env=env), EXIT_IO)
    assert_one_line_error(cli("set", "--plain", "A", "b", env=env), EXIT_USAGE)  # no level can be chosen here
    assert_one_line_error(cli("get", "A", env=env), EXIT_NOT_FOUND)
    assert home_file.read_text() == "x"
    # The profiles directory is a file.
    home = tmp_path / "home" / "cs"
    home.mkdir(mode=0o700)
    (home / "profiles").write_text("x")
    env = {"CREDSTORE_HOME": str(home)}
    for args in (("get", "A"), ("init", "--protection", "keyfile"), ("list",)):
        assert_one_line_error(cli(*args, env=env), EXIT_PERMISSION)
    assert (home / "profiles").read_text() == "x"


def test_store_file_that_is_a_directory(populated) -> None:
    cli, store, before = populated
    store.rename(store.with_name("saved"))
    store.mkdir(mode=0o700)
    for args in (("get", "WANDB_API_KEY"), ("env",)):
        assert_one_line_error(cli(*args), EXIT_PERMISSION)
    assert_one_line_error(cli("set", "--plain", "WANDB_ENTITY", "x"), EXIT_PERMISSION)
    store.rmdir()
    store.with_name("saved").rename(store)
    assert_nothing_lost(cli, store, before)


@contextlib.contextmanager
def small_tmpfs(path: Path):
    path.mkdir(mode=0o700)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(path)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> None:
    """Fill the file system holding ``directory`` to the last byte."""
    for name, chunk in (("filler", 4096), ("filler-small", 1)):
        with open(directory / name, "ab", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * chunk)


@pytest.mark.skipif(os.geteuid() != 0, reason="a full disk needs a small tmpfs, which needs root")
def test_full_disk(populated, tmp_path: Path) -> None:
    cli, _, _ = populated
    with small_tmpfs(tmp_path / "fs") as fs:
        env = {"CREDSTORE_HOME": str(fs / "cs")}
        assert cli("init", "--protection", "keyfile", env=env).returncode == 0
        cli("set", "WANDB_API_KEY", input=KEY, env=env, check=True)
        store = fs / "cs" / "profiles" / "default.store"
        before = store.read_bytes()
        fill(fs)
        for args, data in ((("set", "WANDB_API_KEY"), "n" * 20000), (("set", "NEW_ONE"), "v" * 9000)):
            result = cli(*args, input=data, env=env)
            assert_one_line_error(result, EXIT_IO)
            assert "No space left" in result.stderr
        assert_one_line_error(cli("rm", "WANDB_API_KEY", env=env), EXIT_IO)
        assert store.read_bytes() == before
        assert cli("get", "WANDB_API_KEY", env=env).stdout == KEY + "\n"
        assert not [p for p in store.parent.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"
        # A new profile on the full disk: refused, and it can be created once there is room again.
        result = cli("--profile", "second", "init", "--protection", "keyfile", env=env)
        assert_one_line_error(result, EXIT_IO)
        (fs / "filler").unlink()
        assert cli("--profile", "second", "init", "--protection", "keyfile", env=env).returncode == 0
        cli("set", "WANDB_API_KEY", input="after-" + KEY, env=env, check=True)
        assert cli("get", "WANDB_API_KEY", env=env).stdout == "after-" + KEY + "\n"


def test_file_size_limit_refused_write(populated) -> None:
    """Without root: RLIMIT_FSIZE makes the write fail with EFBIG, the same path as a full disk."""
    cli, store, before = populated

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))

    proc = subprocess.run(
        [*credstore_argv(), "set", "WANDB_API_KEY"],
        input=b"z" * 5000,
        capture_output=True,
        env=cli.env,
        preexec_fn=limit,
    )
    assert proc.returncode == EXIT_IO, proc.stderr
    assert len(proc.stderr.decode().splitlines()) == 1
    assert_nothing_lost(cli, store, before)


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` made read-only: a read-only bind mount when root (root ignores modes), else chmod."""
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "--bind", "-o", "ro", str(path), str(path)])
        if done.returncode != 0:
            pytest.skip("cannot make a read-only bind mount here")
        try:
            yield EXIT_IO
        finally:
            subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o500)
        try:
            yield EXIT_PERMISSION
        finally:
            path.chmod(0o700)


def test_read_only_store(populated) -> None:
    cli, store, before = populated
    with read_only(store.parent) as code:
        for args, data in (
            (("set", "WANDB_API_KEY"), "new-" + KEY),
            (("set", "--plain", "NEW_ONE", "v"), ""),
            (("rm", "WANDB_ENTITY"), ""),
            (("--profile", "other", "init", "--protection", "keyfile"), ""),
        ):
            assert_one_line_error(cli(*args, input=data), code)
        # Reading still works on a read-only store.
        assert cli("get", "WANDB_API_KEY").stdout == KEY + "\n"
        assert "WANDB_API_KEY" in cli("env", "--shell", "bash").stdout
        assert cli("list").returncode == 0
    assert_nothing_lost(cli, store, before)
    print(f"\n[bad input] table cases: {len(CASES)}")


@pytest.mark.parametrize(
    "login_shell", ["/bin/tcsh", "/usr/bin/csh", "-tcsh", "/usr/bin/tcsh ", "/bin/bsd-csh", "tcsh6"]
)
def test_a_csh_login_shell_gets_an_error_not_posix_statements(cli, login_shell):
    """`eval "`credstore env`"` in tcsh would run `export NAME=...` lines it cannot parse: say so (exit 2) and how
    to name a shell, instead of guessing sh; --shell and the file formats still work."""
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    guessed = cli("env", env={"SHELL": login_shell})
    assert guessed.returncode == 2 and guessed.stdout == ""
    assert guessed.stderr.count("\n") == 1 and "whose syntax credstore does not write" in guessed.stderr
    assert "--shell" in guessed.stderr and "Traceback" not in guessed.stderr
    named = cli("env", "--shell", "sh", env={"SHELL": login_shell})
    assert named.returncode == 0 and "export WANDB_ENTITY='team'" in named.stdout
    as_json = cli("env", "--format", "json", env={"SHELL": login_shell})
    assert as_json.returncode == 0 and '"WANDB_ENTITY": "team"' in as_json.stdout
    locked = cli("lock", env={"SHELL": login_shell})
    assert locked.returncode == 0 and "Traceback" not in locked.stderr and 'eval "$(' not in locked.stderr
    hook = cli("hook", "install", env={"SHELL": login_shell})
    assert hook.returncode == 2 and "not one of bash, zsh, fish: name it with --shell" in hook.stderr


@pytest.mark.parametrize("argv", [("env",), ("env", "--format", "json"), ("list",), ("get", "WANDB_API_KEY")])
def test_a_closed_standard_output_is_a_usage_error_in_one_line(populated, argv: tuple[str, ...]) -> None:
    """``credstore env >&-``: Python starts with ``sys.stdout`` None; say so in one line (exit 2), not "internal
    error"."""
    cli, store, before = populated
    proc = subprocess.run(
        [*credstore_argv(), *argv],
        env={**cli.env},
        cwd=cli.home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(),
        preexec_fn=lambda: os.close(1),  # noqa: PLW1509 - the case is a closed descriptor 1
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == EXIT_USAGE, err
    assert err == "credstore: standard output is closed: nothing can be printed (open it, e.g. >/dev/null)\n"
    assert_nothing_lost(cli, store, before)
