#!/usr/bin/env python3
"""Generate the store-format test vectors in tests/vectors/ (see docs/FORMAT.md, "Test vectors").

Run from the repository root: ``python3 scripts/make_vectors.py``. Randomness comes from a seeded generator, so a run
is reproducible byte for byte with the same code. Vectors of a released format version are never regenerated:
existing files are kept unless ``--force`` is given, and a new format version adds a new directory (v2/, ...) while
v1/ stays as it is, so ``tests/test_tamper.py::test_format_vectors`` proves every released version keeps opening.

Each vector is listed in tests/vectors/manifest.json with the error class a reader must raise (or "ok" and the
expected entries and generation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from credstore.crypto import envelope  # noqa: E402
from credstore.store.base import Entry, Snapshot  # noqa: E402
from credstore.store.local import LocalStore  # noqa: E402
from credstore.store.payload import encode_payload  # noqa: E402

OUT = ROOT / "tests" / "vectors"
FIXED_TIME = 1767225600.0  # 2026-01-01T00:00:00Z


class SeededRandom:
    """A deterministic stand-in for os.urandom (SHA-256 in counter mode). For test vectors only."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self.seed + struct.pack(">Q", self.counter)).digest()
            self.counter += 1
        return out[:n]


BASIC_ENTRIES = {
    "WANDB_API_KEY": ("0123456789abcdef0123456789abcdef01234567", True),
    "WANDB_ENTITY": ("vector-team", False),
    "HF_TOKEN": ("hf_VectorTokenForFormatTestsOnly0000", True),
    "MULTI_LINE": ('first line\nsecond line\t"quoted" $HOME `cmd`', True),
    "UNICODE": ("päss wörd ✓ 鍵", True),
}


def make_store(home: Path, seed: bytes, entries: dict[str, tuple[str, bool]], saves: int) -> LocalStore:
    os.urandom = SeededRandom(seed)  # type: ignore[assignment]
    home.mkdir(mode=0o700)
    store = LocalStore(home, "default", state_dir=home / "state")
    store.create("keyfile")
    items = list(entries.items())
    for i in range(saves):
        chunk = items[i::saves] if saves else []

        def change(snapshot: Snapshot, chunk=chunk) -> None:
            for name, (value, secret) in chunk:
                snapshot.entries[name] = Entry(name, value, secret, created=FIXED_TIME, updated=FIXED_TIME)

        store.modify(change)
    return store


VECTOR_PASSPHRASE = "vector passphrase: not a secret ✓"
PASSPHRASE_ENTRIES = {
    "WANDB_API_KEY": ("fedcba9876543210fedcba9876543210fedcba98", True),
    "WANDB_ENTITY": ("vector-team", False),
}


def make_passphrase_store(home: Path, seed: bytes) -> LocalStore:
    """A passphrase-level store at the OWASP floor (m = 19 MiB, t = 2, p = 1): cheap to open in a test."""
    from credstore.crypto import passphrase

    os.urandom = SeededRandom(seed)  # type: ignore[assignment]
    home.mkdir(mode=0o700)
    saved = os.environ.get(passphrase.WEAK_KDF_ENV)
    os.environ[passphrase.WEAK_KDF_ENV] = "1"
    try:
        store = LocalStore(
            home, "default", state_dir=home / "state", interactive=True, ask_passphrase=lambda _: VECTOR_PASSPHRASE
        )
        store.create("passphrase")

        def change(snapshot: Snapshot) -> None:
            for name, (value, secret) in PASSPHRASE_ENTRIES.items():
                snapshot.entries[name] = Entry(name, value, secret, created=FIXED_TIME, updated=FIXED_TIME)

        store.modify(change)
    finally:
        if saved is None:
            os.environ.pop(passphrase.WEAK_KDF_ENV, None)
        else:
            os.environ[passphrase.WEAK_KDF_ENV] = saved
    return store


def passphrase_vectors(work: Path, files: dict[str, bytes]) -> list[dict]:
    """One good passphrase-level store, and its header with KDF parameters beyond the cap / below the floor, and
    the good store with a wrong passphrase."""
    from credstore.crypto import passphrase

    real_urandom = os.urandom
    try:
        store = make_passphrase_store(work / "passphrase", b"credstore vector v1 passphrase")
    finally:
        os.urandom = real_urandom  # type: ignore[assignment]
    data = store.path.read_bytes()
    header, _, _ = envelope.parse(data)
    memory_kib, iterations, lanes, salt = passphrase.decode_params(header.kek_params)
    assert (memory_kib, iterations, lanes) == passphrase.FLOOR

    def params(m: int, t: int, p: int) -> bytes:
        return struct.pack(">BIII", passphrase.ALGORITHM_ARGON2ID, m, t, p) + salt

    files["v1/passphrase-basic.store"] = data
    files["v1/bad-passphrase-wrong.store"] = data  # the same bytes, listed with a wrong passphrase
    files["v1/bad-passphrase-memory-over-cap.store"] = reencode(data, kek_params=params(4 * 1024 * 1024, 2, 1))
    files["v1/bad-passphrase-iterations-over-cap.store"] = reencode(data, kek_params=params(19 * 1024, 1000, 1))
    files["v1/bad-passphrase-below-floor.store"] = reencode(data, kek_params=params(8 * 1024, 1, 1))
    base = {"key": None, "format_version": 1, "passphrase": VECTOR_PASSPHRASE}
    return [
        {
            **base,
            "file": "v1/passphrase-basic.store",
            "expect": "ok",
            "generation": 1,
            "entries": {name: value for name, (value, _) in PASSPHRASE_ENTRIES.items()},
            "description": "passphrase level (Argon2id m=19456 KiB t=2 p=1, the floor), two entries, generation 1",
        },
        {
            **base,
            "file": "v1/bad-passphrase-wrong.store",
            "passphrase": VECTOR_PASSPHRASE + " (wrong)",
            "expect": "AuthError",
            "description": "the good passphrase store opened with a wrong passphrase",
        },
        {
            **base,
            "file": "v1/bad-passphrase-memory-over-cap.store",
            "expect": "UnsupportedFormatError",
            "description": "Argon2id memory 4 GiB, above the 1 GiB cap: refused before any work",
        },
        {
            **base,
            "file": "v1/bad-passphrase-iterations-over-cap.store",
            "expect": "UnsupportedFormatError",
            "description": "Argon2id t=1000, above the cap of 10: refused before any work",
        },
        {
            **base,
            "file": "v1/bad-passphrase-below-floor.store",
            "expect": "CorruptStoreError",
            "description": "Argon2id m=8 MiB t=1, below the floor credstore ever writes",
        },
    ]


def header_end(data: bytes) -> int:
    """Offset of payload_len (the end of the header proper)."""
    pos = len(envelope.MAGIC) + 2
    for _ in range(9):
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2 + length
    return pos


def reencode(data: bytes, **changes: object) -> bytes:
    """The same file with header fields changed (the payload is left as it is, so it no longer authenticates)."""
    header, _, _ = envelope.parse(data)
    head = header._replace(**changes).encode()
    return head + data[header_end(data) :]


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def field_offset(data: bytes, field: int) -> int:
    """Offset of the first content byte of header field number ``field`` (0 = aead)."""
    pos = len(envelope.MAGIC) + 2
    for _ in range(field):
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2 + length
    return pos + 2


def build(work: Path) -> list[dict]:
    real_urandom = os.urandom
    try:
        basic = make_store(work / "basic", b"credstore vector v1 basic", BASIC_ENTRIES, 3)
        empty = make_store(work / "empty", b"credstore vector v1 empty", {}, 0)
        other = make_store(work / "other", b"credstore vector v1 other", {"A": ("other", True)}, 1)
    finally:
        os.urandom = real_urandom  # type: ignore[assignment]
    data = basic.path.read_bytes()
    key = basic.path.with_suffix(".key").read_bytes()
    other_data = other.path.read_bytes()
    other_key = other.path.with_suffix(".key").read_bytes()
    body = header_end(data)
    files: dict[str, bytes] = {
        "v1/keyfile-basic.store": data,
        "v1/keyfile-basic.key": key,
        "v1/keyfile-empty.store": empty.path.read_bytes(),
        "v1/keyfile-empty.key": empty.path.with_suffix(".key").read_bytes(),
        "v1/other.key": other_key,
    }
    ok_entries = {name: value for name, (value, _) in BASIC_ENTRIES.items()}
    vectors = [
        {
            "file": "v1/keyfile-basic.store",
            "key": "v1/keyfile-basic.key",
            "format_version": 1,
            "expect": "ok",
            "generation": 3,
            "entries": ok_entries,
            "description": "key file level, five entries (secret and plain, multi-line, non-ASCII), generation 3",
        },
        {
            "file": "v1/keyfile-empty.store",
            "key": "v1/keyfile-empty.key",
            "format_version": 1,
            "expect": "ok",
            "generation": 0,
            "entries": {},
            "description": "a freshly initialised, empty store (generation 0)",
        },
    ]
    bad: list[tuple[str, bytes, str, str, str]] = [
        ("bad-magic", b"CREDSTOX" + data[8:], "basic", "CorruptStoreError", "magic changed"),
        ("version-2", data[:8] + struct.pack(">H", 2) + data[10:], "basic", "UnsupportedFormatError", "version 2"),
        ("version-0", data[:8] + struct.pack(">H", 0) + data[10:], "basic", "UnsupportedFormatError", "version 0"),
        (
            "unknown-cipher",
            reencode(data, aead=b"aes-256-gcm-siv"),
            "basic",
            "UnsupportedFormatError",
            "an AEAD id this version does not know",
        ),
        (
            "unknown-level",
            reencode(data, kek_kind="quantum"),
            "basic",
            "UnsupportedFormatError",
            "a protection level this version does not know",
        ),
        (
            "keyfile-with-params",
            reencode(data, kek_params=b"\x00"),
            "basic",
            "CorruptStoreError",
            "key file level with parameters (it has none)",
        ),
        ("truncated-header", data[:40], "basic", "CorruptStoreError", "cut inside the header"),
        ("truncated-body", data[:-1], "basic", "CorruptStoreError", "last byte of the tag missing"),
        ("trailing-byte", data + b"\0", "basic", "CorruptStoreError", "one byte appended"),
        ("empty-file", b"", "basic", "CorruptStoreError", "zero bytes"),
        ("body-flipped", flip(data, body + 4), "basic", "CorruptStoreError", "first ciphertext byte flipped"),
        ("tag-flipped", flip(data, len(data) - 1), "basic", "CorruptStoreError", "last tag byte flipped"),
        (
            "generation-changed",
            reencode(data, generation=4),
            "basic",
            "CorruptStoreError",
            "generation raised without re-sealing (bound as AD)",
        ),
        (
            "payload-salt-flipped",
            flip(data, field_offset(data, 7)),
            "basic",
            "CorruptStoreError",
            "payload salt changed",
        ),
        (
            "store-id-flipped",
            flip(data, field_offset(data, 1)),
            "basic",
            "AuthError",
            "store id changed (bound into the DEK wrap)",
        ),
        ("wrapped-key-flipped", flip(data, field_offset(data, 6)), "basic", "AuthError", "wrapped DEK changed"),
        ("wrong-key", data, "other", "AuthError", "the right store with another store's key file"),
        (
            "header-from-other-store",
            other_data[: header_end(other_data)] + data[body:],
            "basic",
            "AuthError",
            "another store's header spliced onto this body",
        ),
        (
            "body-from-other-store",
            data[:body] + other_data[header_end(other_data) :],
            "basic",
            "CorruptStoreError",
            "this header with another store's payload",
        ),
    ]
    vectors += passphrase_vectors(work, files)
    for name, content, key_name, expect, description in bad:
        path = f"v1/bad-{name}.store"
        files[path] = content
        vectors.append(
            {
                "file": path,
                "key": "v1/keyfile-basic.key" if key_name == "basic" else "v1/other.key",
                "format_version": 1,
                "expect": expect,
                "description": description,
            }
        )
    for path, content in files.items():
        (work / "out" / path).parent.mkdir(parents=True, exist_ok=True)
        (work / "out" / path).write_bytes(content)
    # Self-check: the payload of the good vector is the canonical encoding of its entries.
    header, ad, ciphertext = envelope.parse(data)
    plaintext = envelope.open_payload(header, ad, ciphertext, envelope.unwrap_dek(header, key))
    snapshot = Snapshot(
        entries={n: Entry(n, v, s, created=FIXED_TIME, updated=FIXED_TIME) for n, (v, s) in BASIC_ENTRIES.items()},
        settings=json.loads(plaintext)["settings"],
    )
    assert plaintext == encode_payload(snapshot), "payload is not canonical"
    return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--force", action="store_true", help="overwrite existing vector files (never for released ones)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="credstore-vectors-"))
    try:
        vectors = build(work)
        written = kept = 0
        for src in sorted((work / "out").rglob("*")):
            if not src.is_file():
                continue
            dest = OUT / src.relative_to(work / "out")
            if dest.exists() and not args.force:
                kept += 1
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            written += 1
        manifest = OUT / "manifest.json"
        old = json.loads(manifest.read_text())["vectors"] if manifest.exists() else []
        merged = {v["file"]: v for v in old}
        for v in vectors:
            if args.force or v["file"] not in merged:
                merged[v["file"]] = v
        manifest.write_text(json.dumps({"vectors": list(merged.values())}, indent=2, ensure_ascii=False) + "\n")
        print(f"{written} vector files written, {kept} kept, {len(merged)} vectors in {manifest.relative_to(ROOT)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
