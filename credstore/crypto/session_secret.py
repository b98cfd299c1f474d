"""Secrets kept for one login session, split so that no single place holds anything useful.

``put(name, data, ttl)`` keeps ``data`` for this login until the timeout, ``get(name)`` gives it back (or None),
``remove(name)`` forgets it. Each secret lives in two halves:

* the **kernel session keyring** of this login (``crypto/kernel_keyring.py``): a possessor-only ``user`` key
  ``credstore:<name>`` with a timeout, holding a fresh random pad key E, a MAC key K, a file id and the expiry;
* a **0600 file** in a 0700 directory of this uid on a tmpfs (``$XDG_RUNTIME_DIR/credstore``, else
  ``/run/user/UID/credstore``, else ``/dev/shm/credstore-UID``), holding C = data XOR BLAKE2b-stream(E) and
  T = BLAKE2b-MAC(K; name, session keyring, file id, expiry, length, data).

A large secret (``AEAD_MIN`` bytes or more, where the system's libcrypto loads and sets up ChaCha20-Poly1305:
``crypto/libcrypto.py``; a FIPS or base-only provider configuration has none, and the first form is used) takes
the second form, marked by the payload's version byte and the file's magic: C and T are
ChaCha20-Poly1305(key E, nonce = file id; associated data: name, session keyring, file id, expiry, length, version
and K). The halves, and who holds what, are the same; only the cipher differs (about 0.3 ms per MiB after a 2.5 ms
start, against 10 ms per MiB), and the reader opens it in place, in the one buffer it reads the file into.

Who holds what:

* Another uid whose process inherited the session keyring (``su`` without ``-``, ``runuser -u``, ``sudo -u`` with
  no ``pam_keyinit``) possesses the key: it reads E and K but cannot open the file, so it learns nothing about
  ``data``. Whatever it writes into the key (another E, K, file id or expiry) makes T fail: ``get`` returns None and
  drops the entry, never other bytes. It can delete the key (the next ``get`` then finds nothing).
* Another login of the same uid can read and write the file but does not possess this login's session keyring:
  C is encrypted under E it has never seen, and it cannot make a T that verifies under K. (A session keyring that
  other processes may link, as ``keyctl session NAME`` makes, is refused: ``kernel_keyring.SessionKeyringExposed``.)
* Someone holding both halves (root; the same person as another uid *and* another login) learns ``data``.

The MAC (in either form) covers the plaintext, so a change of either half, or a file of an older ``put`` paired
with a newer key, or a key of another session, is detected. ``put`` keeps one file per (name, session keyring)
and sweeps expired ones.

Cost on the read path: ``_blake2`` (a builtin C module, about 0.05 ms to import; ``hashlib`` costs 2.5 ms and
``hmac`` 2.8 ms, both unused here), ``_ctypes`` for the keyring, about eight keyctl calls, two ``open``/``fstat``
pairs, and about 7.5 µs of BLAKE2b per KiB.
"""

from __future__ import annotations

import os
import stat
import time

from credstore.crypto import kernel_keyring

__all__ = ["MAX_DATA", "SessionSecretUnavailable", "get", "get_with_expiry", "put", "remove", "runtime_directory"]

MAX_NAME = 64
MAX_DATA = 16 * 1024 * 1024
KEY_PREFIX = "credstore:"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

_VERSION = 1
#: A large secret is sealed with ChaCha20-Poly1305 from libcrypto instead (``crypto/libcrypto.py``): the key's
#: payload says which (its version byte, authenticated as part of the tag's header in both forms).
_VERSION_AEAD = 2
#: From this size on, loading libcrypto (about 2.5 ms) costs less than the BLAKE2b stream (about 10 µs per KiB).
AEAD_MIN = 192 * 1024
_FID_LEN = 8
_KEY_LEN = 32
_TAG_LEN = 32
_PAYLOAD_LEN = 1 + _FID_LEN + 8 + 8 + 2 * _KEY_LEN  # version, file id, expiry, length, E, K
_MAGIC = b"CSS\x01"
_MAGIC_AEAD = b"CSS\x02"
_PAD_PERSON = b"credstore-pad-1"
_MAC_PERSON = b"credstore-mac-1"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW = os.O_NOFOLLOW


class SessionSecretUnavailable(Exception):
    """A secret cannot be kept for this session here; the message says why in one line (never a secret)."""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not set(name) <= _NAME_CHARS:
        raise ValueError(f"invalid session secret name {name!r}: use 1..{MAX_NAME} of [A-Za-z0-9_-]")


# --- the private runtime directory --------------------------------------------------------------------------------


def _candidates() -> list[tuple[str, str, bool]]:
    """(base directory, our subdirectory, base is a shared sticky directory) in order of preference."""
    uid = os.geteuid()
    found = []
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        found.append((xdg, "credstore", False))
    run_user = f"/run/user/{uid}"
    if xdg.rstrip("/") != run_user:
        found.append((run_user, "credstore", False))
    found.append(("/dev/shm", f"credstore-{uid}", True))  # noqa: S108 - a 0700 subdirectory checked on its fd
    return found


def _open_base(base: str, shared: bool) -> int:
    """Open a candidate parent; OSError (with a reason as strerror) unless it is ours, or root's sticky tmpfs dir."""
    fd = os.open(base, _DIR_FLAGS)
    st = os.fstat(fd)
    if shared:
        ok = st.st_uid == 0 and st.st_mode & stat.S_ISVTX
        why = "is not a root-owned sticky directory"
    else:
        ok = st.st_uid == os.geteuid() and not st.st_mode & 0o022
        why = f"is not a directory of uid {os.geteuid()} closed to other users"
    if not ok:
        os.close(fd)
        raise OSError(0, f"{base} {why}")
    return fd


def _open_private(base_fd: int, base: str, sub: str, create: bool) -> int:
    """Open (and make) our 0700 subdirectory relative to base_fd, never through a link; check it on the descriptor."""
    path = f"{base}/{sub}"
    if create:
        try:  # noqa: SIM105 - contextlib costs 0.5 ms to import on the read path
            os.mkdir(sub, 0o700, dir_fd=base_fd)
        except FileExistsError:
            pass
    fd = os.open(sub, _DIR_FLAGS | _NOFOLLOW, dir_fd=base_fd)
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise OSError(0, f"{path} is owned by uid {st.st_uid} with mode {st.st_mode & 0o7777:o}, not 0700 of yours")
    return fd


def _open_dirs(create: bool) -> list[tuple[int, str]]:
    """Usable private directories (descriptor, path), best first; with create, only the first one, made if missing."""
    opened: list[tuple[int, str]] = []
    reasons = []
    for base, sub, shared in _candidates():
        try:
            base_fd = _open_base(base, shared)
        except OSError as exc:
            reasons.append(exc.strerror if exc.errno == 0 else f"{base}: {exc.strerror}")
            continue
        try:
            opened.append((_open_private(base_fd, base, sub, create), f"{base}/{sub}"))
        except FileNotFoundError:
            pass
        except OSError as exc:
            reasons.append(exc.strerror if exc.errno == 0 else f"{base}/{sub}: {exc.strerror}")
        finally:
            os.close(base_fd)
        if create and opened:
            break
    if create and not opened:
        raise SessionSecretUnavailable(
            "no private runtime directory for the file half of the session cache ("
            + "; ".join(reasons)
            + "); set XDG_RUNTIME_DIR to a 0700 directory of yours on a tmpfs"
        )
    return opened


def runtime_directory() -> str:
    """Where ``put`` keeps its files (made if missing). Raises SessionSecretUnavailable with the reason."""
    fd, path = _open_dirs(create=True)[0]
    os.close(fd)
    return path


# --- the two halves ---------------------------------------------------------------------------------------------------


def _pad(enc_key: bytes, n: int) -> bytes:
    """n bytes of BLAKE2b keystream: block i is BLAKE2b(key=E, node_offset=i), as BLAKE2X numbers its blocks."""
    from _blake2 import blake2b

    blocks = [
        blake2b(key=enc_key, digest_size=64, person=_PAD_PERSON, node_offset=i).digest() for i in range((n + 63) // 64)
    ]
    return b"".join(blocks)[:n]


def _xor(data: bytes, pad: bytes) -> bytes:
    n = len(data)
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


def _header(name: str, session: int, fid: bytes, expiry: int, length: int, version: int = _VERSION) -> bytes:
    """What the tag binds besides the data: the name, this session keyring, the file id, expiry and length (and,
    for the AEAD form, its version: a key payload switched between the forms fails either way)."""
    header = bytes((len(name),)) + name.encode("ascii") + session.to_bytes(8, "little") + fid
    header += expiry.to_bytes(8, "little") + length.to_bytes(8, "little")
    return header if version == _VERSION else header + bytes((version,))


def _nonce(fid: bytes) -> bytes:
    """The AEAD nonce: the file id, zero-padded. The key E is fresh for every ``put``, so it is never reused."""
    return fid + bytes(4)


def _tag(mac_key: bytes, name: str, session: int, fid: bytes, expiry: int, data: bytes) -> bytes:
    from _blake2 import blake2b

    header = _header(name, session, fid, expiry, len(data))
    mac = blake2b(header, key=mac_key, digest_size=_TAG_LEN, person=_MAC_PERSON)
    mac.update(data)
    return mac.digest()


def _file_name(name: str, session: int, expiry: int, fid: bytes) -> str:
    return f"{name}.{session:x}.{expiry}.{fid.hex()}"


def _parse_payload(payload: bytes) -> tuple[bytes, int, int, bytes, bytes] | None:
    if len(payload) != _PAYLOAD_LEN or payload[0] not in (_VERSION, _VERSION_AEAD):
        return None
    fid = payload[1 : 1 + _FID_LEN]
    at = 1 + _FID_LEN
    expiry = int.from_bytes(payload[at : at + 8], "little")
    length = int.from_bytes(payload[at + 8 : at + 16], "little")
    enc_key = payload[at + 16 : at + 16 + _KEY_LEN]
    mac_key = payload[at + 16 + _KEY_LEN :]
    if length > MAX_DATA:
        return None
    return fid, expiry, length, enc_key, mac_key


# --- public API -------------------------------------------------------------------------------------------------------


def put(name: str, data: bytes, ttl_seconds: int) -> None:
    """Keep data for this login session for ttl_seconds, replacing an earlier secret of that name.

    Raises SessionSecretUnavailable (one-line reason) where this login has no session keyring of its own, the
    session keyring is exposed to other processes, keyctl is blocked, or no private runtime directory exists.
    """
    _check_name(name)
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_DATA:
        raise ValueError(f"data must be bytes, at most {MAX_DATA} of them")
    if not isinstance(ttl_seconds, int) or isinstance(ttl_seconds, bool) or not 0 < ttl_seconds < 2**31:
        raise ValueError("ttl_seconds must be a positive number of seconds")
    data = bytes(data)
    try:
        session = kernel_keyring.session_keyring_id()
    except kernel_keyring.KeyringUnavailable as exc:
        raise SessionSecretUnavailable(str(exc)) from None
    dir_fd, path = _open_dirs(create=True)[0]
    try:
        import fcntl

        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)  # one put at a time per uid: the sweep below sees no half-made file
        except OSError as exc:
            raise SessionSecretUnavailable(f"cannot lock {path}: {exc.strerror}") from None
        fresh = os.urandom(_FID_LEN + 2 * _KEY_LEN)
        fid, enc_key, mac_key = fresh[:_FID_LEN], fresh[_FID_LEN : _FID_LEN + _KEY_LEN], fresh[_FID_LEN + _KEY_LEN :]
        expiry = int(time.time()) + ttl_seconds
        file_name = _file_name(name, session, expiry, fid)
        version = _VERSION_AEAD if len(data) >= AEAD_MIN and _libcrypto().missing() is None else _VERSION
        if version == _VERSION_AEAD:
            libcrypto = _libcrypto()
            # the MAC key, unused by this form, is bound too: no byte of the key's payload can change unnoticed
            header = _header(name, session, fid, expiry, len(data), version) + mac_key
            body = _MAGIC_AEAD + libcrypto.seal(enc_key, _nonce(fid), header, data)
        else:
            body = _MAGIC + _xor(data, _pad(enc_key, len(data))) + _tag(mac_key, name, session, fid, expiry, data)
        _write_file(dir_fd, path, file_name, body)
        payload = bytes((version,)) + fid + expiry.to_bytes(8, "little") + len(data).to_bytes(8, "little")
        try:
            kernel_keyring.store(KEY_PREFIX + name, payload + enc_key + mac_key, ttl_seconds)
        except kernel_keyring.KeyringUnavailable as exc:
            _unlink(dir_fd, file_name)
            raise SessionSecretUnavailable(str(exc)) from None
        try:  # noqa: SIM105 - no contextlib in this module (read path)
            _sweep(dir_fd, name, session, keep=file_name)
        except OSError:
            pass  # the new entry stands; old files go with their expiry or the next put
    finally:
        os.close(dir_fd)  # also releases the lock


def _write_file(dir_fd: int, path: str, file_name: str, body: bytes) -> None:
    temp = f".{file_name}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise SessionSecretUnavailable(f"cannot create a file in {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)
        fd = -1
        os.rename(temp, file_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        _unlink(dir_fd, temp)
        raise SessionSecretUnavailable(f"cannot write a file in {path}: {exc.strerror}") from None


def _unlink(dir_fd: int, file_name: str) -> None:
    try:  # noqa: SIM105 - no contextlib on the read path
        os.unlink(file_name, dir_fd=dir_fd)
    except OSError:
        pass


def _sweep(dir_fd: int, name: str | None, session: int, keep: str = "") -> None:
    """Remove expired files, leftovers of interrupted puts, and (for name) this session's other files of name."""
    now = int(time.time())
    mine = None if name is None else f"{name}.{session:x}."
    for entry in os.listdir(dir_fd):
        if entry == keep:
            continue
        if entry.startswith("."):
            if entry.endswith(".tmp"):  # a put interrupted before its rename (puts hold the lock)
                _unlink(dir_fd, entry)
            continue
        parts = entry.split(".")
        if len(parts) != 4 or not parts[2].isdigit():
            continue  # not ours: leave it
        if int(parts[2]) <= now or (mine is not None and entry.startswith(mine)):
            _unlink(dir_fd, entry)


def get(name: str) -> bytes | None:
    """The secret kept under name in this login session, or None (absent, expired, or either half altered).

    Never raises for an unusable keyring or directory: it then finds nothing. When the halves do not verify, both
    are removed (the key by its serial, so a concurrent ``put`` of a newer secret is not touched).
    """
    found = get_with_expiry(name)
    return None if found is None else found[0]


def get_with_expiry(name: str) -> tuple[bytes, int] | None:
    """``get``, with the secret's expiry (epoch seconds): authenticated by the same tag as the data."""
    _check_name(name)
    try:
        entry = kernel_keyring.load_entry(KEY_PREFIX + name)
    except (kernel_keyring.KeyringUnavailable, OSError):
        return None
    if entry is None:
        return None
    session, key_id, payload = entry
    dirs = _open_dirs(create=False)
    try:
        parsed = _parse_payload(payload)
        if parsed is not None:
            fid, expiry, length, enc_key, mac_key = parsed
            file_name = _file_name(name, session, expiry, fid)
            for dir_fd, _path in dirs:
                if payload[0] == _VERSION_AEAD:
                    found = _open_sealed(dir_fd, file_name, name, session, fid, expiry, length, enc_key, mac_key)
                    if found is _ABSENT:
                        continue
                    if found is not None and expiry > time.time():
                        return found, expiry
                    break
                body = _read_file(dir_fd, file_name, len(_MAGIC) + length + _TAG_LEN)
                if body is None:
                    continue
                if expiry > time.time() and body[: len(_MAGIC)] == _MAGIC:
                    from _operator import _compare_digest  # hmac.compare_digest, without importing hmac

                    data = _xor(body[len(_MAGIC) : -_TAG_LEN], _pad(enc_key, length))
                    if _compare_digest(_tag(mac_key, name, session, fid, expiry, data), body[-_TAG_LEN:]):
                        return data, expiry
                break
        _drop(name, session, key_id, dirs)
        return None
    finally:
        for dir_fd, _path in dirs:
            os.close(dir_fd)


_ABSENT = object()


def _libcrypto():  # -> the module credstore.crypto.libcrypto
    """Imported only for a large secret: its ctypes classes cost about 0.2 ms, a tenth of a small ``env``."""
    from credstore.crypto import libcrypto

    return libcrypto


def _open_sealed(
    dir_fd: int,
    file_name: str,
    name: str,
    session: int,
    fid: bytes,
    expiry: int,
    length: int,
    enc_key: bytes,
    mac_key: bytes,
):  # -> bytearray | None | _ABSENT
    """The AEAD form: the file read into one buffer and opened in place (no copy of a large secret); None when it
    does not verify (or libcrypto is gone), ``_ABSENT`` when there is no such file of ours here."""
    libcrypto = _libcrypto()
    buf = _read_file(dir_fd, file_name, len(_MAGIC_AEAD) + length + libcrypto.TAG_LEN, into_buffer=True)
    if buf is None:
        return _ABSENT
    if buf[: len(_MAGIC_AEAD)] != _MAGIC_AEAD:
        return None
    header = _header(name, session, fid, expiry, length, _VERSION_AEAD) + mac_key
    try:
        ok = libcrypto.open_in_place(enc_key, _nonce(fid), header, buf, len(_MAGIC_AEAD), length)
    except (libcrypto.CryptoUnavailable, ValueError, MemoryError):
        return None
    if not ok:
        return None
    del buf[len(_MAGIC_AEAD) + length :]  # the tag, then the magic: both in place
    del buf[: len(_MAGIC_AEAD)]
    return buf


def _drop(name: str, session: int, key_id: int, dirs: list[tuple[int, str]]) -> None:
    """Remove an entry that did not verify: the key read (by serial) and this session's files of name.

    Under the lock ``put`` holds, and keeping the file of a key a concurrent ``put`` linked meanwhile.
    """
    import fcntl

    kernel_keyring.invalidate(key_id)
    for dir_fd, _path in dirs:
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            keep = ""
            current = kernel_keyring.load_entry(KEY_PREFIX + name)
            parsed = None if current is None else _parse_payload(current[2])
            if parsed is not None:
                keep = _file_name(name, session, parsed[1], parsed[0])
            prefix = f"{name}.{session:x}."
            for entry in os.listdir(dir_fd):
                if entry.startswith(prefix) and entry != keep:
                    _unlink(dir_fd, entry)
        except (OSError, kernel_keyring.KeyringUnavailable):
            pass
        finally:
            try:  # noqa: SIM105
                fcntl.flock(dir_fd, fcntl.LOCK_UN)
            except OSError:
                pass


def _read_file(dir_fd: int, file_name: str, size: int, into_buffer: bool = False):  # -> bytes | bytearray | None
    """The file's bytes if it is a regular 0600 file of ours of exactly size bytes, else None. ``into_buffer``: as
    one ``bytearray``, read straight into (a large file is then in memory once)."""
    try:
        fd = os.open(file_name, os.O_RDONLY | _NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077 or st.st_size != size:
            return None
        if into_buffer:
            buf = bytearray(size)
            view = memoryview(buf)
            while view:
                got = os.readv(fd, [view])
                if not got:
                    return None
                view = view[got:]
            del view
            return buf
        chunks = []
        left = size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def remove(name: str) -> bool:
    """Forget the secret kept under name in this session (both halves). True if there was one."""
    _check_name(name)
    try:
        removed = kernel_keyring.remove(KEY_PREFIX + name)
        session = kernel_keyring.session_keyring_id(allow_exposed=True)
    except (kernel_keyring.KeyringUnavailable, OSError):
        return False
    try:
        dirs = _open_dirs(create=False)
    except OSError:
        return removed
    for dir_fd, _path in dirs:
        try:
            prefix = f"{name}.{session:x}."
            for entry in os.listdir(dir_fd):
                if entry.startswith(prefix):
                    _unlink(dir_fd, entry)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    return removed
