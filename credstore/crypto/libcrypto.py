"""ChaCha20-Poly1305 (RFC 8439) from the system's OpenSSL ``libcrypto``, called through ``_ctypes``.

Why: ``session_secret`` keeps a large render (thousands of variables, hundreds of KiB) for the next ``credstore
env``. Its BLAKE2b keystream is made 64 bytes per Python call (about 10 µs per KiB once XOR and MAC are added);
``cryptography`` costs about 8 ms to import. The ``libcrypto`` every CPython's ``hashlib`` is built against is
already on the machine: loading it costs about 1 ms, its first cipher about 1.4 ms, and it then seals or opens
about 3 GB/s, in place, without a copy of the data. ``session_secret`` uses it only past ``AEAD_MIN`` bytes, where
that pays; the writer checks ``missing()`` first, so the reader of the same Python finds it too.

``seal`` and ``open_in_place`` are the whole interface (``EVP_*`` calls, stable from OpenSSL 1.1.0 to 3.x). The
same format is what ``cryptography``'s ``ChaCha20Poly1305`` makes (tests check both ways and RFC 8439's vector).
"""

from __future__ import annotations

try:
    import _ctypes
except ImportError:  # a Python built without libffi
    _ctypes = None  # type: ignore[assignment]

__all__ = ["TAG_LEN", "CryptoUnavailable", "missing", "open_in_place", "seal"]

TAG_LEN = 16
KEY_LEN = 32
NONCE_LEN = 12
_SONAMES = ("libcrypto.so.3", "libcrypto.so.1.1")
_CTRL_AEAD_GET_TAG = 0x10
_CTRL_AEAD_SET_TAG = 0x11


class CryptoUnavailable(OSError):
    """No usable libcrypto here (no ``_ctypes``, no library of a known name, or no ChaCha20-Poly1305 in it)."""


if _ctypes is not None:

    class _Pointer(_ctypes._SimpleCData):
        _type_ = "P"

    class _Int(_ctypes._SimpleCData):
        _type_ = "i"

    class _Char(_ctypes._SimpleCData):
        _type_ = "c"

    class _PointerFunction(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = _Pointer

    class _IntFunction(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = _Int


_POINTER_FUNCTIONS = ("EVP_CIPHER_CTX_new", "EVP_chacha20_poly1305")
_INT_FUNCTIONS = (
    "EVP_CIPHER_CTX_free",
    "EVP_CIPHER_CTX_ctrl",
    "EVP_EncryptInit_ex",
    "EVP_EncryptUpdate",
    "EVP_EncryptFinal_ex",
    "EVP_DecryptInit_ex",
    "EVP_DecryptUpdate",
    "EVP_DecryptFinal_ex",
)
_loaded: dict[str, object] = {}
_why_not: list[str] = []


def _load() -> dict[str, object]:
    if _loaded or _why_not:
        if _why_not:
            raise CryptoUnavailable(0, _why_not[0])
        return _loaded
    if _ctypes is None:
        _why_not.append("this Python has no _ctypes module (built without libffi)")
        raise CryptoUnavailable(0, _why_not[0])
    handle = None
    for soname in _SONAMES:
        try:
            handle = _ctypes.dlopen(soname)
            break
        except OSError:
            continue
    if handle is None:
        _why_not.append(f"no OpenSSL libcrypto ({' or '.join(_SONAMES)})")
        raise CryptoUnavailable(0, _why_not[0])
    try:
        for name in _POINTER_FUNCTIONS:
            _loaded[name] = _PointerFunction(_ctypes.dlsym(handle, name))
        for name in _INT_FUNCTIONS:
            _loaded[name] = _IntFunction(_ctypes.dlsym(handle, name))
    except OSError as exc:
        _loaded.clear()
        _why_not.append(f"libcrypto lacks a function: {exc}")
        raise CryptoUnavailable(0, _why_not[0]) from None
    # Every symbol can be there and the cipher still unusable: OpenSSL 3 fetches it from a provider, and a FIPS or
    # base-only configuration has none for ChaCha20-Poly1305. Set one up now, so ``missing()`` says so.
    try:
        _loaded["EVP_CIPHER_CTX_free"](_context(_loaded, True, bytes(KEY_LEN), bytes(NONCE_LEN)))  # type: ignore[operator]
    except (CryptoUnavailable, MemoryError):
        _loaded.clear()
        _why_not.append("libcrypto has no usable ChaCha20-Poly1305 (its configuration provides none)")
        raise CryptoUnavailable(0, _why_not[0]) from None
    return _loaded


def missing() -> str | None:
    """Why ChaCha20-Poly1305 from libcrypto cannot be used here (one line), or None when it can."""
    try:
        _load()
    except CryptoUnavailable as exc:
        return exc.strerror
    return None


def _context(fn: dict, encrypt: bool, key: bytes, nonce: bytes) -> object:
    if len(key) != KEY_LEN or len(nonce) != NONCE_LEN:
        raise ValueError("ChaCha20-Poly1305 takes a 32-byte key and a 12-byte nonce")
    raw = fn["EVP_CIPHER_CTX_new"]()  # type: ignore[operator]
    if not raw:
        raise MemoryError("EVP_CIPHER_CTX_new failed")
    ctx = _Pointer(raw)
    init = fn["EVP_EncryptInit_ex" if encrypt else "EVP_DecryptInit_ex"]
    if init(ctx, _Pointer(fn["EVP_chacha20_poly1305"]()), None, key, nonce) != 1:  # type: ignore[operator]
        fn["EVP_CIPHER_CTX_free"](ctx)  # type: ignore[operator]
        raise CryptoUnavailable(0, "libcrypto refused to set up ChaCha20-Poly1305")
    return ctx


def seal(key: bytes, nonce: bytes, aad: bytes, data: bytes) -> bytes:
    """``data`` encrypted, followed by the 16-byte tag over ``aad`` and the ciphertext."""
    fn = _load()
    ctx = _context(fn, True, key, nonce)
    try:
        out = bytearray(len(data) + TAG_LEN)
        view = (_Char * len(out)).from_buffer(out)
        written = (_Int * 1)()
        ok = fn["EVP_EncryptUpdate"](ctx, None, written, aad, _Int(len(aad))) == 1  # type: ignore[operator]
        ok = ok and fn["EVP_EncryptUpdate"](ctx, view, written, data, _Int(len(data))) == 1  # type: ignore[operator]
        ok = ok and fn["EVP_EncryptFinal_ex"](ctx, view, written) == 1  # type: ignore[operator]
        tag = (_Char * TAG_LEN)()
        ok = ok and fn["EVP_CIPHER_CTX_ctrl"](ctx, _Int(_CTRL_AEAD_GET_TAG), _Int(TAG_LEN), tag) == 1  # type: ignore[operator]
        if not ok:
            raise CryptoUnavailable(0, "libcrypto failed to seal")
        del view
        out[len(data) :] = tag.raw
        return bytes(out)
    finally:
        fn["EVP_CIPHER_CTX_free"](ctx)  # type: ignore[operator]


def open_in_place(key: bytes, nonce: bytes, aad: bytes, buf: bytearray, start: int, length: int) -> bool:
    """Decrypt ``buf[start:start+length]`` in place, checking the tag that follows it; True when it verifies.

    On False the bytes in that range are unspecified (partly decrypted): the caller must drop ``buf``.
    """
    fn = _load()
    if start < 0 or length < 0 or start + length + TAG_LEN > len(buf):
        raise ValueError("the buffer is shorter than the ciphertext and its tag")
    ctx = _context(fn, False, key, nonce)
    try:
        tag = bytes(buf[start + length : start + length + TAG_LEN])
        view = (_Char * length).from_buffer(buf, start) if length else None
        written = (_Int * 1)()
        scratch = (_Char * TAG_LEN)()
        ok = fn["EVP_CIPHER_CTX_ctrl"](ctx, _Int(_CTRL_AEAD_SET_TAG), _Int(TAG_LEN), tag) == 1  # type: ignore[operator]
        ok = ok and fn["EVP_DecryptUpdate"](ctx, None, written, aad, _Int(len(aad))) == 1  # type: ignore[operator]
        if view is not None:
            ok = ok and fn["EVP_DecryptUpdate"](ctx, view, written, view, _Int(length)) == 1  # type: ignore[operator]
        ok = ok and fn["EVP_DecryptFinal_ex"](ctx, scratch, written) == 1  # type: ignore[operator]
        del view
        return bool(ok)
    finally:
        fn["EVP_CIPHER_CTX_free"](ctx)  # type: ignore[operator]
