"""Team service accounts: one encrypted store per service, shared with one Unix group.

Layout (``CREDSTORE_SHARED_DIR``, default ``/etc/credstore``)::

    <shared>/                      owned by root (or the admin), 0755, not writable by group or others
    <shared>/audit.log             changes to service accounts, owned by the admin, 0600
    <shared>/<NAME>/               owned by the admin, group GROUP, 2750 (members may enter, nobody else)
    <shared>/<NAME>/service.store  the encrypted store (format v1, kind "group-keyfile"), 0640 admin:GROUP
    <shared>/<NAME>/service.key    the 32-byte key-encryption key, 0640 admin:GROUP
    <shared>/<NAME>/service.lock   the writers' lock, 0600 admin (members only read, and readers never lock)

Trust model: every member of GROUP can read the key file and therefore decrypt the service's values; that is the
point of a shared service key. Non-members cannot enter the service directory. The values are still encrypted at
rest, so a copy of the store file alone (a backup that skips key files, a leaked file) reveals nothing; a copy of
the whole directory does. Root can read everything, as with any file on the machine. Only the admin (the owner)
writes: the directory and files are never group-writable, so one member cannot plant a value for the others.

Permission checks mirror the personal store's, adapted: group *read* is allowed on a service's files (it must be),
but they must never be world-accessible or group-writable, must be owned by the admin (the owner of the shared
directory) or root, and must carry the service directory's group.
"""

from __future__ import annotations

import errno
import grp
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from credstore import fsutil
from credstore.catalog import ATTRIBUTION_VARIABLES
from credstore.crypto import envelope
from credstore.errors import CorruptStoreError, NotFoundError, PermissionProblem, RollbackError, UsageError
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.generations import GenerationWatch
from credstore.store.payload import check_store_name, decode_payload, encode_payload

T = TypeVar("T")

DEFAULT_SHARED_DIR = "/etc/credstore"
KIND = "group-keyfile"
KEK_LEN = 32
STORE_FILE = "service.store"
KEY_FILE = "service.key"
LOCK_FILE = "service.lock"
_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW


def check_service_name(name: str) -> str:
    return check_store_name(name, "service account")


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def in_group(gid: int) -> bool:
    return gid == os.getegid() or gid in os.getgroups()


def drop_expired_previous(snapshot: Snapshot, now: float) -> list[str]:
    """Forget previous values whose grace period is over (done on every write). Returns the names touched."""
    dropped = []
    for name, entry in list(snapshot.entries.items()):
        if entry.previous is not None and (entry.previous_expires is None or entry.previous_expires <= now):
            snapshot.entries[name] = entry._replace(previous=None, previous_expires=None)
            dropped.append(name)
    return dropped


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    group: str
    gid: int
    owner: str
    member: bool


class SharedRoot:
    """The shared directory: who the admin is, and the checks every service path goes through."""

    def __init__(self, path: Path, *, explicit: bool = False) -> None:
        self.path = path
        # With the default /etc/credstore only root (or you) may own it; a directory named explicitly with
        # CREDSTORE_SHARED_DIR may belong to another admin, whom the person chose to trust by naming it.
        self.explicit = explicit

    def check(self) -> os.stat_result:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            raise NotFoundError(
                f"no shared service accounts here: {self.path} does not exist (an admin creates one with "
                "`credstore service add NAME --group GROUP`)"
            ) from None
        except OSError as exc:
            raise fsutil.io_error("inspect", self.path, exc) from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise PermissionProblem(f"{self.path} is not a real directory; refusing to use it for service accounts")
        if st.st_uid not in (0, os.geteuid()) and not self.explicit:
            raise PermissionProblem(f"{self.path} is owned by {user_name(st.st_uid)}, not root; refusing to trust it")
        if st.st_mode & 0o022:
            raise PermissionProblem(f"{self.path} is writable by group or others; fix it with: chmod go-w {self.path}")
        _check_parents(self.path, {0, os.geteuid(), st.st_uid})
        return st

    @property
    def admin_uid(self) -> int:
        return self.check().st_uid

    def ensure(self) -> os.stat_result:
        """Create the shared directory (0755) if missing, then check it."""
        if not self.path.exists():
            old = os.umask(0o022)
            try:
                self.path.mkdir(mode=0o755, parents=True)
            except FileExistsError:
                pass
            except OSError as exc:
                raise fsutil.io_error("create directory", self.path, exc) from None
            finally:
                os.umask(old)
        return self.check()

    def services(self) -> list[ServiceInfo]:
        if not self.path.exists():
            return []
        self.check()
        out = []
        for child in sorted(self.path.iterdir()):
            try:
                st = os.lstat(child)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                continue
            try:
                check_service_name(child.name)
            except UsageError:
                continue
            out.append(
                ServiceInfo(child.name, group_name(st.st_gid), st.st_gid, user_name(st.st_uid), in_group(st.st_gid))
            )
        return out


def _check_parents(path: Path, trusted: set[int]) -> None:
    parent = path.resolve().parent
    while True:
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise fsutil.io_error("inspect", parent, exc) from None
        sticky_root = pst.st_uid == 0 and pst.st_mode & stat.S_ISVTX
        if pst.st_uid not in trusted:
            raise PermissionProblem(f"{parent} is owned by uid {pst.st_uid}; service accounts must not sit below it")
        if pst.st_mode & 0o022 and not sticky_root:
            raise PermissionProblem(f"{parent} is writable by group or others; fix it with: chmod go-w {parent}")
        if parent.parent == parent:
            break
        parent = parent.parent


class ServiceStore(Backend):
    """One service account's store. Members read it; the admin (owner of the shared directory) writes it."""

    def __init__(
        self,
        root: SharedRoot,
        name: str,
        *,
        state_dir: Path | None = None,
        lock_timeout: float = 10.0,
    ) -> None:
        self.root = root
        self.name = check_service_name(name)
        self.dir = root.path / name
        self.path = self.dir / STORE_FILE
        self.key_path = self.dir / KEY_FILE
        self.lock_path = self.dir / LOCK_FILE
        self.state_dir = state_dir
        self.lock_timeout = lock_timeout
        self.source = f"service:{name}"

    def __repr__(self) -> str:
        return f"ServiceStore(path={str(self.path)!r})"

    # -- checks ----------------------------------------------------------------------------------------------

    def _check_dir(self) -> tuple[os.stat_result, int]:
        """Check the shared root and this service's directory; return (dir stat, admin uid)."""
        root_st = self.root.check()
        try:
            st = os.lstat(self.dir)
        except FileNotFoundError:
            raise NotFoundError(f"no service account '{self.name}' in {self.root.path}") from None
        except OSError as exc:
            raise fsutil.io_error("inspect", self.dir, exc) from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise PermissionProblem(f"{self.dir} is not a real directory; refusing to use it")
        if st.st_uid not in (0, root_st.st_uid):
            raise PermissionProblem(
                f"{self.dir} is owned by {user_name(st.st_uid)}, not by the admin who owns {self.root.path}"
            )
        if st.st_mode & 0o007:
            raise PermissionProblem(f"{self.dir} is accessible by everyone; fix it with: chmod o-rwx {self.dir}")
        if st.st_mode & 0o020:
            raise PermissionProblem(f"{self.dir} is writable by its group; fix it with: chmod g-w {self.dir}")
        return st, root_st.st_uid

    def _denied(self, dir_st: os.stat_result) -> PermissionProblem:
        group = group_name(dir_st.st_gid)
        me = user_name(os.geteuid())
        if not in_group(dir_st.st_gid):
            return PermissionProblem(
                f"service account '{self.name}' is shared with group '{group}' and you ({me}) are not a member; "
                f"ask an admin to run: usermod -aG {group} {me} (then log in again)"
            )
        return PermissionProblem(
            f"cannot read service account '{self.name}' although you are in group '{group}': if you joined the group "
            f"after logging in, log in again (or run: newgrp {group}); else ask the admin to check {self.dir}"
        )

    def _read_file(self, path: Path, dir_st: os.stat_result, admin_uid: int) -> bytes:
        try:
            fd = os.open(path, os.O_RDONLY | _FLAGS)
        except FileNotFoundError:
            if path == self.path:
                raise NotFoundError(f"service account '{self.name}' has no store yet ({path} is missing)") from None
            raise CorruptStoreError(f"the key file of service account '{self.name}' is missing ({path})") from None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise self._denied(dir_st) from None
            if exc.errno == errno.ELOOP:
                raise PermissionProblem(f"{path} is a symlink; credstore reads only regular files") from None
            raise fsutil.io_error("read", path, exc) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PermissionProblem(f"{path} is not a regular file")
            if st.st_uid not in (0, admin_uid):
                raise PermissionProblem(f"{path} is owned by {user_name(st.st_uid)}, not by the admin")
            if st.st_mode & 0o027:
                raise PermissionProblem(
                    f"{path} is writable by its group or accessible by everyone; fix it with: chmod 640 {path}"
                )
            if st.st_gid != dir_st.st_gid:
                raise PermissionProblem(
                    f"{path} belongs to group '{group_name(st.st_gid)}', not to the service's group "
                    f"'{group_name(dir_st.st_gid)}'"
                )
            return fsutil.read_all(fd)
        finally:
            os.close(fd)

    def info(self) -> ServiceInfo:
        st, _ = self._check_dir()
        return ServiceInfo(self.name, group_name(st.st_gid), st.st_gid, user_name(st.st_uid), in_group(st.st_gid))

    # -- reading ---------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.dir.is_dir()

    def read(self) -> Snapshot:
        dir_st, admin_uid = self._check_dir()
        return self._read(dir_st, admin_uid)[1]

    def _read(self, dir_st: os.stat_result, admin_uid: int) -> tuple[tuple[envelope.Header, bytes], Snapshot]:
        data = self._read_file(self.path, dir_st, admin_uid)
        header, ad, ciphertext = envelope.parse(data)
        if header.kek_kind != KIND or header.kek_params:
            raise CorruptStoreError(f"{self.path} is not a service account store (protection '{header.kek_kind}')")
        self._check_generation(header)
        kek = self._read_file(self.key_path, dir_st, admin_uid)
        if len(kek) != KEK_LEN:
            raise CorruptStoreError(f"key file {self.key_path} is malformed")
        dek = envelope.unwrap_dek(header, kek)
        snapshot = decode_payload(envelope.open_payload(header, ad, ciphertext, dek), header.generation)
        snapshot.entries = without_attribution(snapshot.entries)
        return (header, dek), snapshot

    # -- rollback detection (per reader, in the reader's own state directory) ----------------------------------

    def _check_generation(self, header: envelope.Header) -> None:
        watch = GenerationWatch(self.state_dir, header.store_id, unreadable_is_unseen=True)
        watch.check(header.generation, self._rollback_error)

    def _rollback_error(self, generation: int, seen: int) -> RollbackError:
        return RollbackError(
            f"service account '{self.name}' is at generation {generation} but generation {seen} was seen "
            "before: an older copy was restored; tell the admin"
        )

    # -- writing (admin only) --------------------------------------------------------------------------------

    def _require_admin(self, admin_uid: int) -> None:
        if os.geteuid() not in (0, admin_uid):
            raise PermissionProblem(
                f"only the admin ({user_name(admin_uid)}, owner of {self.root.path}) or root can change service "
                f"account '{self.name}'"
            )

    def _write_group_file(self, path: Path, data: bytes, gid: int) -> None:
        """Replace ``path`` atomically with ``data`` in a file of mode 0640, group ``gid``."""
        fsutil.atomic_replace(
            path,
            data,
            mode=0o640,
            owner=(-1, gid),
            chown_denied=lambda: (
                f"cannot give {path} to group '{group_name(gid)}': you must be root or a member of that group"
            ),
        )

    def create(self, group: str) -> None:
        """Make the service directory and an empty store readable by ``group``. Fails if it exists."""
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise NotFoundError(f"no Unix group '{group}' (create it first: groupadd {group})") from None
        root_st = self.root.ensure()
        self._require_admin(root_st.st_uid)
        old = os.umask(0o077)
        try:
            os.mkdir(self.dir, 0o700)
        except FileExistsError:
            raise UsageError(f"service account '{self.name}' already exists in {self.root.path}") from None
        except OSError as exc:
            raise fsutil.io_error("create directory", self.dir, exc) from None
        finally:
            os.umask(old)
        try:
            try:
                os.chown(self.dir, -1, gid)
            except PermissionError:
                raise PermissionProblem(
                    f"cannot give {self.dir} to group '{group}': you must be root or a member of that group"
                ) from None
            os.chmod(self.dir, 0o2750)  # noqa: S103 - group members must enter; others not
            kek = os.urandom(KEK_LEN)
            header, dek = envelope.new_header(kek, KIND, b"")
            self._write_group_file(self.key_path, kek, gid)
            with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
                self._write_group_file(self.path, envelope.seal(header, dek, encode_payload(Snapshot())), gid)
        except BaseException:
            self._remove_files()
            raise

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        dir_st, admin_uid = self._check_dir()
        self._require_admin(admin_uid)
        with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
            (header, dek), snapshot = self._read(dir_st, admin_uid)
            result = change(snapshot)
            drop_expired_previous(snapshot, time.time())
            snapshot.entries = without_attribution(snapshot.entries)
            new_header = header._replace(generation=header.generation + 1)
            self._write_group_file(self.path, envelope.seal(new_header, dek, encode_payload(snapshot)), dir_st.st_gid)
            fsutil.remove_stale_temps(self.path)
            self._check_generation(new_header)
            return result

    def remove(self) -> None:
        _, admin_uid = self._check_dir()
        self._require_admin(admin_uid)
        self._remove_files()

    def _remove_files(self) -> None:
        if not self.dir.is_dir():
            return
        for child in self.dir.iterdir():
            try:
                child.unlink()
            except OSError as exc:
                raise fsutil.io_error("remove", child, exc) from None
        try:
            self.dir.rmdir()
        except OSError as exc:
            raise fsutil.io_error("remove", self.dir, exc) from None


def without_attribution(entries: Mapping[str, Entry]) -> dict[str, Entry]:
    """Attribution belongs to the person, never to a service account (credential-facts.md: WANDB_USERNAME names
    the person a service-account run is attributed to): a service never stores nor contributes these."""
    return {n: e for n, e in entries.items() if n not in ATTRIBUTION_VARIABLES}
