"""File-system primitives: race-free private files, atomic replace, the write lock, StrictModes-style checks."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from credstore.errors import BusyError, NotFoundError, PermissionProblem, StoreIOError

_OPEN_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW
_NO_LINKS = "credstore follows no symlinks in its store: replace the link with the real file or directory"


def _not_yours(path: Path | str, owner: int, uid: int) -> PermissionProblem:
    return PermissionProblem(
        f"{path} is owned by uid {owner}, not by you (uid {uid}); if it really is yours, fix it with: "
        f"sudo chown -R {uid} {path} (otherwise remove it, or set CREDSTORE_HOME to a directory of your own)"
    )


def io_error(action: str, path: Path | str, exc: OSError) -> StoreIOError | PermissionProblem:
    """Turn an OSError into a one-line credstore error (no traceback, no data)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno == errno.ELOOP:
        return PermissionProblem(f"cannot {action} {path}: it is a symlink; {_NO_LINKS}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionProblem(
            f"cannot {action} {path}: {reason} (not your store? set CREDSTORE_HOME to a directory of your own)"
        )
    return StoreIOError(f"cannot {action} {path}: {reason}")


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700, then check it is safe to keep secrets in."""
    old_umask = os.umask(0o077)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise PermissionProblem(f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise io_error("create directory", path, exc) from None
    finally:
        os.umask(old_umask)
    check_dir(path)


def check_dir(path: Path) -> None:
    """StrictModes for the store directory and its parents.

    The directory itself: a real directory (not a symlink), owned by us, no group/other access at all. Each parent
    up to the home directory (or the file-system root): owned by us or root, and not writable by group or others,
    unless it is a root-owned sticky directory such as /tmp.
    """
    uid = os.geteuid()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFoundError(f"store directory {path} does not exist") from None
    except OSError as exc:
        raise io_error("inspect", path, exc) from None
    if stat.S_ISLNK(st.st_mode):
        raise PermissionProblem(f"{path} is a symlink; {_NO_LINKS}")
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionProblem(f"{path} is not a directory; move it away (mv {path} {path}.old) and try again")
    if st.st_uid != uid:
        raise _not_yours(path, st.st_uid, uid)
    if st.st_mode & 0o077:
        raise PermissionProblem(f"{path} is accessible by other users; fix it with: chmod 700 {path}")
    for parent in parents_checked(path):
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise io_error("inspect", parent, exc) from None
        writable_by_others = pst.st_mode & 0o022
        sticky_root = pst.st_uid == 0 and pst.st_mode & stat.S_ISVTX
        if pst.st_uid not in (uid, 0):
            raise PermissionProblem(
                f"{parent} is owned by uid {pst.st_uid}; the store must not sit below it: "
                "set CREDSTORE_HOME to a directory of your own"
            )
        if writable_by_others and not sticky_root:
            raise PermissionProblem(f"{parent} is writable by group or others; fix it with: chmod go-w {parent}")


def parents_checked(path: Path) -> list[Path]:
    """The parents of the store directory ``path`` that ``check_dir`` checks: up to the home directory, or the
    file-system root (the render cache watches them too)."""
    home = Path(os.path.expanduser("~")).resolve()
    parent = path.resolve().parent
    found = [parent]
    while parent != home and parent.parent != parent:
        parent = parent.parent
        found.append(parent)
    return found


def check_private_fd(fd: int, path: Path, *, secret_file: bool) -> os.stat_result:
    """Checks on an opened file descriptor (so the file checked is the file read)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise PermissionProblem(f"{path} is not a regular file; move it away (mv {path} {path}.old)")
    if st.st_uid != os.geteuid():
        raise _not_yours(path, st.st_uid, os.geteuid())
    mask = 0o077 if secret_file else 0o022
    if st.st_mode & mask:
        raise PermissionProblem(f"{path} is accessible by other users; fix it with: chmod 600 {path}")
    return st


def check_file(path: Path, *, secret_file: bool) -> None:
    """The checks of ``check_private_fd`` on a file that is not read now (for ``credstore doctor``)."""
    fd = _open_existing(path, os.O_NONBLOCK, "open", "fix it by replacing it with the file it points to")
    try:
        check_private_fd(fd, path, secret_file=secret_file)
    finally:
        os.close(fd)


def read_private(path: Path, *, secret_file: bool = False) -> bytes:
    """Read a whole file that must be ours and private. Symlinks are refused."""
    fd = _open_existing(path, 0, "read", _NO_LINKS)
    try:
        check_private_fd(fd, path, secret_file=secret_file)
        return read_all(fd)
    finally:
        os.close(fd)


def _open_existing(path: Path, flags: int, action: str, if_link: str) -> int:
    """Open ``path`` read-only without following a link: a missing file is NotFoundError, a link PermissionProblem."""
    try:
        return os.open(path, os.O_RDONLY | _OPEN_FLAGS | flags)
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PermissionProblem(f"{path} is a symlink; {if_link}") from None
        raise io_error(action, path, exc) from None


def read_all(fd: int) -> bytes:
    """Everything left to read from ``fd``."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def write_new_private(path: Path, data: bytes) -> None:
    """Create ``path`` exclusively with mode 0600 (fails if it exists), write and fsync it."""
    _write_new(path, data, 0o600, None, None)


def _write_new(
    path: Path, data: bytes, mode: int, owner: tuple[int, int] | None, chown_denied: Callable[[], str] | None
) -> None:
    """Create ``path`` exclusively (never through a link) as 0600, give it ``owner`` and ``mode``, write, fsync.

    On any failure (an interrupt too) the half-written file is removed.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
    except OSError as exc:
        raise io_error("create", path, exc) from None
    try:
        if owner is not None:
            try:
                os.fchown(fd, *owner)
            except PermissionError:
                if chown_denied is None:
                    raise
                raise PermissionProblem(chown_denied()) from None
        os.fchmod(fd, mode)
        _write_all(fd, data, path)
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        _unlink_quietly(path)
        if isinstance(exc, OSError):
            raise io_error("write", path, exc) from None
        raise
    os.close(fd)


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>.<8 hex digits>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


STALE_TEMP_AGE = 600.0


def remove_stale_temps(path: Path, *, max_age: float = STALE_TEMP_AGE) -> list[str]:
    """Remove temporary files ``atomic_replace`` left beside ``path`` when its writer died (a crash mid-save).

    Only names of exactly ``temp_path(path)``'s form are touched, and only when the process that made one is gone
    or the file is older than ``max_age`` seconds. Call it under the lock that serialises writers of ``path``.
    Never fails: what cannot be inspected or removed stays. Returns the names removed.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.([1-9][0-9]{{0,9}})\.[0-9a-f]{{8}}\.tmp\Z")
    removed = []
    now = time.time()
    with suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            match = pattern.match(entry.name)
            if match is None:
                continue
            with suppress(OSError):
                old = now - entry.stat(follow_symlinks=False).st_mtime > max_age
                if old or not _alive(int(match.group(1))):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def atomic_replace(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o600,
    owner: tuple[int, int] | None = None,
    chown_denied: Callable[[], str] | None = None,
) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync, rename over ``path``, fsync the directory.

    A reader sees the old file or the new one, never a mix; a crash at any point leaves one of the two. The new file
    gets ``mode`` and ``owner`` (uid, gid; -1 keeps one) before it holds any data; if the kernel refuses the owner
    and ``chown_denied`` is given, the message it returns is raised as a PermissionProblem.
    """
    tmp = temp_path(path)
    _write_new(tmp, data, mode, owner, chown_denied)
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise io_error("replace", path, exc) from None
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _unlink_quietly(path: Path) -> None:
    with suppress(OSError):
        os.unlink(path)


@contextmanager
def exclusive_lock(lock_path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on a sidecar lock file; give up with ``BusyError`` after ``timeout`` seconds."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
    except OSError as exc:
        raise io_error("open lock file", lock_path, exc) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another credstore process has held {lock_path} for over {timeout:g} s; try again"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock
