"""ChaCha20-Poly1305 from the system's libcrypto (crypto/libcrypto.py): RFC 8439's vector, agreement with
``cryptography`` both ways, and every alteration refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from credstore.crypto import libcrypto

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(libcrypto.missing() is not None, reason=f"no libcrypto here: {libcrypto.missing()}")

# RFC 8439, section 2.8.2.
KEY = bytes(range(0x80, 0xA0))
NONCE = bytes.fromhex("070000004041424344454647")
AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
PLAIN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be"
    b" it."
)
CIPHER_START = bytes.fromhex("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6")
TAG = bytes.fromhex("1ae10b594f09e26a7e902ecbd0600691")


def test_rfc_8439_vector() -> None:
    sealed = libcrypto.seal(KEY, NONCE, AAD, PLAIN)
    assert sealed[:32] == CIPHER_START
    assert sealed[-16:] == TAG
    buf = bytearray(sealed)
    assert libcrypto.open_in_place(KEY, NONCE, AAD, buf, 0, len(PLAIN)) is True
    assert bytes(buf[: len(PLAIN)]) == PLAIN


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 4096, 300 * 1024])
def test_agrees_with_cryptography_both_ways_and_opens_at_an_offset(size: int) -> None:
    key, nonce, aad, data = os.urandom(32), os.urandom(12), os.urandom(40), os.urandom(size)
    sealed = libcrypto.seal(key, nonce, aad, data)
    assert sealed == ChaCha20Poly1305(key).encrypt(nonce, data, aad)
    theirs = ChaCha20Poly1305(key).encrypt(nonce, data, aad)
    buf = bytearray(b"head" + theirs + b"tail")
    assert libcrypto.open_in_place(key, nonce, aad, buf, 4, size) is True
    assert bytes(buf[4 : 4 + size]) == data
    assert buf[:4] == b"head" and buf[-4:] == b"tail"


def test_every_alteration_is_refused() -> None:
    key, nonce, aad, data = os.urandom(32), os.urandom(12), b"header", os.urandom(1000)
    sealed = libcrypto.seal(key, nonce, aad, data)
    for bit in range(0, len(sealed) * 8, 97):
        buf = bytearray(sealed)
        buf[bit // 8] ^= 1 << (bit % 8)
        assert libcrypto.open_in_place(key, nonce, aad, buf, 0, len(data)) is False, bit
    others = [
        (bytes([key[0] ^ 1]) + key[1:], nonce, aad),
        (key, bytes([nonce[0] ^ 1]) + nonce[1:], aad),
        (key, nonce, aad + b"x"),
        (key, nonce, b""),
    ]
    for k, n, a in others:
        assert libcrypto.open_in_place(k, n, a, bytearray(sealed), 0, len(data)) is False
    # the tag must follow the ciphertext: a length that does not match is refused, a short buffer is an error
    assert libcrypto.open_in_place(key, nonce, aad, bytearray(sealed), 0, len(data) - 1) is False
    with pytest.raises(ValueError):
        libcrypto.open_in_place(key, nonce, aad, bytearray(sealed), 0, len(data) + 1)
    with pytest.raises(ValueError):
        libcrypto.seal(key[:16], nonce, aad, data)
    with pytest.raises(ValueError):
        libcrypto.seal(key, nonce[:8], aad, data)


def test_missing_says_why_in_one_line_when_there_is_no_library() -> None:
    code = (
        "from credstore.crypto import libcrypto\n"
        "libcrypto._SONAMES = ('libcrypto.so.0-not-here',)\n"
        "print(libcrypto.missing())\n"
        "try:\n"
        "    libcrypto.seal(bytes(32), bytes(12), b'', b'x')\n"
        "except libcrypto.CryptoUnavailable as exc:\n"
        "    print('raised', exc.strerror)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "no OpenSSL libcrypto (libcrypto.so.0-not-here)",
        "raised no OpenSSL libcrypto (libcrypto.so.0-not-here)",
    ]
