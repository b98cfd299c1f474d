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
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from credstore import fsutil
from credstore.catalog import ATTRIBUTION_VARIABLES
from credstore.crypto import envelope
from credstore.errors import (
    AuthError,
    CorruptStoreError,
    CredstoreError,
    NotFoundError,
    PermissionProblem,
    RollbackError,
    StoreIOError,
    UsageError,
)
from credstore.store.base import Backend, Entry, Snapshot
from credstore.store.generations import GenerationWatch
from credstore.store.payload import check_store_name, decode_payload, encode_payload
from credstore.store.pins import Pin, ServicePin

T = TypeVar("T")

DEFAULT_SHARED_DIR = "/etc/credstore"
KIND = "group-keyfile"
KEK_LEN = 32
STORE_FILE = "service.store"
KEY_FILE = "service.key"
LOCK_FILE = "service.lock"
NEXT_KEY_FILE = "service.key.next"  # the new key during a re-key (see ServiceStore.rekey)
_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW
# Directories on the way are opened with O_PATH where the system has it: enough to walk and fstat, and it needs
# no read permission on the directory itself.
_DIR_OPEN = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
    """The shared directory: who the admin is, and the checks every service path goes through.

    It is reached from ``/`` one component at a time, by descriptor (``openat`` with ``O_NOFOLLOW``), and each
    component is checked as it is opened, so the directory checked is the directory used: no symlink anywhere on
    the path, every directory above it owned by root, the admin or the reader and not writable by group or others
    (unless root-owned and sticky, as /tmp). Whoever owns a directory on the path could otherwise swap the whole
    service (its key and values) for one of their own.
    """

    def __init__(self, path: Path, *, explicit: bool = False) -> None:
        self.path = path
        # With the default /etc/credstore only root (or you) may own it; a directory named explicitly with
        # CREDSTORE_SHARED_DIR may belong to another admin, whom the person chose to trust by naming it.
        self.explicit = explicit

    @property
    def real_path(self) -> Path:
        """The absolute path walked (lexically normalised: with no symlink allowed on it, it is the real one)."""
        return Path(os.path.abspath(self.path))

    def _missing(self) -> NotFoundError:
        return NotFoundError(
            f"no shared service accounts here: {self.path} does not exist (an admin creates one with "
            "`credstore service add NAME --group GROUP`)"
        )

    def open(self) -> tuple[int, os.stat_result]:
        """Open the shared directory by walking to it (see the class); returns (descriptor, stat). The descriptor
        is an ``O_PATH`` one where the system has it: usable as ``dir_fd``, not for listing. The caller closes it."""
        target = self.real_path
        fd = os.open("/", _DIR_OPEN)
        chain = [(Path("/"), os.fstat(fd))]
        try:
            current = Path("/")
            for part in target.parts[1:]:
                current = current / part
                try:
                    child = open_dir_at(fd, part, current)
                except FileNotFoundError:
                    raise self._missing() from None
                os.close(fd)
                fd = child
                chain.append((current, os.fstat(fd)))
            self._check_chain(chain)
        except BaseException:
            os.close(fd)
            raise
        return fd, chain[-1][1]

    def _check_chain(self, chain: list[tuple[Path, os.stat_result]]) -> None:
        where, st = chain[-1]
        me = os.geteuid()
        if st.st_uid not in (0, me) and not self.explicit:
            raise PermissionProblem(f"{where} is owned by {user_name(st.st_uid)}, not root; refusing to trust it")
        if st.st_mode & 0o022:
            raise PermissionProblem(f"{where} is writable by group or others; fix it with: chmod go-w {where}")
        admin = st.st_uid
        for parent, pst in chain[:-1]:
            if pst.st_uid not in (0, admin, me):
                raise PermissionProblem(
                    f"{parent} is owned by {user_name(pst.st_uid)}, neither root nor the admin of {where} "
                    f"({user_name(admin)}); service accounts must not sit below it (its owner could swap them)"
                )
            if pst.st_mode & 0o022 and not (pst.st_uid == 0 and pst.st_mode & stat.S_ISVTX):
                raise PermissionProblem(f"{parent} is writable by group or others; fix it with: chmod go-w {parent}")

    def check(self) -> os.stat_result:
        fd, st = self.open()
        os.close(fd)
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
        try:
            fd, _ = self.open()
        except NotFoundError:
            return []
        try:
            listing = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            try:
                names = sorted(os.listdir(listing))
            finally:
                os.close(listing)
            out = []
            for name in names:
                try:
                    check_service_name(name)
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except (UsageError, OSError):
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    continue
                out.append(
                    ServiceInfo(name, group_name(st.st_gid), st.st_gid, user_name(st.st_uid), in_group(st.st_gid))
                )
            return out
        except OSError as exc:
            raise fsutil.io_error("list", self.path, exc) from None
        finally:
            os.close(fd)


def open_dir_at(parent_fd: int, name: str, shown: Path) -> int:
    """Open directory ``name`` below ``parent_fd`` without following a symlink; ``shown`` names it in errors.
    A missing one raises FileNotFoundError (the caller knows what was missing)."""
    try:
        return os.open(name, _DIR_OPEN, dir_fd=parent_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            try:
                is_link = stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
            except OSError:
                is_link = False
            if is_link:
                raise PermissionProblem(
                    f"{shown} is a symlink; service accounts are reached only through real directories "
                    "(set CREDSTORE_SHARED_DIR to the real path)"
                ) from None
            raise PermissionProblem(f"{shown} is not a directory") from None
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PermissionProblem(f"cannot reach {shown}: {reason}") from None
        raise StoreIOError(f"cannot open {shown}: {reason}") from None


class _Opened(NamedTuple):
    """A service store read and authenticated: its header, data key and contents, and whether the data key was
    unwrapped with the next key file of an unfinished re-key."""

    header: envelope.Header
    dek: bytes
    snapshot: Snapshot
    used_next_key: bool


class ServiceStore(Backend):
    """One service account's store. Members read it; the admin (owner of the shared directory) writes it.

    Reads go by descriptor: the shared directory as ``SharedRoot.open`` walked and checked it, the service's
    directory opened below that descriptor, its files below the service directory's. Writes (admin only) use paths,
    which name the same files: every directory on them was just checked to be owned by root or the admin and
    writable by nobody else, and to be no symlink.
    """

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
        self.next_key_path = self.dir / NEXT_KEY_FILE
        self.lock_path = self.dir / LOCK_FILE
        self.state_dir = state_dir
        self.lock_timeout = lock_timeout
        self.source = f"service:{name}"

    def __repr__(self) -> str:
        return f"ServiceStore(path={str(self.path)!r})"

    # -- checks ----------------------------------------------------------------------------------------------

    def _open_dir(self) -> tuple[int, os.stat_result, int]:
        """Open and check this service's directory below the checked shared directory: (descriptor, its stat,
        the admin's uid). The caller closes the descriptor."""
        root_fd, root_st = self.root.open()
        try:
            try:
                fd = open_dir_at(root_fd, self.name, self.dir)
            except FileNotFoundError:
                raise NotFoundError(f"no service account '{self.name}' in {self.root.path}") from None
        finally:
            os.close(root_fd)
        try:
            st = os.fstat(fd)
            if st.st_uid not in (0, root_st.st_uid):
                raise PermissionProblem(
                    f"{self.dir} is owned by {user_name(st.st_uid)}, not by the admin who owns {self.root.path}"
                )
            if st.st_mode & 0o007:
                raise PermissionProblem(f"{self.dir} is accessible by everyone; fix it with: chmod o-rwx {self.dir}")
            if st.st_mode & 0o020:
                raise PermissionProblem(f"{self.dir} is writable by its group; fix it with: chmod g-w {self.dir}")
        except BaseException:
            os.close(fd)
            raise
        return fd, st, root_st.st_uid

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

    def _read_file(self, name: str, dir_fd: int, dir_st: os.stat_result, admin_uid: int) -> bytes | None:
        """The whole file ``name`` of the service directory (opened below its descriptor), checked; None if it
        does not exist."""
        path = self.dir / name
        try:
            fd = os.open(name, os.O_RDONLY | _FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
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
        fd, st, _ = self._open_dir()
        os.close(fd)
        return ServiceInfo(self.name, group_name(st.st_gid), st.st_gid, user_name(st.st_uid), in_group(st.st_gid))

    # -- reading ---------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            fd, _, _ = self._open_dir()
        except NotFoundError:
            return False
        os.close(fd)
        return True

    def read(self) -> Snapshot:
        fd, dir_st, admin_uid = self._open_dir()
        try:
            return self._read(fd, dir_st, admin_uid).snapshot
        finally:
            os.close(fd)

    def _read(self, dir_fd: int, dir_st: os.stat_result, admin_uid: int, *, check_pin: bool = True) -> _Opened:
        for attempt in (1, 2):
            data = self._read_file(STORE_FILE, dir_fd, dir_st, admin_uid)
            if data is None:
                raise NotFoundError(f"service account '{self.name}' has no store yet ({self.path} is missing)")
            header, ad, ciphertext = envelope.parse(data)
            if header.kek_kind != KIND or header.kek_params:
                raise CorruptStoreError(f"{self.path} is not a service account store (protection '{header.kek_kind}')")
            try:
                self._check_generation(header)
            except RollbackError:
                if attempt == 2:
                    raise
                # A writer (in this state directory) may have recorded a newer generation after this file was
                # read: a real rollback reads the same old file again.
                continue
            pin = self._check_pin(admin_uid, header.store_id) if check_pin else None
            try:
                dek, used_next = self._unwrap(header, dir_fd, dir_st, admin_uid)
                break
            except AuthError:
                if attempt == 2:
                    raise
                # A re-key may have replaced both files between the two reads: read them once more.
        snapshot = decode_payload(envelope.open_payload(header, ad, ciphertext, dek), header.generation)
        # Authenticated from here: the admin and the store id may be remembered.
        if check_pin and pin is None:
            self._pin().remember(Pin(admin_uid, header.store_id))
        snapshot.entries = without_attribution(snapshot.entries)
        return _Opened(header, dek, snapshot, used_next)

    def _unwrap(
        self, header: envelope.Header, dir_fd: int, dir_st: os.stat_result, admin_uid: int
    ) -> tuple[bytes, bool]:
        """The data key, and whether the next key file of an unfinished re-key (the store already written under it,
        the key file not yet replaced) was needed to unwrap it."""
        kek = self._read_file(KEY_FILE, dir_fd, dir_st, admin_uid)
        if kek is None:
            raise CorruptStoreError(f"the key file of service account '{self.name}' is missing ({self.key_path})")
        if len(kek) != KEK_LEN:
            raise CorruptStoreError(f"key file {self.key_path} is malformed")
        try:
            return envelope.unwrap_dek(header, kek), False
        except AuthError:
            try:
                following = self._read_file(NEXT_KEY_FILE, dir_fd, dir_st, admin_uid)
            except CredstoreError:
                following = None
            if following is None or len(following) != KEK_LEN:
                raise
            return envelope.unwrap_dek(header, following), True

    # -- the admin and store this reader trusts (see store/pins.py) --------------------------------------------

    def _pin(self) -> ServicePin:
        return ServicePin(self.state_dir, self.root.real_path, self.name)

    def _check_pin(self, admin_uid: int, store_id: bytes) -> Pin | None:
        """Refuse another admin or another store than the ones this reader used before; returns the pin kept."""
        pin = self._pin().load()
        if pin is None:
            return None
        accept = f"if that is intended, accept it with: credstore service accept {self.name}"
        if pin.admin_uid != admin_uid:
            raise PermissionProblem(
                f"service account '{self.name}' is now run by {user_name(admin_uid)} (uid {admin_uid}), not by "
                f"{user_name(pin.admin_uid)} (uid {pin.admin_uid}) as when you last used it; nothing was read; "
                f"{accept}"
            )
        if pin.store_id != store_id:
            raise CorruptStoreError(
                f"service account '{self.name}' is another store than the one you used before (recreated or "
                f"replaced); nothing was read; ask its admin, and {accept}"
            )
        return pin

    def accept(self) -> Pin:
        """Trust the service's current admin and store from now on (after a deliberate change). Returns them."""
        fd, dir_st, admin_uid = self._open_dir()
        try:
            opened = self._read(fd, dir_st, admin_uid, check_pin=False)
        finally:
            os.close(fd)
        pin = Pin(admin_uid, opened.header.store_id)
        self._pin().save(pin)
        return pin

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
        self._pin().remember(Pin(root_st.st_uid, header.store_id))  # its creator trusts it

    def modify(self, change: Callable[[Snapshot], T]) -> T:
        fd, dir_st, admin_uid = self._open_dir()
        try:
            self._require_admin(admin_uid)
            with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
                opened = self._read(fd, dir_st, admin_uid)
                snapshot = opened.snapshot
                result = change(snapshot)
                drop_expired_previous(snapshot, time.time())
                snapshot.entries = without_attribution(snapshot.entries)
                new_header = opened.header._replace(generation=opened.header.generation + 1)
                data = envelope.seal(new_header, opened.dek, encode_payload(snapshot))
                self._write_group_file(self.path, data, dir_st.st_gid)
                self._finish_rekey(opened.used_next_key)
                fsutil.remove_stale_temps(self.path)
                self._check_generation(new_header)
                return result
        finally:
            os.close(fd)

    def rekey(self) -> int:
        """A new data key and a new group key file: every value (previous ones too) re-encrypted, the rotation
        history kept, the store id kept (members need not accept anything). The old key file, and any copy of it
        a former member kept, opens neither this store nor any later copy of it. Returns the new generation.

        Crash-safe in three steps: the new key goes to ``service.key.next`` (readers try it when the key file
        fails), then the store is replaced, then the next key becomes the key file. A crash leaves the old store
        with the old key, or the new store with the next key beside the old one (finished by the next write)."""
        fd, dir_st, admin_uid = self._open_dir()
        try:
            self._require_admin(admin_uid)
            with fsutil.exclusive_lock(self.lock_path, self.lock_timeout):
                opened = self._read(fd, dir_st, admin_uid)
                snapshot = opened.snapshot
                drop_expired_previous(snapshot, time.time())
                kek, dek = os.urandom(KEK_LEN), os.urandom(envelope.KEY_LEN)
                header = opened.header._replace(generation=opened.header.generation + 1, slots=())
                header = envelope.wrap_slot(header, 1, kek, KIND, b"", dek)  # the one slot, under the new key
                data = envelope.seal(header, dek, encode_payload(snapshot))
                self._write_group_file(self.next_key_path, kek, dir_st.st_gid)
                self._write_group_file(self.path, data, dir_st.st_gid)
                self._finish_rekey(True)
                fsutil.remove_stale_temps(self.path)
                fsutil.remove_stale_temps(self.key_path)
                self._check_generation(header)
                return header.generation
        finally:
            os.close(fd)

    def _finish_rekey(self, used_next_key: bool) -> None:
        """Make the next key file the key file (the store is wrapped under it), or drop a stale next key file left
        by a re-key that crashed before it replaced the store."""
        if used_next_key:
            try:
                os.replace(self.next_key_path, self.key_path)
            except OSError as exc:
                raise fsutil.io_error("replace", self.key_path, exc) from None
            fsutil.fsync_dir(self.dir)
        else:
            with suppress(FileNotFoundError):
                os.unlink(self.next_key_path)

    def remove(self) -> None:
        fd, _, admin_uid = self._open_dir()
        os.close(fd)
        self._require_admin(admin_uid)
        self._remove_files()
        self._pin().forget()

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
