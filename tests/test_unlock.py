"""Unlock once per login: the kernel session keyring, shells of one login, separate logins, lock, TTL, the
no-session-keyring pitfall, keyctl blocked by seccomp, the shell hook (non-interactive and on a real pty)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credstore.crypto import kernel_keyring
from credstore.crypto.session_cache import parse_ttl
from credstore.durations import format_duration
from tests.conftest import REPO
from tests.test_protection import KEY, PW, WEAK, header_of, in_session, init_passphrase, need_keyctl, shell_env

# -- sessions ---------------------------------------------------------------------------------------------------------


def test_unlock_is_seen_by_other_shells_of_the_login_and_lock_ends_it(cli):
    init_passphrase(cli)
    cli("--profile", "other", "init", "--protection", "keyfile", check=True)
    script = f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 10
printf '%s' '{KEY}' | credstore set WANDB_API_KEY || exit 11
echo "--- another shell of this login"
bash -c 'credstore env --shell bash' || exit 12
sh -c 'credstore get WANDB_API_KEY' || exit 13
echo "--- the key in the session keyring"
grep ' credstore:' /proc/keys
credstore lock || exit 14
credstore env; echo "after lock: $?"
"""
    result = in_session(cli, script, env=WEAK)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"export WANDB_API_KEY='{KEY}'" in out or f"WANDB_API_KEY={KEY}" in out
    assert out.count(KEY) == 2
    # the data key's half (the render cache, app/render_cache.py, has a key of its own: credstore:render-...)
    key_line = next(line for line in out.splitlines() if f" credstore:{header_of(cli).store_id.hex()}" in line)
    fields = key_line.split()
    # /proc/keys: id flags usage timeout perm uid gid type description
    assert fields[3] in ("7h", "8h")  # the default TTL of 8 hours
    assert fields[4] == "1f000000"  # possessor view/read/write/search/link only: nothing for user, group, other
    assert f"credstore:{header_of(cli).store_id.hex()}" in key_line
    assert "after lock: 4" in out
    assert "locked profile 'default'" in result.stderr


def test_another_login_session_does_not_see_the_unlock(cli, tmp_path):
    """Two logins of one account (alice and bob sharing it): an unlock in one is invisible to the other."""
    need_keyctl()
    init_passphrase(cli, profile="alice")
    init_passphrase(cli, "bobs passphrase", profile="bob")
    sync = tmp_path / "sync"
    sync.mkdir()
    script_a = f"""
printf '%s\\n' '{PW}' | credstore --profile alice unlock || exit 10
touch {sync}/a-unlocked
while [ ! -e {sync}/b-done ]; do sleep 0.05; done
bash -c 'credstore --profile alice env >/dev/null'; echo "A sees alice: $?"
credstore --profile bob env >/dev/null; echo "A sees bob: $?"
"""
    keyctl = shutil.which("keyctl")
    a = subprocess.Popen(
        [keyctl, "session", "-", "bash", "-c", script_a],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=shell_env(cli, WEAK),
        cwd=cli.home,
    )
    try:
        deadline = time.monotonic() + 60
        while not (sync / "a-unlocked").exists():
            assert a.poll() is None, a.stderr.read().decode()
            assert time.monotonic() < deadline, "session A did not unlock"
            time.sleep(0.05)
        # Session B, while A is still logged in and unlocked.
        b = in_session(
            cli,
            'credstore --profile alice env; echo "B sees alice: $?"; '
            "printf '%s\\n' 'bobs passphrase' | credstore --profile bob unlock 2>/dev/null; "
            'credstore --profile bob env >/dev/null; echo "B sees bob: $?"',
            env=WEAK,
        )
        assert "B sees alice: 4" in b.stdout
        assert "profile 'alice' is locked" in b.stderr
        assert "B sees bob: 0" in b.stdout
        (sync / "b-done").touch()
        out, err = a.communicate(timeout=60)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert "A sees alice: 0" in out.decode(), err.decode()
    assert "A sees bob: 4" in out.decode()


def test_unlock_in_a_shell_without_session_keyring_gives_the_shell_one(cli):
    """The pitfall: only the shared user-session keyring exists (no pam_keyinit). unlock must hand a fresh session
    keyring to the calling shell, so later commands of that shell (also from $(...)) see the unlock."""
    need_keyctl()
    if kernel_keyring.session_keyring_state() != "user-session":
        pytest.skip("this test runner already has its own session keyring; the pitfall cannot be reproduced here")
    init_passphrase(cli)
    script = f"""
printf '%s\\n' '{PW}' | credstore unlock || exit 10
out="$(credstore env)"; echo "from \\$(...): $?"
credstore env >/dev/null; echo "direct: $?"
"""
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, env=shell_env(cli, WEAK), cwd=cli.home, timeout=120
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "had no session keyring of its own" in err
    assert "from $(...): 0" in out
    assert "direct: 0" in out
    # The test runner (the shell's parent) was not touched, and a new shell of the same kind is locked again.
    assert kernel_keyring.session_keyring_state() == "user-session"
    again = subprocess.run(
        ["bash", "-c", "credstore env"], capture_output=True, env=shell_env(cli), cwd=cli.home, timeout=60
    )
    assert again.returncode == 4


def test_unlock_ttl_expires_and_malformed_ttl_is_a_usage_error(cli):
    init_passphrase(cli)
    result = in_session(
        cli,
        f"printf '%s\\n' '{PW}' | credstore unlock --ttl 2s || exit 10; grep ' credstore:' /proc/keys; "
        'sleep 3; credstore env; echo "after ttl: $?"',
        env=WEAK,
    )
    assert result.returncode == 0, result.stderr
    assert "for 2s" in result.stderr
    assert "after ttl: 4" in result.stdout
    for bad in ("5x", "", "0s", "h", "-1h", "31d", "8 h"):
        bad_result = cli("unlock", "--ttl", bad, input=PW + "\n")
        assert bad_result.returncode == 2, (bad, bad_result.stderr)


def test_parse_ttl():
    assert parse_ttl("8h") == 8 * 3600
    assert parse_ttl("90s") == 90
    assert parse_ttl("1h30m") == 5400
    assert parse_ttl("1d") == 86400
    assert format_duration(5400) == "1h30m"


def test_unlock_of_keyfile_store_needs_nothing(cli):
    cli("init", "--protection", "keyfile", check=True)
    result = cli("unlock")
    assert result.returncode == 0
    assert "needs no unlock" in result.stderr


# -- keyctl blocked (a seccomp filter, as Docker's default profile) ---------------------------------------------------

_NR = {"x86_64": (248, 250), "aarch64": (217, 219)}


def _block_keyctl() -> None:
    """preexec_fn: install a seccomp filter making add_key and keyctl fail with EPERM (what Docker does)."""
    add_key, keyctl = _NR[platform.machine()]

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    program = (SockFilter * 5)(
        SockFilter(0x20, 0, 0, 0),  # ld [nr]
        SockFilter(0x15, 2, 0, add_key),  # jeq add_key -> deny
        SockFilter(0x15, 1, 0, keyctl),  # jeq keyctl -> deny
        SockFilter(0x06, 0, 0, 0x7FFF0000),  # ret ALLOW
        SockFilter(0x06, 0, 0, 0x00050000 | errno.EPERM),  # ret ERRNO(EPERM)
    )
    prog = SockFprog(5, program)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def test_keyctl_blocked_degrades_with_a_clear_message(cli):
    if platform.machine() not in _NR:
        pytest.skip(f"seccomp test filter has no system call numbers for {platform.machine()}")
    init_passphrase(cli)
    script = f"""
printf '%s\\n' '{PW}' | credstore unlock; echo "unlock: $?"
credstore env; echo "env: $?"
credstore doctor >doctor.txt; echo "doctor: $?"
"""
    proc = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        env=shell_env(cli, WEAK),
        cwd=cli.home,
        timeout=120,
        preexec_fn=_block_keyctl,
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "unlock: 1" in out
    assert "passphrase is correct, but the unlock cannot be cached here" in err
    assert "keyctl blocked" in err
    assert "env: 4" in out
    doctor = (cli.home / "doctor.txt").read_text()
    assert "[warning] kernel keyring: unavailable: keyctl blocked" in doctor
    assert "Traceback" not in err


# -- the shell hook ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_hook_in_non_interactive_shells_prints_and_sets_nothing(cli, shell):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=KEY, check=True)
    hook = cli("hook", shell, check=True).stdout
    (cli.home / "hook").write_text(hook)
    script = 'source ~/hook; echo "[$WANDB_API_KEY]"' if shell == "fish" else '. ~/hook; echo "[${WANDB_API_KEY-}]"'
    proc = subprocess.run([shell, "-c", script], capture_output=True, env=shell_env(cli), cwd=cli.home, timeout=60)
    assert proc.stdout.decode() == "[]\n"
    assert proc.stderr.decode() == ""


class Pty:
    """A program on a real pseudo-terminal, driven like a person at the keyboard."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: the pty is its controlling terminal
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        self.transcript = ""
        self.pos = 0

    def expect(self, pattern: str, timeout: float = 60) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.transcript, self.pos)
            if match:
                self.pos = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"did not see {pattern!r}; terminal so far:\n{self.transcript[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 1))
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {pattern!r}:\n{self.transcript[-2000:]}")
                self.transcript += chunk.decode(errors="replace")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_hook_in_an_interactive_bash_offers_unlock_with_hidden_passphrase(cli):
    """A real interactive bash on a pty, started the way a login without pam_keyinit is (only the user-session
    keyring): the hook offers to unlock, the passphrase is not echoed, the variables are loaded, and later
    commands of this shell see the unlock."""
    need_keyctl()
    init_passphrase(cli)
    in_session(cli, f"printf '%s\\n' '{PW}' | credstore unlock && printf '%s' '{KEY}' | credstore set WANDB_API_KEY")
    (cli.home / ".bashrc").write_text('PS1="PROMPT> "\neval "$(credstore hook bash)"\n')
    argv = ["bash", "--noprofile", "--rcfile", str(cli.home / ".bashrc"), "-i"]
    if kernel_keyring.session_keyring_state() != "user-session":
        argv = [shutil.which("keyctl"), "session", "-", *argv]
    term = Pty(argv, shell_env(cli, {**WEAK, "TERM": "dumb"}), cli.home)
    try:
        term.expect(r"Unlock now\? \[Y/n\]")
        term.send("y\n")
        term.expect(r"Passphrase for credstore profile 'default': ")
        term.send(PW + "\n")
        term.expect(r"unlocked profile 'default'")
        term.expect(r"PROMPT> ")
        term.send('echo "VAL=[$WANDB_API_KEY]"\n')
        term.expect(re.escape(f"VAL=[{KEY}]"))
        term.send('credstore env >/dev/null; echo "RC=$?"\n')
        term.expect(r"RC=0")
        assert PW not in term.transcript  # the passphrase was never echoed
    finally:
        term.close()


def test_init_on_a_terminal_asks_twice_without_echo_and_get_prompts(cli):
    term = Pty(["credstore", "init", "--protection", "passphrase"], shell_env(cli, WEAK), cli.home)
    try:
        term.expect(r"New passphrase for credstore profile 'default': ")
        term.send(PW + "\n")
        term.expect(r"Repeat the new passphrase: ")
        term.send(PW + "\n")
        term.expect(r"protection: passphrase")
        assert PW not in term.transcript
    finally:
        term.close()
    cli("--profile", "x", "init", "--protection", "keyfile", check=True)
    # set (the value typed hidden) and get on a terminal prompt for the passphrase of a locked store
    term = Pty(["credstore", "set", "WANDB_API_KEY"], shell_env(cli, WEAK), cli.home)
    try:
        term.expect(r"WANDB_API_KEY: ")
        term.send(KEY + "\n")
        term.expect(r"Passphrase for credstore profile 'default': ")
        term.send(PW + "\n")
        term.expect(r"stored WANDB_API_KEY")
        assert KEY not in term.transcript and PW not in term.transcript
    finally:
        term.close()
    term = Pty(["credstore", "get", "WANDB_API_KEY"], shell_env(cli, WEAK), cli.home)
    try:
        term.expect(r"Passphrase for credstore profile 'default': ")
        term.send(PW + "\n")
        term.expect(re.escape(KEY))
    finally:
        term.close()


def test_init_on_a_terminal_with_differing_passphrases_creates_nothing(cli):
    term = Pty(["credstore", "init", "--protection", "passphrase"], shell_env(cli, WEAK), cli.home)
    try:
        for _ in range(3):  # a mismatch is asked again, three rounds in all
            term.expect(r"New passphrase")
            term.send(PW + "\n")
            term.expect(r"Repeat the new passphrase: ")
            term.send("something else\n")
        term.expect(r"differ; nothing was changed")
    finally:
        term.close()
    assert not (cli.store_dir / "profiles" / "default.store").exists()


def test_first_set_on_a_terminal_without_keyring_defaults_to_passphrase(cli):
    term = Pty(["credstore", "set", "WANDB_API_KEY"], shell_env(cli, WEAK), cli.home)
    try:
        term.expect(r"WANDB_API_KEY: ")
        term.send(KEY + "\n")
        term.expect(r"New passphrase for credstore profile 'default': ")
        term.send(PW + "\n")
        term.expect(r"Repeat the new passphrase: ")
        term.send(PW + "\n")
        term.expect(r"protection: passphrase; no working OS keyring was found")
        term.expect(r"stored WANDB_API_KEY")
    finally:
        term.close()
    assert header_of(cli).kek_kind == "passphrase"


def test_unlock_errors_name_the_profile(cli):
    result = cli("--profile", "nobody", "unlock", input="x\n")
    assert result.returncode == 3
    assert result.stdout == ""
    assert "no credstore profile 'nobody'" in result.stderr


def test_hook_in_an_interactive_fish_login_offers_unlock(cli):
    """fish reads the hook from a pipe (`credstore hook fish | source`): the question and the passphrase come from
    /dev/tty. The login has a session keyring (as pam_keyinit gives one): fish is multi-threaded and cannot be handed
    a new one."""
    keyctl = need_keyctl()
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed")
    init_passphrase(cli)
    in_session(cli, f"printf '%s\\n' '{PW}' | credstore unlock && printf '%s' '{KEY}' | credstore set WANDB_API_KEY")
    config = cli.home / ".config" / "fish"
    config.mkdir(parents=True)
    (config / "config.fish").write_text("credstore hook fish | source\nfunction fish_prompt; echo -n 'PROMPT> '; end\n")
    env = shell_env(cli, {**WEAK, "TERM": "dumb", "XDG_CONFIG_HOME": str(cli.home / ".config")})
    term = Pty([keyctl, "session", "-", "fish", "-i"], env, cli.home)
    try:
        term.expect(r"Unlock now\? \[Y/n\]")
        term.send("y\n")
        term.expect(r"Passphrase for credstore profile 'default': ")
        term.send(PW + "\n")
        term.expect(r"unlocked profile 'default'")
        term.expect(r"PROMPT> ")
        term.send('echo "VAL=[$WANDB_API_KEY]"; credstore env >/dev/null; echo RC=$status\n')
        term.expect(re.escape(f"VAL=[{KEY}]"))
        term.expect(r"RC=0")
        assert PW not in term.transcript
    finally:
        term.close()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_hook_of_an_install_that_is_gone_says_so_and_doctor_names_the_fix(cli, shell):
    """credstore installed again elsewhere (another method, another venv): the hook file still names the old
    interpreter. New shells then say how to follow the new install (not "could not load credentials (exit 127)"),
    and doctor names the fix; `credstore hook install` rewrites it and both go quiet."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_ENTITY", "team", check=True)
    cli("hook", "install", "--shell", shell, check=True)
    hook_file = cli.home / ".config" / "credstore" / f"hook.{shell}"
    probe = str(REPO / "credstore" / "__init__.py")
    text = hook_file.read_text()
    assert probe in text
    hook_file.write_text(text.replace(probe, "/opt/gone/lib/python3/site-packages/credstore/__init__.py"))
    interactive = [shell, "-i", "-c", "echo loaded=${WANDB_ENTITY-none}"]
    if shell == "fish":
        interactive = [shell, "-i", "-c", "echo loaded=$WANDB_ENTITY"]

    def new_shell() -> subprocess.CompletedProcess[str]:
        env = shell_env(cli, {"SHELL": shutil.which(shell) or shell})
        env.pop("WANDB_ENTITY", None)
        return subprocess.run(interactive, capture_output=True, text=True, env=env, cwd=cli.home, timeout=60)

    moved = new_shell()
    assert "the shell hook names an install that is gone" in moved.stderr, moved.stderr
    assert f"credstore hook install --shell {shell}" in moved.stderr and "exit 127" not in moved.stderr
    assert "loaded=team" not in moved.stdout
    # the package still there but its interpreter gone (a venv whose base Python was removed): the same hint
    program = os.path.abspath(sys.executable)  # what the tests run credstore with (tests/conftest.py)
    assert f"'{program}'" in text
    hook_file.write_text(text.replace(f"'{program}'", "'/opt/gone/venv/bin/python3'"))
    assert "the shell hook names an install that is gone" in new_shell().stderr
    doctor = cli("doctor")
    assert f"[warning] hook: {hook_file} was written by another install" in doctor.stdout
    assert f"fix: credstore hook install --shell {shell}" in doctor.stdout

    # the same install under another name of its interpreter (python3 -m ... vs python -m ...) is no finding
    folder = os.path.dirname(program)
    names = ("python", "python3", f"python3.{sys.version_info[1]}")
    sibling = next(
        (
            p
            for p in (os.path.join(folder, n) for n in names)
            if p != program and os.path.realpath(p) == os.path.realpath(program)
        ),
        program,
    )
    hook_file.write_text(text.replace(f"'{program}'", f"'{sibling}'"))
    assert "hook:" not in cli("doctor").stdout
    cli("hook", "install", "--shell", shell, check=True)
    again = new_shell()
    assert "loaded=team" in again.stdout and "credstore:" not in again.stderr, again.stderr
    assert "hook:" not in cli("doctor").stdout
