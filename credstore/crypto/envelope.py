"""The store file format, versions 1 and 2 (specified in docs/FORMAT.md).

    v1: file = MAGIC  version:u16  field*9  payload_len:u32  ciphertext           (one key-encryption key)
    v2: file = MAGIC  version:u16  field(aead) field(store_id) field(generation)
               slot_count:u16  slot*  field(payload_salt) field(payload_nonce)  payload_len:u32  ciphertext
        slot = field(slot_id:u16) field(kind) field(params) field(created:u64) field(wrap_nonce) field(wrapped_dek)
    field = len:u16  bytes

A random 256-bit data key (DEK) encrypts the profile as one ChaCha20-Poly1305 message under a per-save key
HKDF-SHA256(DEK, salt=payload_salt), with every header byte as associated data, so no header field can be changed,
swapped between stores or downgraded unnoticed. The DEK is wrapped once per *key slot* (version 2; LUKS-style) by a
key-encryption key (KEK) that the slot's protection level provides (``crypto/protection.py``); any one slot opens the
store. A wrap binds the store id, the slot id, the level and its parameters but not the generation, so a save never
needs a KEK again (an unlocked session only holds the DEK).

A version 1 file reads as one implicit slot with id 0, whose wrap keeps version 1's associated data; writes are
always version 2 (slot 0 keeps its wrap bytes, so migrating needs no KEK).

Failures are told apart: an unwrap that fails is ``AuthError`` (wrong key or passphrase), a payload that fails is
``CorruptStoreError``, an unknown version or algorithm is ``UnsupportedFormatError``.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile string annotations (see store/base).

import os
import struct
from typing import NamedTuple

from credstore.errors import AuthError, CorruptStoreError, UnsupportedFormatError

MAGIC = b"CREDSTOR"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
AEAD_ID = b"chacha20-poly1305"
KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16
SALT_LEN = 32
STORE_ID_LEN = 16
SLOT_ID_LEN = 2
MAX_SLOTS = 32
#: Slot id of a version 1 store's only key-encryption key (its wrap keeps version 1's associated data).
LEGACY_SLOT_ID = 0
MAX_FILE_SIZE = 64 * 1024 * 1024  # a bigger file is refused before any work is done
_HKDF_INFO = b"credstore v1 payload key"


class Slot(NamedTuple):
    """One wrap of the DEK: ``kind`` is the protection level, ``params`` its parameters (never secret)."""

    slot_id: int
    kind: str
    params: bytes
    created: int
    wrap_nonce: bytes
    wrapped_dek: bytes

    def __repr__(self) -> str:
        return f"Slot(slot_id={self.slot_id}, kind={self.kind!r})"

    @property
    def id_bytes(self) -> bytes:
        return struct.pack(">H", self.slot_id)


class Header(NamedTuple):
    store_id: bytes
    generation: int
    slots: tuple
    payload_salt: bytes
    payload_nonce: bytes
    aead: bytes = AEAD_ID
    version: int = FORMAT_VERSION

    def __repr__(self) -> str:
        kinds = "+".join(slot.kind for slot in self.slots)
        return f"Header(store_id={self.store_id.hex()}, generation={self.generation}, slots={kinds!r})"

    # The first slot, for callers that know a store has one (service stores, single-slot tests).
    @property
    def kek_kind(self) -> str:
        return self.slots[0].kind

    @property
    def kek_params(self) -> bytes:
        return self.slots[0].params

    @property
    def wrap_nonce(self) -> bytes:
        return self.slots[0].wrap_nonce

    @property
    def wrapped_dek(self) -> bytes:
        return self.slots[0].wrapped_dek

    def replace(self, **changes: object) -> "Header":
        """``_replace`` that also takes version 1's names for the first slot's fields (``kek_kind``, ``kek_params``,
        ``wrap_nonce``, ``wrapped_dek``): for tests and tools that forge headers."""
        legacy = {"kek_kind": "kind", "kek_params": "params", "wrap_nonce": "wrap_nonce", "wrapped_dek": "wrapped_dek"}
        slot_changes = {legacy[name]: changes.pop(name) for name in list(changes) if name in legacy}
        header = self._replace(**changes)  # type: ignore[arg-type]
        if slot_changes:
            first = header.slots[0]._replace(**slot_changes)  # type: ignore[arg-type]
            header = header._replace(slots=(first, *header.slots[1:]))
        return header

    def slot(self, slot_id: int) -> Slot:
        for slot in self.slots:
            if slot.slot_id == slot_id:
                return slot
        raise KeyError(slot_id)

    def with_slot(self, slot: Slot) -> "Header":
        """This header with ``slot`` replacing the slot of the same id (or added), slots kept in id order."""
        others = [s for s in self.slots if s.slot_id != slot.slot_id]
        return self._replace(slots=tuple(sorted([*others, slot], key=lambda s: s.slot_id)))

    def without_slot(self, slot_id: int) -> "Header":
        return self._replace(slots=tuple(s for s in self.slots if s.slot_id != slot_id))

    def next_slot_id(self) -> int:
        return max((s.slot_id for s in self.slots), default=0) + 1

    def wrap_ad(self, slot: Slot | None = None) -> bytes:
        """Associated data of a DEK wrap: what identifies the store and the slot's KEK, but not the generation."""
        slot = self.slots[0] if slot is None else slot
        if slot.slot_id == LEGACY_SLOT_ID:  # version 1's wrap, kept as it was
            return MAGIC + struct.pack(">H", 1) + _fields([self.aead, self.store_id, slot.kind.encode(), slot.params])
        return (
            MAGIC
            + struct.pack(">H", 2)
            + _fields([self.aead, self.store_id, slot.id_bytes, slot.kind.encode(), slot.params])
        )

    def encode(self) -> bytes:
        head = MAGIC + struct.pack(">H", self.version)
        if self.version == 1:
            (slot,) = self.slots
            return head + _fields(
                [
                    self.aead,
                    self.store_id,
                    struct.pack(">Q", self.generation),
                    slot.kind.encode(),
                    slot.params,
                    slot.wrap_nonce,
                    slot.wrapped_dek,
                    self.payload_salt,
                    self.payload_nonce,
                ]
            )
        out = head + _fields([self.aead, self.store_id, struct.pack(">Q", self.generation)])
        out += struct.pack(">H", len(self.slots))
        for slot in self.slots:
            out += _fields(
                [
                    slot.id_bytes,
                    slot.kind.encode(),
                    slot.params,
                    struct.pack(">Q", slot.created),
                    slot.wrap_nonce,
                    slot.wrapped_dek,
                ]
            )
        return out + _fields([self.payload_salt, self.payload_nonce])


def _fields(items: list[bytes]) -> bytes:
    out = bytearray()
    for item in items:
        if len(item) > 0xFFFF:
            raise ValueError("header field too long")
        out += struct.pack(">H", len(item)) + item
    return bytes(out)


def _aead(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return ChaCha20Poly1305(key)


def _payload_key(dek: bytes, salt: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) for one 32-byte block, written out so the hot path needs no KDF module.

    Equal to ``cryptography``'s ``HKDF(SHA256(), 32, salt, info).derive(dek)`` (checked in tests/test_envelope.py).
    """
    from credstore.crypto.primitives import hmac_sha256

    prk = hmac_sha256(salt, dek)
    return hmac_sha256(prk, _HKDF_INFO + b"\x01")


def _now() -> int:
    import time

    return int(time.time())


def new_store_id() -> bytes:
    return os.urandom(STORE_ID_LEN)


def new_dek() -> bytes:
    return os.urandom(KEY_LEN)


def empty_header(store_id: bytes | None = None) -> Header:
    """A header with no slot yet (add them with :func:`wrap_slot`), generation 0."""
    return Header(
        store_id=new_store_id() if store_id is None else store_id,
        generation=0,
        slots=(),
        payload_salt=b"",
        payload_nonce=b"",
    )


def new_header(kek: bytes, kek_kind: str, kek_params: bytes, dek: bytes | None = None) -> tuple[Header, bytes]:
    """A header for a new store (generation 0, one slot with id 1) and its fresh DEK (or ``dek``)."""
    dek = dek if dek is not None else new_dek()
    header = wrap_slot(empty_header(), 1, kek, kek_kind, kek_params, dek)
    return header, dek


def wrap_slot(
    header: Header, slot_id: int, kek: bytes, kind: str, params: bytes, dek: bytes, created: int | None = None
) -> Header:
    """``header`` with slot ``slot_id`` (added or replaced) wrapping ``dek`` under ``kek``; the header becomes a
    version 2 header."""
    if not 1 <= slot_id <= 0xFFFF:
        raise ValueError("slot ids of new slots are 1..65535")
    slot = Slot(slot_id, kind, params, _now() if created is None else created, b"", b"")
    header = header._replace(version=FORMAT_VERSION)
    nonce = os.urandom(NONCE_LEN)
    wrapped = _aead(kek).encrypt(nonce, dek, header.wrap_ad(slot))
    return header.with_slot(slot._replace(wrap_nonce=nonce, wrapped_dek=wrapped))


def unwrap_slot(header: Header, slot: Slot, kek: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return _aead(kek).decrypt(slot.wrap_nonce, slot.wrapped_dek, header.wrap_ad(slot))
    except InvalidTag:
        raise AuthError(
            f"cannot open key slot {slot.slot_id} ({slot.kind}): wrong passphrase or key (or its header was tampered "
            "with)"
        ) from None


def unwrap_dek(header: Header, kek: bytes) -> bytes:
    """The DEK from the first slot (single-slot stores: service accounts, tests)."""
    try:
        return unwrap_slot(header, header.slots[0], kek)
    except AuthError:
        raise AuthError("cannot unlock the store: wrong passphrase or key (or its header was tampered with)") from None


def seal(header: Header, dek: bytes, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` as the store's payload with a fresh salt; the header's generation is used as given.
    Always written as version 2 (a version 1 store is migrated here: its slot 0 keeps its wrap)."""
    if not 1 <= len(header.slots) <= MAX_SLOTS:
        raise ValueError(f"a store has 1 to {MAX_SLOTS} key slots")
    header = header._replace(
        version=FORMAT_VERSION, payload_salt=os.urandom(SALT_LEN), payload_nonce=os.urandom(NONCE_LEN)
    )
    head = header.encode()
    ciphertext = _aead(_payload_key(dek, header.payload_salt)).encrypt(
        header.payload_nonce, plaintext, head + struct.pack(">I", len(plaintext) + TAG_LEN)
    )
    return head + struct.pack(">I", len(ciphertext)) + ciphertext


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def u16(self) -> int:
        if len(self.data) < self.pos + 2:
            raise CorruptStoreError("store file is truncated")
        (value,) = struct.unpack_from(">H", self.data, self.pos)
        self.pos += 2
        return value

    def field(self) -> bytes:
        length = self.u16()
        if len(self.data) < self.pos + length:
            raise CorruptStoreError("store file is truncated")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value


def _ascii_kind(raw: bytes) -> str:
    try:
        kind = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptStoreError("store header is malformed (protection kind)") from None
    if not kind:
        raise CorruptStoreError("store header is malformed (protection kind)")
    return kind


def _check_lengths(expected: dict[str, tuple[bytes, int]]) -> None:
    for what, (value, size) in expected.items():
        if len(value) != size:
            raise CorruptStoreError(f"store header is malformed ({what})")


def parse(data: bytes) -> tuple[Header, bytes, bytes]:
    """Split a store file into (header, associated data, ciphertext), strictly: no trailing bytes, exact lengths,
    canonical encoding, distinct slot ids in increasing order."""
    if len(data) > MAX_FILE_SIZE:
        raise CorruptStoreError(f"store file is larger than {MAX_FILE_SIZE} bytes")
    if not data.startswith(MAGIC):
        raise CorruptStoreError("not a credstore store file (bad magic)")
    reader = _Reader(data, len(MAGIC))
    version = reader.u16()
    if version not in READABLE_VERSIONS:
        raise UnsupportedFormatError(
            f"store format version {version} is not supported (this credstore reads versions 1 and 2)"
        )
    aead, store_id, generation = reader.field(), reader.field(), reader.field()
    if version == 1:
        kind, params, wrap_nonce, wrapped_dek = reader.field(), reader.field(), reader.field(), reader.field()
        raw_slots = [(struct.pack(">H", LEGACY_SLOT_ID), kind, params, bytes(8), wrap_nonce, wrapped_dek)]
    else:
        count = reader.u16()
        raw_slots = [tuple(reader.field() for _ in range(6)) for _ in range(min(count, MAX_SLOTS + 1))]
    payload_salt, payload_nonce = reader.field(), reader.field()
    if aead != AEAD_ID:
        raise UnsupportedFormatError("store uses an unsupported cipher")
    _check_lengths(
        {
            "store id": (store_id, STORE_ID_LEN),
            "generation": (generation, 8),
            "payload salt": (payload_salt, SALT_LEN),
            "payload nonce": (payload_nonce, NONCE_LEN),
        }
    )
    if not 1 <= len(raw_slots) <= MAX_SLOTS:
        raise CorruptStoreError(f"store header is malformed (a store has 1 to {MAX_SLOTS} key slots)")
    slots: list[Slot] = []
    for raw_id, kind, params, created, wrap_nonce, wrapped_dek in raw_slots:
        _check_lengths(
            {
                "slot id": (raw_id, SLOT_ID_LEN),
                "slot time": (created, 8),
                "wrap nonce": (wrap_nonce, NONCE_LEN),
                "wrapped key": (wrapped_dek, KEY_LEN + TAG_LEN),
            }
        )
        slot_id = struct.unpack(">H", raw_id)[0]
        if slots and slot_id <= slots[-1].slot_id:
            what = "duplicate key slot id" if slot_id == slots[-1].slot_id else "key slots out of order"
            raise CorruptStoreError(f"store header is malformed ({what} {slot_id})")
        slots.append(Slot(slot_id, _ascii_kind(kind), params, struct.unpack(">Q", created)[0], wrap_nonce, wrapped_dek))
    head = data[: reader.pos]
    pos = reader.pos
    if len(data) < pos + 4:
        raise CorruptStoreError("store file is truncated")
    (payload_len,) = struct.unpack_from(">I", data, pos)
    ad = data[: pos + 4]
    pos += 4
    if len(data) != pos + payload_len:
        raise CorruptStoreError("store file is truncated or has trailing bytes")
    if payload_len < TAG_LEN:
        raise CorruptStoreError("store payload is truncated")
    header = Header(
        store_id=store_id,
        generation=struct.unpack(">Q", generation)[0],
        slots=tuple(slots),
        payload_salt=payload_salt,
        payload_nonce=payload_nonce,
        version=version,
    )
    if header.encode() != head:  # canonical encoding only
        raise CorruptStoreError("store header is not canonical")
    return header, ad, data[pos:]


def open_payload(header: Header, ad: bytes, ciphertext: bytes, dek: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return _aead(_payload_key(dek, header.payload_salt)).decrypt(header.payload_nonce, ciphertext, ad)
    except InvalidTag:
        raise CorruptStoreError("store is corrupt or has been tampered with (authentication failed)") from None
