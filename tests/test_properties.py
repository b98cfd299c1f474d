"""Property tests (Hypothesis) for the store format and the payload.

Shell emitters are property-tested against real shells in tests/test_shells.py; not repeated here.
"""

from __future__ import annotations

import contextlib
import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credstore.crypto import envelope
from credstore.errors import CorruptStoreError, CredstoreError
from credstore.store.base import Entry, Snapshot
from credstore.store.payload import decode_payload, encode_payload

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=200)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)

entries = st.builds(
    lambda name, value, secret, created, updated, rotations, previous, expires: Entry(
        name, value, secret, created, updated, tuple(rotations), previous, expires if previous is not None else None
    ),
    names,
    values,
    st.booleans(),
    times,
    times,
    st.lists(times, max_size=3),
    st.none() | values,
    times,
)
snapshots = st.builds(
    lambda items, settings_: Snapshot(entries={e.name: e for e in items}, settings=settings_),
    st.lists(entries, max_size=8, unique_by=lambda e: e.name),
    st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
)
slot_lists = st.lists(
    st.builds(
        envelope.Slot,
        slot_id=st.integers(min_value=0, max_value=0xFFFF),
        kind=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
        params=st.binary(max_size=300),
        created=st.integers(min_value=0, max_value=2**64 - 1),
        wrap_nonce=st.binary(min_size=envelope.NONCE_LEN, max_size=envelope.NONCE_LEN),
        wrapped_dek=st.binary(
            min_size=envelope.KEY_LEN + envelope.TAG_LEN, max_size=envelope.KEY_LEN + envelope.TAG_LEN
        ),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda slot: slot.slot_id,
).map(lambda slots: tuple(sorted(slots, key=lambda slot: slot.slot_id)))
headers = st.builds(
    envelope.Header,
    store_id=st.binary(min_size=envelope.STORE_ID_LEN, max_size=envelope.STORE_ID_LEN),
    generation=st.integers(min_value=0, max_value=2**64 - 1),
    slots=slot_lists,
    payload_salt=st.just(b""),
    payload_nonce=st.just(b""),
    aead=st.just(envelope.AEAD_ID),
    version=st.just(envelope.FORMAT_VERSION),
)
keys = st.binary(min_size=envelope.KEY_LEN, max_size=envelope.KEY_LEN)


@SETTINGS
@given(header=headers, dek=keys, plaintext=st.binary(max_size=2000))
def test_store_file_round_trip_and_canonical(header: envelope.Header, dek: bytes, plaintext: bytes) -> None:
    data = envelope.seal(header, dek, plaintext)
    parsed, ad, ciphertext = envelope.parse(data)
    # Everything but the per-save salt and nonce is kept as given; those are fresh and of the right size.
    assert (parsed.store_id, parsed.generation, parsed.slots) == (header.store_id, header.generation, header.slots)
    assert len(parsed.payload_salt) == envelope.SALT_LEN and len(parsed.payload_nonce) == envelope.NONCE_LEN
    # Canonical: re-encoding the parsed header gives the very bytes, and the AD is exactly header + length.
    head = parsed.encode()
    assert data.startswith(head)
    assert ad == head + struct.pack(">I", len(ciphertext))
    assert data == ad + ciphertext
    assert envelope.open_payload(parsed, ad, ciphertext, dek) == plaintext


@SETTINGS
@given(kek=keys, dek=keys, kind=st.sampled_from(["keyfile", "passphrase", "keyring"]), params=st.binary(max_size=64))
def test_dek_wrap_round_trip(kek: bytes, dek: bytes, kind: str, params: bytes) -> None:
    header, got = envelope.new_header(kek, kind, params, dek)
    assert got == dek
    assert envelope.unwrap_dek(header, kek) == dek
    parsed, _, _ = envelope.parse(envelope.seal(header, dek, b"{}"))
    assert envelope.unwrap_dek(parsed, kek) == dek


@SETTINGS
@given(data=st.binary(max_size=600))
def test_parse_of_arbitrary_bytes_fails_only_with_credstore_errors(data: bytes) -> None:
    for candidate in (
        data,
        envelope.MAGIC + data,
        envelope.MAGIC + b"\x00\x01" + data,
        envelope.MAGIC + b"\x00\x02" + data,
    ):
        with contextlib.suppress(CredstoreError):
            envelope.parse(candidate)


@SETTINGS
@given(header=headers, dek=keys, plaintext=st.binary(max_size=300), cut=st.integers(min_value=0), extra=st.binary())
def test_any_truncation_or_extension_is_refused(header, dek, plaintext, cut, extra) -> None:
    data = envelope.seal(header, dek, plaintext)
    for bad in (data[: cut % len(data)], data + extra if extra else data + b"\0"):
        try:
            parsed, ad, ciphertext = envelope.parse(bad)
        except CredstoreError:
            continue
        raise AssertionError("a truncated or extended file parsed")


@SETTINGS
@given(snapshot=snapshots, generation=st.integers(min_value=0, max_value=2**63))
def test_payload_round_trip_and_canonical(snapshot: Snapshot, generation: int) -> None:
    encoded = encode_payload(snapshot)
    decoded = decode_payload(encoded, generation)
    assert decoded.generation == generation
    assert decoded.settings == snapshot.settings
    assert set(decoded.entries) == set(snapshot.entries)
    for name, entry in snapshot.entries.items():
        got = decoded.entries[name]
        assert (got.value, got.secret, got.created, got.updated, got.rotations, got.previous) == (
            entry.value,
            entry.secret,
            entry.created,
            entry.updated,
            entry.rotations,
            entry.previous,
        )
    assert encode_payload(decoded) == encoded  # one snapshot, one encoding
    assert json.loads(encoded)["version"] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(doc=json_values, raw=st.binary(max_size=100))
def test_decode_payload_of_malformed_json_is_corrupt_never_a_crash(doc, raw: bytes) -> None:
    """An authenticated but malformed payload (only a bug could write one) is CorruptStoreError, never a crash."""
    shaped = {"version": 1, "entries": {"A": doc}, "settings": {}}
    for candidate in (json.dumps(doc).encode(), json.dumps(shaped).encode(), raw):
        with contextlib.suppress(CorruptStoreError):
            decode_payload(candidate, 0)
