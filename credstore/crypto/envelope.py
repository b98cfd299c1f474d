"""The store file format, version 1 (specified in docs/FORMAT.md).

    file    = MAGIC  version:u16  field*9  payload_len:u32  ciphertext
    field   = len:u16  bytes            (fields in the fixed order of ``Header``)

A random 256-bit data key (DEK) encrypts the profile as one ChaCha20-Poly1305 message under a per-save key
HKDF-SHA256(DEK, salt=payload_salt), with every header byte as associated data, so no header field can be changed,
swapped between stores or downgraded unnoticed. The DEK is wrapped by a key-encryption key (KEK) that the protection
level provides (``crypto/protection.py``); the wrap binds the store id and the KEK parameters but not the
generation, so a save never needs the KEK again (an unlocked session only holds the DEK).

Failures are told apart: an unwrap that fails is ``AuthError`` (wrong key or passphrase), a payload that fails is
``CorruptStoreError``, an unknown version or algorithm is ``UnsupportedFormatError``.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile string annotations (see store/base).

import os
import struct
from typing import NamedTuple

from credstore.errors import AuthError, CorruptStoreError, UnsupportedFormatError

MAGIC = b"CREDSTOR"
FORMAT_VERSION = 1
AEAD_ID = b"chacha20-poly1305"
KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16
SALT_LEN = 32
STORE_ID_LEN = 16
MAX_FILE_SIZE = 64 * 1024 * 1024  # a bigger file is refused before any work is done
_HKDF_INFO = b"credstore v1 payload key"


class Header(NamedTuple):
    store_id: bytes
    generation: int
    kek_kind: str
    kek_params: bytes
    wrap_nonce: bytes
    wrapped_dek: bytes
    payload_salt: bytes
    payload_nonce: bytes
    aead: bytes = AEAD_ID
    version: int = FORMAT_VERSION

    def __repr__(self) -> str:
        return f"Header(store_id={self.store_id.hex()}, generation={self.generation}, kek_kind={self.kek_kind!r})"

    def wrap_ad(self) -> bytes:
        """Associated data of the DEK wrap: everything that identifies the store and its KEK, but not the generation."""
        return (
            MAGIC
            + struct.pack(">H", self.version)
            + _fields([self.aead, self.store_id, self.kek_kind.encode(), self.kek_params])
        )

    def encode(self) -> bytes:
        return (
            MAGIC
            + struct.pack(">H", self.version)
            + _fields(
                [
                    self.aead,
                    self.store_id,
                    struct.pack(">Q", self.generation),
                    self.kek_kind.encode(),
                    self.kek_params,
                    self.wrap_nonce,
                    self.wrapped_dek,
                    self.payload_salt,
                    self.payload_nonce,
                ]
            )
        )


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


def new_header(kek: bytes, kek_kind: str, kek_params: bytes, dek: bytes | None = None) -> tuple[Header, bytes]:
    """A header for a new store (generation 0) and its fresh DEK (or ``dek`` re-wrapped under a new KEK)."""
    dek = dek if dek is not None else os.urandom(KEY_LEN)
    header = Header(
        store_id=os.urandom(STORE_ID_LEN),
        generation=0,
        kek_kind=kek_kind,
        kek_params=kek_params,
        wrap_nonce=b"",
        wrapped_dek=b"",
        payload_salt=b"",
        payload_nonce=b"",
    )
    return rewrap(header, kek, kek_kind, kek_params, dek), dek


def rewrap(header: Header, kek: bytes, kek_kind: str, kek_params: bytes, dek: bytes) -> Header:
    """The same store and DEK, wrapped under another KEK (passphrase change, protection level change)."""
    header = header._replace(kek_kind=kek_kind, kek_params=kek_params)
    nonce = os.urandom(NONCE_LEN)
    wrapped = _aead(kek).encrypt(nonce, dek, header.wrap_ad())
    return header._replace(wrap_nonce=nonce, wrapped_dek=wrapped)


def unwrap_dek(header: Header, kek: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    try:
        return _aead(kek).decrypt(header.wrap_nonce, header.wrapped_dek, header.wrap_ad())
    except InvalidTag:
        raise AuthError("cannot unlock the store: wrong passphrase or key (or its header was tampered with)") from None


def seal(header: Header, dek: bytes, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` as the store's payload with a fresh salt; the header's generation is used as given."""
    header = header._replace(payload_salt=os.urandom(SALT_LEN), payload_nonce=os.urandom(NONCE_LEN))
    head = header.encode()
    ciphertext = _aead(_payload_key(dek, header.payload_salt)).encrypt(
        header.payload_nonce, plaintext, head + struct.pack(">I", len(plaintext) + TAG_LEN)
    )
    return head + struct.pack(">I", len(ciphertext)) + ciphertext


def parse(data: bytes) -> tuple[Header, bytes, bytes]:
    """Split a store file into (header, associated data, ciphertext), strictly: no trailing bytes, exact lengths."""
    if len(data) > MAX_FILE_SIZE:
        raise CorruptStoreError(f"store file is larger than {MAX_FILE_SIZE} bytes")
    if not data.startswith(MAGIC):
        raise CorruptStoreError("not a credstore store file (bad magic)")
    pos = len(MAGIC)
    if len(data) < pos + 2:
        raise CorruptStoreError("store file is truncated")
    (version,) = struct.unpack_from(">H", data, pos)
    pos += 2
    if version != FORMAT_VERSION:
        raise UnsupportedFormatError(f"store format version {version} is not supported (this credstore reads 1)")
    fields: list[bytes] = []
    for _ in range(9):
        if len(data) < pos + 2:
            raise CorruptStoreError("store file is truncated")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if len(data) < pos + length:
            raise CorruptStoreError("store file is truncated")
        fields.append(data[pos : pos + length])
        pos += length
    aead, store_id, generation, kek_kind, kek_params, wrap_nonce, wrapped_dek, payload_salt, payload_nonce = fields
    if aead != AEAD_ID:
        raise UnsupportedFormatError("store uses an unsupported cipher")
    expected = {
        "store id": (store_id, STORE_ID_LEN),
        "generation": (generation, 8),
        "wrap nonce": (wrap_nonce, NONCE_LEN),
        "wrapped key": (wrapped_dek, KEY_LEN + TAG_LEN),
        "payload salt": (payload_salt, SALT_LEN),
        "payload nonce": (payload_nonce, NONCE_LEN),
    }
    for what, (value, size) in expected.items():
        if len(value) != size:
            raise CorruptStoreError(f"store header is malformed ({what})")
    try:
        kind = kek_kind.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptStoreError("store header is malformed (protection kind)") from None
    if len(data) < pos + 4:
        raise CorruptStoreError("store file is truncated")
    head = data[:pos]
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
        kek_kind=kind,
        kek_params=kek_params,
        wrap_nonce=wrap_nonce,
        wrapped_dek=wrapped_dek,
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
