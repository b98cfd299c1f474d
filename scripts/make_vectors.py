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
        (
            "version-2",
            data[:8] + struct.pack(">H", 2) + data[10:],
            "basic",
            "CorruptStoreError",
            "a version 1 body labelled version 2 (unknown when written; malformed since version 2 exists)",
        ),
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


# -- version 2: key slots ------------------------------------------------------------------------------------------

#: The public Ed25519 test key of docs/ssh-agent-slot.md (private seed = bytes 32..63). Not a secret.
SSH_VECTOR_SEED = bytes(range(32, 64))


def ssh_vector_signature(store_id: bytes, slot_id: int, salt: bytes) -> tuple[bytes, bytes]:
    """(public key blob, agent-style signature) of the test key over an ssh-agent slot's challenge."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from credstore.crypto import ssh_slot
    from credstore.crypto.ssh_agent import ssh_string

    private = Ed25519PrivateKey.from_private_bytes(SSH_VECTOR_SEED)
    raw_public = private.public_key().public_bytes_raw()
    blob = ssh_string(b"ssh-ed25519") + ssh_string(raw_public)
    data = ssh_slot.signed_data(store_id, struct.pack(">H", slot_id), salt)
    return blob, ssh_string(b"ssh-ed25519") + ssh_string(private.sign(data))


def add_ssh_slot(header: envelope.Header, dek: bytes, slot_id: int) -> envelope.Header:
    from credstore.crypto import ssh_slot, sshagent_level

    salt = os.urandom(ssh_slot.SALT_LEN)
    blob, signature = ssh_vector_signature(header.store_id, slot_id, salt)
    kek = ssh_slot.derive_kek(signature, salt, header.store_id, struct.pack(">H", slot_id))
    params = sshagent_level.encode_params(blob, salt, "vector key")
    return envelope.wrap_slot(header, slot_id, kek, "ssh-agent", params, dek, created=int(FIXED_TIME))


def _seal_entries(header: envelope.Header, dek: bytes, entries: dict[str, tuple[str, bool]], generation: int) -> bytes:
    snapshot = Snapshot(
        entries={n: Entry(n, v, s, created=FIXED_TIME, updated=FIXED_TIME) for n, (v, s) in entries.items()},
        settings={"fingerprint_key": os.urandom(32).hex()},
    )
    return envelope.seal(header._replace(generation=generation), dek, encode_payload(snapshot))


def reencode_slots(data: bytes, slots: tuple, count: int | None = None) -> bytes:
    """The same file with other slots (the payload kept: it no longer authenticates)."""
    header, _, _ = envelope.parse(data)
    head = header._replace(slots=slots).encode()
    if count is not None:
        pos = len(envelope.MAGIC) + 2
        for _ in range(3):
            (length,) = struct.unpack_from(">H", head, pos)
            pos += 2 + length
        head = head[:pos] + struct.pack(">H", count) + head[pos + 2 :]
    return head + data[v2_header_end(data) :]


def v2_header_end(data: bytes) -> int:
    _, ad, _ = envelope.parse(data)
    return len(ad) - 4


def build_v2(work: Path, files: dict[str, bytes]) -> list[dict]:
    """Version 2 (key slots): one vector per slot kind that lives in the file, multi-slot stores, and bad ones."""
    from credstore.crypto import passphrase

    real_urandom, real_now = os.urandom, envelope._now
    envelope._now = lambda: int(FIXED_TIME)  # type: ignore[assignment]
    saved = os.environ.get(passphrase.WEAK_KDF_ENV)
    os.environ[passphrase.WEAK_KDF_ENV] = "1"
    try:
        basic = make_store(work / "v2basic", b"credstore vector v2 basic", BASIC_ENTRIES, 3)
        # key file + passphrase: made as credstore makes it (init keyfile, set, protect add passphrase)
        multi = make_store(work / "v2multi", b"credstore vector v2 multi", PASSPHRASE_ENTRIES, 1)
        multi.kek_context = multi.kek_context._replace(interactive=True, ask_passphrase=lambda _: VECTOR_PASSPHRASE)
        multi.add_slot("passphrase")
        # ssh-agent alone, and passphrase + ssh-agent: headers made by hand with the public test key
        os.urandom = SeededRandom(b"credstore vector v2 ssh")  # type: ignore[assignment]
        dek = envelope.new_dek()
        ssh_header = add_ssh_slot(envelope.empty_header(), dek, 1)
        ssh_data = _seal_entries(ssh_header, dek, PASSPHRASE_ENTRIES, 1)
        pp_kek_params = passphrase.encode_params(*passphrase.FLOOR, os.urandom(passphrase.SALT_LEN))
        pp_kek = passphrase.derive_kek(
            passphrase.normalize(VECTOR_PASSPHRASE), *passphrase.decode_params(pp_kek_params)
        )
        dek2 = envelope.new_dek()
        both = envelope.wrap_slot(envelope.empty_header(), 1, pp_kek, "passphrase", pp_kek_params, dek2)
        both = add_ssh_slot(both, dek2, 2)
        both_data = _seal_entries(both, dek2, PASSPHRASE_ENTRIES, 5)
    finally:
        os.urandom, envelope._now = real_urandom, real_now  # type: ignore[assignment]
        if saved is None:
            os.environ.pop(passphrase.WEAK_KDF_ENV, None)
        else:
            os.environ[passphrase.WEAK_KDF_ENV] = saved
    basic_data = basic.path.read_bytes()
    multi_data = multi.path.read_bytes()
    files["v2/keyfile-basic.store"] = basic_data
    files["v2/keyfile-basic.key"] = basic.path.with_suffix(".key").read_bytes()
    files["v2/slots-keyfile-passphrase.store"] = multi_data
    files["v2/slots-keyfile-passphrase.key"] = multi.path.with_suffix(".key").read_bytes()
    files["v2/slots-keyfile-passphrase-by-passphrase.store"] = multi_data
    files["v2/ssh-agent-basic.store"] = ssh_data
    files["v2/slots-passphrase-ssh-agent.store"] = both_data
    files["v2/slots-passphrase-ssh-agent-by-passphrase.store"] = both_data
    two = {name: value for name, (value, _) in PASSPHRASE_ENTRIES.items()}
    five = {name: value for name, (value, _) in BASIC_ENTRIES.items()}
    v2 = {"format_version": 2}
    vectors: list[dict] = [
        {
            **v2,
            "file": "v2/keyfile-basic.store",
            "key": "v2/keyfile-basic.key",
            "expect": "ok",
            "generation": 3,
            "entries": five,
            "description": "version 2, one key file slot, five entries, generation 3",
        },
        {
            **v2,
            "file": "v2/slots-keyfile-passphrase.store",
            "key": "v2/slots-keyfile-passphrase.key",
            "expect": "ok",
            "generation": 2,
            "entries": two,
            "description": "key file slot 1 + passphrase slot 2, opened by the key file",
        },
        {
            **v2,
            "file": "v2/slots-keyfile-passphrase-by-passphrase.store",
            "key": None,
            "passphrase": VECTOR_PASSPHRASE,
            "expect": "ok",
            "generation": 2,
            "entries": two,
            "description": "the same bytes without the key file: the passphrase slot opens it",
        },
        {
            **v2,
            "file": "v2/ssh-agent-basic.store",
            "key": None,
            "ssh_seed": SSH_VECTOR_SEED.hex(),
            "expect": "ok",
            "generation": 1,
            "entries": two,
            "description": "one ssh-agent slot (the public Ed25519 test key of docs/ssh-agent-slot.md), opened "
            "with the ssh-keygen -Y sign signature over its challenge",
        },
        {
            **v2,
            "file": "v2/slots-passphrase-ssh-agent.store",
            "key": None,
            "ssh_seed": SSH_VECTOR_SEED.hex(),
            "expect": "ok",
            "generation": 5,
            "entries": two,
            "description": "passphrase slot 1 + ssh-agent slot 2, opened by the ssh key",
        },
        {
            **v2,
            "file": "v2/slots-passphrase-ssh-agent-by-passphrase.store",
            "key": None,
            "passphrase": VECTOR_PASSPHRASE,
            "expect": "ok",
            "generation": 5,
            "entries": two,
            "description": "the same bytes, opened by the passphrase",
        },
    ]
    header, _, _ = envelope.parse(multi_data)
    first, second = header.slots
    ssh_header_parsed, _, _ = envelope.parse(ssh_data)
    (ssh_slot_parsed,) = ssh_header_parsed.slots

    def flipped(raw: bytes) -> bytes:
        return bytes([raw[0] ^ 1]) + raw[1:]

    from credstore.crypto import sshagent_level

    blob, _, comment = sshagent_level.decode_params(ssh_slot_parsed.params)
    other_salt = sshagent_level.encode_params(blob, bytes(32), comment)
    bad: list[tuple[str, bytes, dict, str, str]] = [
        (
            "duplicate-slot-id",
            reencode_slots(multi_data, (first, second._replace(slot_id=1))),
            {"key": "v2/slots-keyfile-passphrase.key"},
            "CorruptStoreError",
            "two slots with id 1",
        ),
        (
            "slots-out-of-order",
            reencode_slots(multi_data, (second, first)),
            {"key": "v2/slots-keyfile-passphrase.key"},
            "CorruptStoreError",
            "slot 2 before slot 1 (not canonical)",
        ),
        (
            "unknown-slot-kind",
            reencode_slots(basic_data, (first._replace(kind="quantum"),)),
            {"key": "v2/keyfile-basic.key"},
            "UnsupportedFormatError",
            "the only slot has level 'quantum'",
        ),
        (
            "slot-kind-not-ascii",
            reencode_slots(basic_data, (first._replace(kind="kéyfile"),)),
            {"key": "v2/keyfile-basic.key"},
            "CorruptStoreError",
            "a slot level that is not ASCII",
        ),
        (
            "no-slots",
            reencode_slots(basic_data, (), count=0),
            {"key": "v2/keyfile-basic.key"},
            "CorruptStoreError",
            "slot count 0",
        ),
        (
            "slot-count-33",
            reencode_slots(basic_data, (first,), count=33),
            {"key": "v2/keyfile-basic.key"},
            "CorruptStoreError",
            "slot count 33 (at most 32)",
        ),
        (
            "keyfile-slot-wrap-flipped",
            reencode_slots(multi_data, (first._replace(wrapped_dek=flipped(first.wrapped_dek)), second)),
            {"key": "v2/slots-keyfile-passphrase.key", "passphrase": VECTOR_PASSPHRASE + " (wrong)"},
            "AuthError",
            "key file slot's wrapped key changed, and a wrong passphrase for the other slot",
        ),
        (
            "slot-created-changed",
            reencode_slots(multi_data, (first._replace(created=first.created + 1), second)),
            {"key": "v2/slots-keyfile-passphrase.key"},
            "CorruptStoreError",
            "a slot's creation time changed without re-sealing (bound as payload AD)",
        ),
        (
            "slot-id-changed",
            reencode_slots(basic_data, (first._replace(slot_id=7),)),
            {"key": "v2/keyfile-basic.key"},
            "AuthError",
            "the slot id changed (bound into the wrap)",
        ),
        (
            "ssh-slot-wrap-flipped",
            reencode_slots(ssh_data, (ssh_slot_parsed._replace(wrapped_dek=flipped(ssh_slot_parsed.wrapped_dek)),)),
            {"key": None, "ssh_seed": SSH_VECTOR_SEED.hex()},
            "AuthError",
            "ssh-agent slot's wrapped key changed",
        ),
        (
            "ssh-slot-salt-changed",
            reencode_slots(ssh_data, (ssh_slot_parsed._replace(params=other_salt),)),
            {"key": None, "ssh_seed": SSH_VECTOR_SEED.hex()},
            "AuthError",
            "ssh-agent slot's salt changed: the signature over the real challenge no longer fits it",
        ),
        (
            "ssh-slot-params-malformed",
            reencode_slots(ssh_data, (ssh_slot_parsed._replace(params=ssh_slot_parsed.params + b"\0"),)),
            {"key": None},
            "CorruptStoreError",
            "ssh-agent slot parameters with a trailing byte",
        ),
        (
            "version-3",
            basic_data[:8] + struct.pack(">H", 3) + basic_data[10:],
            {"key": "v2/keyfile-basic.key"},
            "UnsupportedFormatError",
            "version 3",
        ),
    ]
    for name, content, extra, expect, description in bad:
        path = f"v2/bad-{name}.store"
        files[path] = content
        vectors.append({**v2, "file": path, **extra, "expect": expect, "description": description})
    return vectors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--force", action="store_true", help="overwrite existing vector files (never for released ones)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="credstore-vectors-"))
    try:
        # v1/ was written by the version 1 writer (see git history) and is frozen: this credstore writes version 2.
        vectors = build(work) if not (OUT / "v1").exists() else []
        files: dict[str, bytes] = {}
        vectors += build_v2(work, files)
        for path, content in files.items():
            (work / "out" / path).parent.mkdir(parents=True, exist_ok=True)
            (work / "out" / path).write_bytes(content)
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
