"""Finding 5: no key or value in a core dump. Real `credstore env` / `get` / `list` processes, killed with SIGSEGV or
SIGABRT while they block writing to a full pipe, with `ulimit -c unlimited` and a core_pattern that writes a file
(set for the test if the machine pipes cores elsewhere, then restored); and, as another Unix user, /proc/PID owned by
root and unreadable by the user's other processes (the kernel's sign of a non-dumpable process)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import credstore_argv

BIG = "v" * 100_000  # more than a pipe holds (64 KiB): the writer blocks
CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")


def _unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _wait_blocked_on_pipe(pid: int, timeout: float = 60) -> None:
    """Until the process sleeps in pipe_write (root can read /proc/PID/wchan of any process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/wchan").read_text().strip().endswith("pipe_write"):
                return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never blocked on its stdout pipe")


@contextlib.contextmanager
def core_files_in_cwd():
    """core_pattern 'core' (a file named core in the crashing process's directory) for the duration."""
    if os.geteuid() != 0:
        pytest.skip("setting kernel.core_pattern needs root")
    old = CORE_PATTERN.read_text()
    changed = old.strip() != "core"
    try:
        if changed:
            try:
                CORE_PATTERN.write_text("core\n")
            except OSError as exc:
                pytest.skip(f"cannot set kernel.core_pattern here ({exc.strerror}); see the /proc ownership test")
        yield
    finally:
        if changed:
            CORE_PATTERN.write_text(old)


def _cores(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name == "core" or p.name.startswith("core.")]


@pytest.fixture
def store_with_big_value(cli):
    cli("init", "--protection", "keyfile", check=True)
    cli("set", "WANDB_API_KEY", input=BIG, check=True)
    return cli


def _crash_while_blocked(cli, args: list[str], sig: int, cwd: Path) -> int:
    proc = subprocess.Popen(
        [*credstore_argv(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=cli.env,
        cwd=cwd,
        preexec_fn=_unlimited_core,
    )
    try:
        _wait_blocked_on_pipe(proc.pid)
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return proc.returncode


@pytest.mark.parametrize(
    ("args", "sig"),
    [
        (["env", "--shell", "bash"], signal.SIGSEGV),
        (["get", "WANDB_API_KEY"], signal.SIGABRT),
        (["env", "--format", "json"], signal.SIGSEGV),
    ],
)
def test_no_core_dump_with_values(store_with_big_value, tmp_path: Path, args: list[str], sig: int) -> None:
    cli = store_with_big_value
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    with core_files_in_cwd():
        # The control: this setup does write a core for an ordinary Python process ...
        control = subprocess.run(
            [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
            cwd=crash_dir,
            preexec_fn=_unlimited_core,
        )
        assert control.returncode == -signal.SIGSEGV
        if not _cores(crash_dir):
            pytest.skip("this kernel/sandbox writes no core file even for a plain crash; see the /proc test")
        for core in _cores(crash_dir):
            core.unlink()
        # ... and none for credstore holding the value.
        returncode = _crash_while_blocked(cli, args, sig, crash_dir)
    assert returncode == -sig
    cores = _cores(crash_dir)
    leaked = [c.name for c in cores if BIG[:1000].encode() in c.read_bytes()]
    assert cores == [], f"core dump written ({[c.name for c in cores]}; holding the value: {leaked})"


def test_exec_command_keeps_the_users_core_limit(store_with_big_value) -> None:
    """harden() lowers only this process's soft limit; the command `exec` runs gets the limit the user had."""
    cli = store_with_big_value
    result = subprocess.run(
        [*credstore_argv(), "exec", "--", "sh", "-c", 'ulimit -c; test -n "$WANDB_API_KEY" && echo has-value'],
        capture_output=True,
        text=True,
        env=cli.env,
        cwd=cli.home,
        preexec_fn=_unlimited_core,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["unlimited", "has-value"]


def test_process_is_not_dumpable_as_another_user(unix_users, user_python) -> None:
    """Without root: /proc/PID/{environ,mem,status} of a non-dumpable process belong to root, so the user's other
    processes cannot read its memory or environment (nor attach a debugger); a dumpable one's belong to the user."""
    alice = unix_users.create("csh")
    env = {**user_python.env, "CREDSTORE_HOME": str(alice.home / ".cs")}
    init = unix_users.run_as(alice, user_python.argv("-m", "credstore", "init", "--protection", "keyfile"), env=env)
    assert init.returncode == 0, init.stderr
    setv = unix_users.run_as(alice, user_python.argv("-m", "credstore", "set", "WANDB_API_KEY"), env=env, input=BIG)
    assert setv.returncode == 0, setv.stderr
    full_env = {**alice.base_env(), **env}
    owners = {}
    for label, argv in (
        ("credstore env", user_python.argv("-m", "credstore", "env")),
        ("plain python", user_python.argv("-c", "import sys; sys.stdout.write('x' * 300000)")),
    ):
        proc = subprocess.Popen(
            ["runuser", "-u", alice.name, "-m", "--", *argv],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=alice.home,
        )
        try:
            deadline = time.monotonic() + 60
            pid = None
            while pid is None and time.monotonic() < deadline:  # runuser's child, blocked on the pipe
                for entry in Path("/proc").iterdir():
                    if entry.name.isdigit():
                        with contextlib.suppress(OSError):
                            status = (entry / "status").read_text()
                            mine = f"PPid:\t{proc.pid}\n" in status or int(entry.name) == proc.pid
                            if mine and (entry / "wchan").read_text().strip().endswith("pipe_write"):
                                pid = int(entry.name)
                time.sleep(0.02)
            assert pid is not None, f"{label} never blocked on its pipe"
            owners[label] = [os.stat(f"/proc/{pid}/{name}").st_uid for name in ("environ", "mem", "status")]
            peek = unix_users.run_as(alice, ["head", "-c", "1", f"/proc/{pid}/environ"])
            owners[label].append(peek.returncode == 0)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    # non-dumpable: /proc/PID/* belong to root and alice's own other processes cannot read them (newer kernels keep
    # the /proc/PID directory itself with the user)
    assert owners == {"credstore env": [0, 0, 0, False], "plain python": [alice.uid, alice.uid, alice.uid, True]}
