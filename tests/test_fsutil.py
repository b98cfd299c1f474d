"""fsutil.atomic_replace / write_new_private: mode, owner, and no temporary file left behind on failure."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from credstore import fsutil
from credstore.errors import PermissionProblem

NOBODY = 65534


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_replaces_with_mode_0600_by_default(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    target.chmod(0o644)
    old_umask = os.umask(0o277)  # a umask that would leave a fresh file 0400
    try:
        fsutil.atomic_replace(target, b"new")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _entries(tmp_path) == ["f"]


def test_mode_and_owner_are_given_to_the_new_file(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another owner needs root")
    target = tmp_path / "f"
    fsutil.atomic_replace(target, b"data", mode=0o640, owner=(NOBODY, NOBODY))
    st = target.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, NOBODY, NOBODY)
    assert _entries(tmp_path) == ["f"]


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory owned by nobody that nobody can reach (pytest's tmp_path sits below a 0700 directory)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user (nobody) for the test needs root")
    base = Path(tempfile.mkdtemp(prefix="credstore-fsutil-"))
    try:
        base.chmod(0o755)
        work = base / "w"
        work.mkdir()
        os.chown(work, NOBODY, NOBODY)
        yield work
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_refused_owner_change_raises_the_callers_message_and_leaves_nothing(nobodys_dir: Path) -> None:
    """As an unprivileged user (nobody), giving a file to group root is refused."""
    work = nobodys_dir
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, try, report through the pipe
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                fsutil.atomic_replace(work / "f", b"data", mode=0o640, owner=(-1, 0), chown_denied=lambda: "no group")
                report = "no error"
            except PermissionProblem as exc:
                report = f"PermissionProblem: {exc}"
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                report = f"{type(exc).__name__}: {exc}"
            os.write(write_end, report.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    report = os.read(read_end, 4096).decode()
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == "PermissionProblem: no group"
    assert _entries(work) == []


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fsutil.atomic_replace(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _entries(tmp_path) == ["f"]


def test_write_new_private_refuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "k"
    fsutil.write_new_private(target, b"one")
    with pytest.raises(Exception, match="cannot create"):  # noqa: PT011 - StoreIOError or PermissionProblem
        fsutil.write_new_private(target, b"two")
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])  # noqa: S607
    child.wait()
    return child.pid


def test_remove_stale_temps_takes_only_dead_or_old_temps_of_that_file(tmp_path: Path) -> None:
    target = tmp_path / "default.store"
    target.write_bytes(b"store")
    dead, live = _dead_pid(), os.getpid()
    names = {
        "dead": f".default.store.{dead}.0a1b2c3d.tmp",
        "live": f".default.store.{live}.0a1b2c3d.tmp",
        "live-but-old": f".default.store.{live}.deadbeef.tmp",
        "other-profile": f".other.store.{dead}.0a1b2c3d.tmp",
        "longer-profile": f".default.store.1.store.{dead}.0a1b2c3d.tmp",
        "not-hex": f".default.store.{dead}.0a1b2c3g.tmp",
        "no-dot": f"default.store.{dead}.0a1b2c3d.tmp",
        "suffix": f".default.store.{dead}.0a1b2c3d.tmp.bak",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"ciphertext")
    old = time.time() - fsutil.STALE_TEMP_AGE - 60
    os.utime(tmp_path / names["live-but-old"], (old, old))
    removed = fsutil.remove_stale_temps(target)
    assert sorted(removed) == sorted([names["dead"], names["live-but-old"]])
    left = set(_entries(tmp_path))
    assert left == {"default.store"} | {n for k, n in names.items() if k not in ("dead", "live-but-old")}
    assert target.read_bytes() == b"store"


def test_remove_stale_temps_never_fails(tmp_path: Path) -> None:
    assert fsutil.remove_stale_temps(tmp_path / "missing-dir" / "x.store") == []
