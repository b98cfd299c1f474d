"""The per-login render cache: what ``credstore env`` needs, kept so the next ``env`` of this login decrypts nothing.

After a full ``env`` (the store decrypted, rollback checked, the profile file checked against the store) the stored
layers are kept with ``crypto/session_secret.py`` under ``render-<hash of store home and profile>``: split between
the kernel session keyring of this login (pad and MAC key, possessor-only, with a timeout) and a 0600 file in this
uid's private runtime directory, so another login of the account (file half only) and another uid that inherited
the session keyring (keyring half only) learn nothing and cannot make the next ``env`` print anything else.

What is kept: every stored name, value and secret flag of the profile and of the service account it used (default
or ``--service``), with their refresh-marker fingerprints and the fingerprint key; and a validator: for each file
the result depends on (the store file, the profile file, the key file, the service account's store and key file),
its path, ``(dev, ino, size, mtime_ns, ctime_ns)`` and, for stores, a digest of the first 4 KiB (the header, with the
generation, and the start of a ciphertext made under a fresh salt per save: two saves never compare equal, even
within one clock tick).

A later ``env`` uses the cache only when every file still matches (``os.stat`` and one short ``read`` per store, no
cryptography), the request is the plain one (no names, no ``--set``, no ``--format`` or ``--prefix``, the same
service), and, for a passphrase store, the unlocked data key is still there. Then it applies the same precedence and
the same ``CREDSTORE_EXPORTED`` refresh rule to the current environment (a fingerprint is computed only for a value
that differs from every cached one), writes the same audit line, and prints the same text. For a new shell (none of
the stored names in the environment, no refresh marker, the shell the cache was filled for) both were prepared when
the cache was filled (``prepare_clean``): it prints them as stored, with no per-variable work (``Record``). A large
record keeps its layers apart (``LAYERS_APART``), so such an ``env`` reads and decrypts only what it prints.
``exec`` (the same plan applied to its command's environment) and ``get NAME`` (the profile's value) are served the
same way.
Anything else takes the full road, which then refreshes the cache.

The cache lives no longer than the unlock: at a level whose data key is kept for the session its timeout is the
data key's remaining time and it is used only while that key is there; ``lock`` removes it. At the key file level
it lives ``KEYFILE_TTL``. A level whose data key was not kept for the session is never cached.

An OpenBao profile (its layers' sources start with ``vault:``; its service accounts live beside it) is cached the
same way, with the files of its local half (the store holding its token, the profile file, the key file) in the
validator, and a short freshness bound on top: ``vault.render_cache`` / ``$CREDSTORE_VAULT_CACHE_SECONDS``
(``store/vault_profile.render_cache_seconds``, default 60 s, 0 = never), also capped by the token's expiry. The bound
is the secret's own timeout (authenticated by ``session_secret``) and the record's expiry; a later, smaller
``$CREDSTORE_VAULT_CACHE_SECONDS`` refuses a record that would outlive it. Every write credstore makes to OpenBao
through this store home calls ``forget_all`` (``Context.watch``); a change made elsewhere (another machine, an
admin) reaches ``env`` when the bound has passed. A token from ``$BAO_TOKEN`` / ``$VAULT_TOKEN`` is never cached
for, and a read answered by the last-known-good copy (server down) is not cached.

This module is on the shell-start hot path: it imports ``os``, ``session_secret`` (``_ctypes``, ``_blake2``; and the
system's libcrypto for a large record) and nothing of ``cryptography``, ``json``, ``re``, ``pathlib`` or ``typing``.
"""

from __future__ import annotations

import os

from credstore import marker
from credstore.crypto import session_secret

_VERSION = "credstore-render-5"
MARKER = marker.MARKER
ENVIRONMENT = "environment"
#: How long the key file level keeps a render (that level has no unlock to follow).
KEYFILE_TTL = 8 * 3600
#: The most entries whose ``list`` columns the cache keeps: every ``env`` decrypts them too (about 30 bytes an entry),
#: and listing a larger profile is no shell-start matter (the full road answers it).
LISTING_MAX = 1000
#: Protection levels whose render may be cached: their key is in a file or in this login's session cache.
_CACHEABLE_LEVELS = ("keyfile", "passphrase")
#: The source prefix of OpenBao layers (``store/vault_profile.py``): such a render has a freshness bound.
OPENBAO_SOURCE = "vault:"
OPENBAO_BOUND_ENV = "CREDSTORE_VAULT_CACHE_SECONDS"
OPENBAO_TOKEN_ENV = ("BAO_TOKEN", "VAULT_TOKEN")
_SEP = "\0"


# -- paths without pathlib (config.py has the reference versions; tests check they agree) -------------------------


def store_home(environ) -> str:
    """``str(config.store_home(environ))``, spelled the same way for every input (tests check it)."""
    override = environ.get("CREDSTORE_HOME")
    if override:
        expanded = os.path.expanduser(override)
        return _as_pathlib(expanded if expanded.startswith("/") else os.path.join(os.getcwd(), expanded))
    base = environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser("~/.local/share")
    return _as_pathlib(os.path.join(base, "credstore"))


def _as_pathlib(path: str) -> str:
    """What ``str(pathlib.PurePosixPath(path))`` gives: no empty or ``.`` parts, ``..`` kept, two leading slashes
    kept (POSIX leaves their meaning to the system), three or more made one."""
    lead = "//" if path.startswith("//") and not path.startswith("///") else "/" if path.startswith("/") else ""
    return lead + "/".join(part for part in path.split("/") if part and part != ".") or "."


#: Written when a profile is chosen by the keys of the person's ssh-agent (a profile choice this module leaves to
#: ``config.choose_profile``: with that index present, only ``--profile`` or ``$CREDSTORE_PROFILE`` are answered here).
AGENT_INDEX = "ssh-agent.index"


def profile_of(profile_arg: str | None, environ) -> str | None:
    """The profile meant, or None when it must go the full road (an empty ``--profile`` is an error there; an
    automatic choice by ssh-agent keys is made there)."""
    if profile_arg is not None:
        return profile_arg or None
    if environ.get("CREDSTORE_PROFILE"):
        return environ["CREDSTORE_PROFILE"]
    try:
        os.stat(os.path.join(store_home(environ), "profiles", AGENT_INDEX))
    except FileNotFoundError:
        return "default"
    except OSError:
        return None
    return None


def secret_name(home: str, profile: str, environ) -> str:
    """The session secret's name: one per store home, profile and the settings that choose other files (the shared
    directory of service accounts, the state directory of rollback detection)."""
    from _blake2 import blake2b

    where = [home, profile, environ.get("CREDSTORE_SHARED_DIR", ""), environ.get("CREDSTORE_STATE_DIR", "")]
    digest = blake2b("\0".join(where).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
    return f"render-{digest}"


# -- validator ----------------------------------------------------------------------------------------------------


def _stat_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


#: How much of a store file the validator covers: its whole header (with the generation, which every write raises)
#: and the start of the ciphertext (new with every save: a fresh salt and nonce), whatever the format version.
_HEAD = 4096


def _digest(head: bytes) -> str:
    from _blake2 import blake2b

    return blake2b(head, digest_size=32).hexdigest()


def describe_file(path: str, is_store: bool) -> tuple[str, str, str]:
    """(path, stat key, digest of the first bytes for a store) of one file the render depends on; a missing file
    has the stat key ``-``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return path, "-", ""
    try:
        st = os.fstat(fd)
        return path, _stat_key(st), _digest(os.read(fd, _HEAD)) if is_store else ""
    finally:
        os.close(fd)


def describe_directory(path: str) -> tuple[str, str, str]:
    """(path, ``dir:`` key, "") of a directory whose owner, type and mode the full road checks (``fsutil.check_dir``):
    a chmod, chown or a symlink put in its place shows as a mismatch."""
    try:
        st = os.lstat(path)
    except OSError:
        return path, "dir:-", ""
    return path, f"dir:{st.st_uid}:{st.st_mode}", ""


def _file_matches(path: str, stat_key: str, header_digest: str) -> bool:
    if stat_key.startswith("dir:"):
        return describe_directory(path)[1] == stat_key
    if stat_key == "-":
        try:
            os.lstat(path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if _stat_key(os.fstat(fd)) != stat_key:
            return False
        if header_digest:
            return _digest(os.read(fd, _HEAD)) == header_digest
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


# -- the cached record ----------------------------------------------------------------------------------------------


class Record:
    """A decoded cache entry (values never reach a repr).

    Stored form (``encode``): a 10-digit length, then the *head* (NUL-separated fields: what every request checks,
    and the sizes of the sections after it), then four sections:

    * ``names``: every stored name, newline-separated: whether the environment holds any of them;
    * ``clean``: what ``env --shell <shell>`` prints when the environment holds none of them and no refresh marker
      (the usual new shell): prepared by ``remember`` with this module's own ``plan`` and the shell's renderer;
    * ``audit``: the end of the audit line that ``env`` then writes (``audit.line_tail``);
    * ``layers``: the stored layers and ``list``'s columns, decoded only when a request needs them.

    So a new shell with ten thousand variables costs one ``read``, one AEAD pass and a set check; the layers are
    decoded only for the other cases (precedence against the environment, a refresh, ``exec``, ``get``, ``list``).
    """

    __slots__ = ("dek_name", "expiry", "files", "fp_key", "home", "profile", "service", "service_source")
    __slots__ += ("service_chosen", "shell", "clean", "audit_tail", "openbao", "apart", "secret")
    __slots__ += ("_data", "_names_at", "_layers", "_listing", "_raw")

    def __init__(self) -> None:
        self.home = ""
        self.profile = ""
        self.dek_name = ""
        self.expiry = 0
        self.service = ""
        self.service_source = ""
        self.service_chosen = False
        self.fp_key = b""
        self.files: list[tuple[str, str, str]] = []
        #: The shell ``clean`` is written for ("" when there is none: then every ``env`` goes through ``plan``).
        self.shell = ""
        self.clean: bytes | memoryview = b""
        #: The end of the audit line of such an ``env`` (``audit.line_tail``), UTF-8.
        self.audit_tail: bytes | memoryview = b""
        #: Whether a layer was read from OpenBao (None: not known yet, see ``on_openbao``).
        self.openbao: bool | None = None
        #: The id of the layers kept apart (a large record: ``LAYERS_APART``), "" when they are in this record.
        self.apart = ""
        #: The session secret this record was loaded from (``load``).
        self.secret = ""
        #: The stored form (``decode``) and where its names section is: newline-framed names, never split on a
        #: new shell's path (``stores_any``).
        self._data: bytes | bytearray | None = None
        self._names_at = (0, 0)
        self._layers: list[tuple[str, dict[str, tuple[str, bool, str]]]] | None = []
        self._listing: dict[str, tuple[float, str]] | None = {}
        #: (layers section, listing count) as decode found them, decoded on first use.
        self._raw: memoryview | None = None

    @property
    def layers(self) -> list[tuple[str, dict[str, tuple[str, bool, str]]]]:
        """(source, {name: (value, secret, fingerprint)}) in precedence order; ``upper`` layers are marked by
        ``service_chosen`` (the first layer is then the chosen service, which beats the environment)."""
        if self._layers is None:
            self._decode_layers()
        return self._layers  # type: ignore[return-value]

    @property
    def listing(self) -> dict[str, tuple[float, str]] | None:
        """``list``'s extra columns for each of the profile's own entries: when it was last changed, and the catalog
        service it belongs to ("" for none); None when not kept (a large profile) or malformed."""
        if self._layers is None:
            self._decode_layers()
        return self._listing

    @listing.setter
    def listing(self, value: dict[str, tuple[float, str]]) -> None:
        self._listing = value

    def attach(self, data: bytes | bytearray, names_at: tuple[int, int], layers: memoryview) -> None:
        """The stored form (``decode``), where its names section is, and its layers section, decoded on first use."""
        self._data, self._names_at, self._raw, self._layers = data, names_at, layers, None

    def names(self) -> set[str]:
        """Every stored name of every layer."""
        if self._data is None:
            return {name for _source, values in self.layers for name in values}
        start, end = self._names_at
        text = str(memoryview(self._data)[start + 1 : end - 1], "utf-8", "surrogateescape")
        return set(text.split("\n")) if end - start > 1 else set()

    def stores_any(self, names) -> bool:
        """Whether any of ``names`` is a stored name. A few names against a long stored list are each found by a
        binary search in the list as stored (no list or set of thousands of names is made)."""
        start, end = self._names_at
        if self._data is None or len(names) * 1024 > end - start:
            return not self.names().isdisjoint(names)
        data = self._data
        return any(_in_sorted_lines(data, start, end, name.encode("utf-8", "surrogateescape")) for name in names)

    def _decode_layers(self) -> None:
        raw, self._raw = self._raw, None
        self._layers, self._listing = [], None
        if self.apart:
            raw = _layers_apart(self.secret, self.apart)
        if raw is None:
            return
        fields = str(raw, "utf-8", "surrogateescape").split(_SEP)
        at = 1
        for _ in range(int(fields[0])):
            source, n = fields[at], int(fields[at + 1])
            at += 2
            names = fields[at : at + n]
            flags = [flag == "1" for flag in fields[at + 2 * n : at + 3 * n]]
            columns = zip(fields[at + n : at + 2 * n], flags, fields[at + 3 * n : at + 4 * n], strict=True)
            values = dict(zip(names, columns, strict=True))
            at += 4 * n
            if len(values) != n:
                raise ValueError("a layer repeats a name")
            self._layers.append((source, values))
        count = int(fields[at])
        listing_fields = fields[at + 1 : at + 1 + 3 * count]
        if at + 1 + 3 * count != len(fields):
            raise ValueError("trailing fields")
        self._listing = _listing_of(listing_fields) if count else {}

    def __repr__(self) -> str:
        return f"Record(profile={self.profile!r}, files={len(self.files)}, shell={self.shell!r})"


def _in_sorted_lines(data: bytes | bytearray, start: int, end: int, key: bytes) -> bool:
    """Whether ``key`` is a line of ``data[start:end]``: lines sorted bytewise, with a newline at ``start`` and at
    ``end - 1``. A binary search on byte offsets: ``lo`` and ``hi`` are always at a newline."""
    lo, hi = start, end - 1
    while lo < hi:
        line_start = data.rfind(b"\n", lo, (lo + hi) // 2 + 1)
        line_end = data.find(b"\n", line_start + 1, hi + 1)
        line = data[line_start + 1 : line_end]
        if line == key:
            return True
        if key < line:
            hi = line_start
        else:
            lo = line_end
    return False


def encode_layers(record: Record) -> bytes:
    """The layers section: the stored layers and ``list``'s columns."""
    layers = [str(len(record.layers))]
    for source, values in record.layers:
        # column by column (names, values, flags, fingerprints): decoding is then a few slices and a zip
        layers += [source, str(len(values))]
        layers += values
        layers += [item[0] for item in values.values()]
        layers += ["1" if item[1] else "0" for item in values.values()]
        layers += [item[2] for item in values.values()]
    listing = record.listing or {}
    layers.append(str(len(listing)))
    layers += listing
    layers += [repr(float(when)) for when, _service in listing.values()]
    layers += [service for _when, service in listing.values()]
    return _SEP.join(layers).encode("utf-8", "surrogateescape")


def encode(record: Record, layers: bytes | None = None) -> bytes:
    """The stored form; ``layers``: the layers section to put in it (default: ``encode_layers``; ``b""`` when
    they are kept apart, ``record.apart``)."""
    if layers is None:
        layers = encode_layers(record)
    names = sorted(name.encode("utf-8", "surrogateescape") for name in record.names())  # bytewise: stores_any
    sections = [
        b"\n" + b"\n".join(names) + b"\n" if names else b"",
        bytes(record.clean),
        bytes(record.audit_tail),
        layers,
    ]
    head = [
        _VERSION,
        record.home,
        record.profile,
        record.dek_name,
        str(record.expiry),
        record.service,
        record.service_source,
        "1" if record.service_chosen else "0",
        record.fp_key.hex(),
        record.shell,
        "1" if on_openbao(record) else "0",
        record.apart,
        *(str(len(section)) for section in sections),
        str(len(record.files)),
    ]
    for path, stat_key, header in record.files:
        head += [path, stat_key, header]
    head_bytes = _SEP.join(head).encode("utf-8", "surrogateescape")
    return b"%010d" % len(head_bytes) + head_bytes + b"".join(sections)


def decode(data: bytes | bytearray) -> Record | None:
    """The record in ``data`` (the sections are views of it, nothing is copied), or None when malformed. A
    malformed layers section raises ValueError when first used (the caller then takes the full road)."""
    try:
        if len(data) < 10 or not data[:10].isdigit():
            return None
        end = 10 + int(data[:10])
        fields = str(data[10:end], "utf-8", "surrogateescape").split(_SEP)
        if fields[0] != _VERSION:
            return None
        record = Record()
        record.home, record.profile, record.dek_name = fields[1], fields[2], fields[3]
        record.expiry = int(fields[4])
        record.service, record.service_source = fields[5], fields[6]
        record.service_chosen = fields[7] == "1"
        record.fp_key = bytes.fromhex(fields[8])
        record.shell = fields[9]
        record.openbao = fields[10] == "1"
        record.apart = fields[11]
        sizes = [int(size) for size in fields[12:16]]
        count = int(fields[16])
        if len(fields) != 17 + 3 * count or sum(sizes) != len(data) - end or min(sizes) < 0:
            return None
        record.files = [(fields[at], fields[at + 1], fields[at + 2]) for at in range(17, len(fields), 3)]
        view = memoryview(data)
        bounds = [end]
        for size in sizes:
            bounds.append(bounds[-1] + size)
        record.clean = view[bounds[1] : bounds[2]]
        record.audit_tail = view[bounds[2] : bounds[3]]
        if sizes[0] and (data[bounds[0]] != 10 or data[bounds[1] - 1] != 10):  # the names section is "\n"-framed
            return None
        record.attach(data, (bounds[0], bounds[1]), view[bounds[3] : bounds[4]])
        return record
    except (ValueError, IndexError):
        return None


#: From this size on, a record's layers are kept in a session secret of their own (``<name>-layers``, starting with
#: the record's ``apart`` id): a new shell then reads and decrypts only what it prints.
LAYERS_APART = 64 * 1024
_APART_SUFFIX = "-layers"


def _layers_apart(secret: str, apart: str) -> memoryview:
    """The layers section kept apart for the record ``secret`` (ValueError when gone or of another record)."""
    data = session_secret.get(secret + _APART_SUFFIX) if secret else None
    tag = apart.encode("ascii")
    if data is None or data[: len(tag)] != tag:
        raise ValueError("the layers kept apart are missing or belong to another record")
    return memoryview(data)[len(tag) :]


# -- fingerprints of the refresh marker, without cryptography ------------------------------------------------------


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) on the builtin ``_sha256``: only for a value that no cached fingerprint covers."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:  # Python 3.12+ names it _sha2
        from _sha2 import sha256  # type: ignore[import-not-found,no-redef]
    if len(key) > 64:
        key = sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


def fingerprint(key: bytes, name: str, value: str) -> str:
    """The refresh-marker fingerprint (``resolver/exported.py``): HMAC-SHA256(key, name NUL value)[:12] in hex."""
    return _hmac_sha256(key, name.encode() + b"\0" + value.encode())[:12].hex()


def _exported_unchanged(record: Record, environ) -> dict[str, str]:
    from _operator import _compare_digest

    out: dict[str, str] = {}
    if not record.fp_key:
        return out
    for name, fp in marker.parse(marker.read(environ)).items():
        if name not in environ:
            continue
        current = environ[name]
        mine = None
        for _source, values in record.layers:
            held = values.get(name)
            if held is not None and held[0] == current:
                mine = held[2]
                break
        if mine is None:
            try:
                mine = fingerprint(record.fp_key, name, current)
            except UnicodeEncodeError:
                continue
        if _compare_digest(mine.encode(), fp.encode()):
            out[name] = fp
    return out


# -- the hot path ---------------------------------------------------------------------------------------------------


def load(profile: str, environ) -> Record | None:
    """The cached record of ``profile`` if it is still valid for the files as they are now, else None."""
    home = store_home(environ)
    name = secret_name(home, profile, environ)
    try:
        data = session_secret.get(name)
    except (OSError, ValueError):
        return None
    if data is None:
        return None
    record = decode(data)
    if record is None or record.home != home or record.profile != profile:
        return None
    record.secret = name
    for path, stat_key, header in record.files:
        if not _file_matches(path, stat_key, header):
            return None
    if on_openbao(record) and not _fresh_for_openbao(record, environ):
        return None
    if record.dek_name:
        # The unlock must still be there and intact (``lock`` also removes this cache; this covers a lock by other
        # means, and a data key another uid in the session keyring overwrote: then the store reads as locked).
        try:
            if session_secret.get(record.dek_name) is None:
                return None
        except (OSError, ValueError):
            return None
    return record


def on_openbao(record: Record) -> bool:
    """Whether the render holds values read from OpenBao (the profile's, or a service account's beside it)."""
    if record.openbao is None:
        record.openbao = any(source.startswith(OPENBAO_SOURCE) for source, _values in record.layers)
    return record.openbao


def _fresh_for_openbao(record: Record, environ) -> bool:
    """An OpenBao render answers only within its bound (the session secret's timeout checks it too), never for a
    token from the environment, and never beyond a smaller bound set since (a malformed one: the full road says
    why)."""
    import time

    if any(environ.get(name) for name in OPENBAO_TOKEN_ENV):
        return False
    left = record.expiry - time.time()
    if left <= 0:
        return False
    text = environ.get(OPENBAO_BOUND_ENV, "").strip()
    return not text or (text.isascii() and text.isdigit() and left <= int(text))


def plan(record: Record, environ) -> tuple[list[tuple[str, str]], list[str], dict[str, str]] | None:
    """(assignments, unsets, {name: source delivered}) for a plain ``env``: the rules of ``resolver/plan.py``.
    None when the full road must decide (a warning is due)."""
    stale = _exported_unchanged(record, environ)
    upper = record.layers[:1] if record.service_chosen else []
    stored = record.layers[1:] if record.service_chosen else record.layers
    known: set[str] = set()
    for _source, values in record.layers:
        known.update(values)
    env_values = {n for n in known.intersection(environ) if n not in stale and n != MARKER}
    if record.service and _attribution_warning_due(record, environ, env_values):
        return None
    if not upper and not env_values and len(stored) == 1:
        # the common case (one store, nothing of it in the environment): the same result, built in bulk
        source, values = stored[0]
        names = sorted(values)
        delivered = dict.fromkeys(names, source)
        assignments = [(name, values[name][0]) for name in names]
        unsets = [name for name in sorted(stale) if name not in delivered]
        if record.fp_key and names:
            pieces, unused = marker.assignments(marker.text_of(names, [values[name][2] for name in names]), environ)
            assignments += pieces
            unsets += unused
        else:
            unsets += marker.all_variables(environ)
        return assignments, unsets, delivered
    assignments: list[tuple[str, str]] = []
    fingerprints: dict[str, str] = {}
    delivered: dict[str, str] = {}
    for name in sorted(known):
        winner = None
        for source, values in upper:
            if name in values:
                winner = (source, values[name])
                break
        if winner is None:
            if name in env_values:
                continue  # the environment decides: left alone
            for source, values in stored:
                if name in values:
                    winner = (source, values[name])
                    break
        if winner is None:
            continue
        source, (value, _secret, fp) = winner
        assignments.append((name, value))
        delivered[name] = source
        if record.fp_key:
            fingerprints[name] = fp
    unsets = [name for name in sorted(stale) if name not in delivered]
    if fingerprints:
        names = sorted(fingerprints)
        pieces, unused = marker.assignments(marker.text_of(names, [fingerprints[n] for n in names]), environ)
        assignments += pieces
        unsets += unused
    else:
        unsets += marker.all_variables(environ)
    return assignments, unsets, delivered


def _attribution_warning_due(record: Record, environ, env_values: set[str]) -> bool:
    """Whether the full road would warn that a service's W&B key runs without WANDB_USERNAME (it words it)."""
    if environ.get("WANDB_USERNAME") or any("WANDB_USERNAME" in values for _s, values in record.layers):
        return False
    if record.service_chosen:
        return "WANDB_API_KEY" in record.layers[0][1]
    if "WANDB_API_KEY" in env_values:
        return False
    for source, values in record.layers:
        if "WANDB_API_KEY" in values:
            return source == record.service_source
    return False


def cached_env_text(profile_arg: str | None, options: dict, environ, bytes_ok: bool = False):
    """What ``credstore env`` prints, from this login's render cache; None when the full road must run.

    A ``str``; or, with ``bytes_ok`` (the caller writes UTF-8), the prepared bytes of a new shell (``Record.clean``)
    as they are stored, without a copy."""
    import time

    checked_at = time.time()
    if options["tokens"] or options["sets"] or options["fmt"] != "shell":
        return None
    if options["prefix"] is not None or options["target"] is not None:
        return None
    profile = profile_of(profile_arg, environ)
    if profile is None:
        return None
    record = load(profile, environ)
    if record is None:
        return None
    wanted = options["service"]
    if (wanted or "") != (record.service if record.service_chosen else ""):
        return None
    from credstore import shells

    shell = options["shell"] or shells.detect_shell(environ)
    if bytes_ok and record.shell and shells.same_text(record.shell, shell) and _holds_none_of(record, environ):
        from credstore import audit

        audit.record_prepared("env", record.audit_tail, path=os.path.join(record.home, "audit.log"))
        if not options.get("hook"):
            return record.clean
        tail = generation_text(record, checked_at, shell, environ)
        return bytes(record.clean) + tail.encode("utf-8", "surrogateescape")
    environ = dict(environ)  # os.environ encodes and decodes on every lookup: 10,000 names cost milliseconds
    if not _layers_readable(record):
        return None
    planned = plan(record, environ)
    if planned is None:
        return None
    assignments, unsets, delivered = planned
    text = shells.render_checked(assignments, unsets, shell=shell)
    if options.get("hook"):
        text += generation_text(record, checked_at, shell, environ)
    _audit(record, profile, "env", delivered)
    return text


def _holds_none_of(record: Record, environ) -> bool:
    """Whether ``plan`` would see an environment without any stored name and without a refresh marker: then it
    gives what ``prepare_clean`` wrote (the one other thing it reads, ``WANDB_USERNAME``, only silences a warning
    that ``prepare_clean`` found not due)."""
    return not marker.all_variables(environ) and not record.stores_any(environ)


def _layers_readable(record: Record) -> bool:
    """Decode the layers now (they are authenticated: a failure is a format this version does not read)."""
    try:
        record.layers  # noqa: B018 - decodes on first use
    except (ValueError, IndexError):
        return False
    return True


def prepare_clean(record: Record, shell: str) -> None:
    """Fill ``record.clean`` (what a plain ``env`` prints for ``shell`` into an environment that holds none of the
    stored names and no refresh marker) and the end of its audit line; nothing when ``plan`` defers such an
    ``env`` to the full road (a warning is due)."""
    planned = plan(record, {})
    if planned is None:
        return
    assignments, unsets, delivered = planned
    from credstore import audit, shells

    record.clean = shells.render_checked(assignments, unsets, shell=shell).encode("utf-8", "surrogateescape")
    tail = audit.line_tail("env", **_audit_fields(record, record.profile, "env", delivered))
    record.audit_tail = tail.encode("utf-8", "surrogateescape")
    record.shell = shell


def _usable(profile_arg: str | None, tokens: list, sets: list, service: str | None, environ):
    """(record, profile) when the cache may answer a plain request for ``service``, else None."""
    if tokens or sets:
        return None
    profile = profile_of(profile_arg, environ)
    if profile is None:
        return None
    record = load(profile, environ)
    if record is None or (service or "") != (record.service if record.service_chosen else ""):
        return None
    if not _layers_readable(record):
        return None
    return record, profile


def cached_exec_environment(profile_arg: str | None, options: dict, environ) -> dict[str, str] | None:
    """The environment ``credstore exec`` gives its command, from this login's render cache (as
    ``resolver/deliver.child_environment``), audited; None when the full road must run."""
    found = _usable(profile_arg, options["tokens"], options["sets"], options["service"], environ)
    if found is None:
        return None
    record, profile = found
    child = dict(environ)
    planned = plan(record, child)
    if planned is None:
        return None
    assignments, unsets, delivered = planned
    for name in unsets:
        child.pop(name, None)
    child.update(assignments)
    for name in marker.all_variables(child):
        del child[name]
    _audit(record, profile, "exec", delivered, command=options["command"][0])
    return child


def cached_get(profile_arg: str | None, name: str, environ) -> str | None:
    """``credstore get NAME`` (the profile's stored value) from this login's render cache, audited; else None."""
    found = _usable(profile_arg, [], [], None, environ)
    if found is None:
        return None
    record, profile = found
    source = f"profile:{profile}"
    for layer_source, values in record.layers:
        openbao_profile = layer_source.startswith(OPENBAO_SOURCE) and layer_source != record.service_source
        mine = layer_source == source or openbao_profile
        if mine and name in values:
            _audit(record, profile, "get", {name: layer_source})
            return values[name][0]
    return None


def _audit_fields(record: Record, profile: str, event: str, delivered: dict[str, str], command: str | None = None):
    fields: dict[str, object] = {"names": sorted(delivered), "sources": delivered, "profile": profile}
    if event != "get":
        fields["service"] = record.service or None
    if command is not None:
        fields["command"] = command
    return fields


def _audit(record: Record, profile: str, event: str, delivered: dict[str, str], command: str | None = None) -> None:
    from credstore import audit

    fields = _audit_fields(record, profile, event, delivered, command)
    audit.record(event, path=os.path.join(record.home, "audit.log"), **fields)


# -- the generation marker the shell hook reads with builtins (shells/posix_hook.py) --------------------------------

GENERATION = "CREDSTORE_GENERATION"


def generation_text(record: Record | None, checked_at: float, shell: str, environ) -> str:
    """The line ``env --hook`` adds: export the token of what the shell now holds (and write the marker file), or
    unset a stale one when this profile's render is not cached."""
    from credstore import shells

    token = None if record is None else write_marker(record, checked_at)
    if token is not None:
        return shells.render([(GENERATION, token)], [], shell=shell)
    if GENERATION in environ:
        return shells.render([], [GENERATION], shell=shell)
    return ""


def write_marker(record: Record, checked_at: float) -> str | None:
    """Write ``hook-<profile>`` in the private runtime directory: the token, the expiry, the files to watch, with
    an mtime just before ``checked_at`` (when the files were found unchanged), so that any later write to them is
    newer than the marker for ``[ FILE -nt MARKER ]``. Returns the token, or None when not possible."""
    from _blake2 import blake2b

    paths = [path for path, key, _header in record.files if not key.startswith("dir:")]  # files, written to
    if any("\n" in path for path in paths):
        return None
    described = _SEP.join([record.home, record.profile, str(record.expiry), *(_SEP.join(f) for f in record.files)])
    token = blake2b(described.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
    content = f"{token}\n{record.expiry}\n" + "".join(f"{path}\n" for path in paths)
    try:
        directory = session_secret.runtime_directory()
        name = f"{directory}/hook-{record.profile}"
        temp = f"{name}.{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, content.encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
        # A write after the check has a later mtime even on a coarse (jiffy) file clock; shells compare -nt to
        # the nanosecond (bash 5.1+, zsh 5.9, fish 3). A write in the 0.1 s before only costs one more `env`.
        stamp = int((checked_at - 0.1) * 1e9)
        os.utime(temp, ns=(stamp, stamp))
        os.rename(temp, name)
    except (session_secret.SessionSecretUnavailable, OSError):
        return None
    return token


# -- writing (on the full road, after the store was read and checked) ---------------------------------------------


def capture(
    profile_source_files: list[tuple[str, bool]], directories: list[str] | tuple[str, ...] = ()
) -> list[tuple[str, str, str]]:
    """Describe files *before* they are read: a write after this shows as a mismatch (never stale data); and the
    directories whose permissions the read checks, so that a change to them sends the next request to those
    checks."""
    described = [describe_file(path, is_store) for path, is_store in profile_source_files]
    return described + [describe_directory(path) for path in directories]


def remember(record: Record, ttl_seconds: int, environ, shell: str | None = None) -> bool:
    """Keep ``record`` for this login, with what a new ``shell`` gets prepared (``prepare_clean``); False (quietly)
    where no session keyring or runtime directory exists."""
    if ttl_seconds <= 0:
        return False
    if shell is not None:
        prepare_clean(record, shell)
    name = secret_name(record.home, record.profile, environ)
    layers = encode_layers(record)
    try:
        if len(layers) >= LAYERS_APART:
            record.apart = os.urandom(8).hex()
            session_secret.put(name + _APART_SUFFIX, record.apart.encode("ascii") + layers, ttl_seconds)
            layers = b""
        else:
            record.apart = ""
            session_secret.remove(name + _APART_SUFFIX)
        session_secret.put(name, encode(record, layers), ttl_seconds)
    except (session_secret.SessionSecretUnavailable, OSError, ValueError):
        return False
    return True


def forget_all(home: str, environ) -> None:
    """``forget`` every profile of the store home ``home`` (after a write to OpenBao, whose effect on a cached
    render no local file shows)."""
    try:
        names = os.listdir(os.path.join(home, "profiles"))
    except OSError:
        return
    for profile in {name.rsplit(".", 1)[0] for name in names if name.endswith((".profile", ".store"))}:
        forget(home, profile, environ)


def forget(home: str, profile: str, environ) -> bool:
    """Remove the cached render of ``profile`` and its hook marker (``lock`` calls it). True if there was one."""
    try:  # noqa: SIM105 - no contextlib on the read path
        os.unlink(f"{session_secret.runtime_directory()}/hook-{profile}")
    except (session_secret.SessionSecretUnavailable, OSError):
        pass
    name = secret_name(home, profile, environ)
    try:
        session_secret.remove(name + _APART_SUFFIX)
        return session_secret.remove(name)
    except (OSError, ValueError):
        return False


# -- list and explain (no value is read out, so no audit line, as on the full road) -------------------------------

MASK = "********"  # resolver/layers.MASK (tests check they agree)


def cached_list_rows(profile_arg: str | None, environ) -> list[dict[str, object]] | None:
    """``credstore list``'s rows (``app/entries.list_rows``) from this login's render cache; None when the full road
    must answer (nothing cached, or an empty profile, which it words)."""
    found = _usable(profile_arg, [], [], None, environ)
    if found is None:
        return None
    record, profile = found
    source = f"profile:{profile}"
    values = next((held for layer_source, held in record.layers if layer_source == source), None)
    listing = record.listing
    if not values or listing is None or set(values) != set(listing):
        return None
    import time

    from credstore.durations import age

    now = time.time()
    return [
        {
            "profile": profile,
            "name": name,
            "service": listing[name][1] or "-",
            "secret": secret,
            "age": age(listing[name][0], now),
            "value": MASK if secret else value,
        }
        for name, (value, secret, _fp) in sorted(values.items())
    ]


def _listing_of(fields: list[str]) -> dict[str, tuple[float, str]] | None:
    count = len(fields) // 3
    try:
        columns = zip(map(float, fields[count : 2 * count]), fields[2 * count :], strict=True)
        listing = dict(zip(fields[:count], columns, strict=True))
    except ValueError:
        return None
    return listing if len(listing) == count else None


def cached_explain_rows(profile_arg: str | None, environ) -> list[dict[str, object]] | None:
    """A plain ``credstore explain``'s rows (``app/delivery.explain_rows``: every stored name, the layer that won
    and the layers it shadowed) from this login's render cache; None when the full road must answer (a service
    account in use: what its admin allowed is not cached; an OpenBao profile)."""
    found = _usable(profile_arg, [], [], None, environ)
    if found is None or found[0].service or on_openbao(found[0]):
        return None  # on OpenBao, explain asks the server (SECURITY.md): only env, exec and get take the bound
    record = found[0]
    stale = _exported_unchanged(record, environ)
    names = sorted({name for _source, values in record.layers for name in values})
    rows: list[dict[str, object]] = []
    for name in names:
        holders = [(source, values[name]) for source, values in record.layers if name in values]
        if name in environ and name not in stale and name != MARKER:
            holders.insert(0, (ENVIRONMENT, (environ[name], holders[0][1][1], "")))
        source, (value, secret, _fp) = holders[0]
        rows.append(
            {
                "name": name,
                "source": source,
                "shadowed": [held_by for held_by, _held in holders[1:]],
                "value": MASK if secret else value,
                "secret": secret,
                "allowed_by_admin": False,
            }
        )
    return rows
