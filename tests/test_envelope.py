"""Unit tests of the store format: round trip, wrong key, tampering, versions, canonical parsing."""

from __future__ import annotations

import os
import struct

import pytest

from credstore.crypto import envelope
from credstore.errors import AuthError, CorruptStoreError, UnsupportedFormatError


def make(plaintext: bytes = b'{"x":1}', generation: int = 3) -> tuple[bytes, bytes, bytes]:
    kek = os.urandom(32)
    header, dek = envelope.new_header(kek, "keyfile", b"")
    data = envelope.seal(header._replace(generation=generation), dek, plaintext)
    return data, kek, dek


def test_round_trip_through_kek_and_dek() -> None:
    data, kek, _ = make(b"hello")
    header, ad, ct = envelope.parse(data)
    assert header.generation == 3
    dek = envelope.unwrap_dek(header, kek)
    assert envelope.open_payload(header, ad, ct, dek) == b"hello"


def test_each_save_uses_a_fresh_salt_and_nonce() -> None:
    kek = os.urandom(32)
    header, dek = envelope.new_header(kek, "keyfile", b"")
    a = envelope.seal(header, dek, b"same")
    b = envelope.seal(header, dek, b"same")
    assert a != b
    ha, hb = envelope.parse(a)[0], envelope.parse(b)[0]
    assert ha.payload_salt != hb.payload_salt and ha.payload_nonce != hb.payload_nonce


def test_wrong_kek_is_an_auth_error() -> None:
    data, _, _ = make()
    header, _, _ = envelope.parse(data)
    with pytest.raises(AuthError):
        envelope.unwrap_dek(header, os.urandom(32))


def test_generation_is_authenticated() -> None:
    data, kek, _ = make(generation=5)
    header, _, _ = envelope.parse(data)
    # Rewrite the generation field in place (offset: magic, version, aead field, store id field, length prefix).
    off = len(envelope.MAGIC) + 2 + 2 + len(envelope.AEAD_ID) + 2 + 16 + 2
    forged = data[:off] + struct.pack(">Q", 9) + data[off + 8 :]
    fheader, fad, fct = envelope.parse(forged)
    assert fheader.generation == 9
    dek = envelope.unwrap_dek(fheader, kek)  # the wrap does not bind the generation ...
    with pytest.raises(CorruptStoreError):  # ... but the payload does
        envelope.open_payload(fheader, fad, fct, dek)


def test_unknown_version_and_bad_magic() -> None:
    data, _, _ = make()
    for version in (0, 3, 0xFFFF):  # 1 and 2 are read
        with pytest.raises(UnsupportedFormatError):
            envelope.parse(data[:8] + struct.pack(">H", version) + data[10:])
    with pytest.raises(CorruptStoreError):
        envelope.parse(b"NOTASTOR" + data[8:])


def test_trailing_bytes_and_truncation_are_corrupt() -> None:
    data, _, _ = make()
    with pytest.raises(CorruptStoreError):
        envelope.parse(data + b"\0")
    for cut in (0, 5, 10, 40, len(data) - 1):
        with pytest.raises(CorruptStoreError):
            envelope.parse(data[:cut])


def test_header_repr_hides_key_material() -> None:
    data, _, _ = make()
    header, _, _ = envelope.parse(data)
    text = repr(header)
    assert header.wrapped_dek.hex() not in text and "wrapped_dek" not in text


def test_stdlib_hkdf_matches_cryptography() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    for _ in range(20):
        dek, salt = os.urandom(32), os.urandom(32)
        expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=envelope._HKDF_INFO).derive(dek)
        assert envelope._payload_key(dek, salt) == expected
