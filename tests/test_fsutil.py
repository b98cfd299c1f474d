"""fsutil.atomic_replace / write_new_private: mode, owner, and no temporary file left behind on failure."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from credstore.errors import PermissionProblem
from credstore.store import fsutil

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
