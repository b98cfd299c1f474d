"""The ``ssh-agent`` key slot: a key-encryption key (KEK) from an SSH agent's signature over a per-slot challenge.

Stored in the slot (none of it secret): the public key blob and a random 32-byte salt. To open the slot::

    challenge = "credstore ssh-agent slot v1\\0" || string(store_id) || string(slot_id) || string(salt)
    signature = agent signs SSHSIG(namespace=NAMESPACE, hash="sha512", message=challenge) with the slot's key
    kek       = HKDF-SHA256(ikm=signature, salt=salt, info="credstore ssh-agent kek v1\\0" || string(store_id)
                                                          || string(slot_id), length=32)

``signature`` is the SSH encoding ``string algorithm || string sig`` (the SSHSIG ``signature`` field). The salt is
in the signed challenge too, so re-salting a slot makes every earlier signature useless: with the salt only in
HKDF, whoever captured one signature and can read the store (salt included) would derive the new KEK as well.
The signature is never stored, logged or shown; keys are matched by public key blob, never by comment.
See docs/ssh-agent-slot.md.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence

from credstore.crypto import sshsig
from credstore.crypto.ssh_agent import (
    AgentKey,
    AgentRefusedError,
    SSHAgent,
    SSHAgentError,
    SSHWireError,
    fingerprint,
    key_type_of,
    printable,
    ssh_string,
)
from credstore.errors import AuthError, LockedError, NotFoundError, UsageError

#: SSHSIG namespace of every credstore unlock signature (``ssh-keygen -Y sign -n NAMESPACE``).
NAMESPACE = "credstore-unlock-v1@credstore"
CHALLENGE_PREFIX = b"credstore ssh-agent slot v1\x00"
HKDF_INFO_PREFIX = b"credstore ssh-agent kek v1\x00"
SALT_LEN = 32
KEK_LEN = 32
#: A .pub file longer than this is not one (an RSA-16384 public key line is about 2.8 KiB).
MAX_PUBKEY_FILE_LEN = 64 * 1024

_REFUSED_HINT = (
    "a key added with `ssh-add -h` (destination-constrained) only signs SSH logins, so add it again without -h;"
    " or its `ssh-add -c` confirmation was denied"
)


class KeyNotInAgentError(SSHAgentError, LockedError):
    """The slot's key is not among the agent's keys: the store stays locked."""


class KeySelectionError(NotFoundError):
    """Enrolment: no key in the agent matches the selector, or the agent holds no usable key."""


class AmbiguousKeyError(UsageError):
    """Enrolment without a selector while the agent holds several usable keys."""


class EnrolledKey:
    """Result of :func:`enrol`: what the slot stores (``public_key``, ``salt``) and the KEK to wrap the data key.

    ``comment`` is a label for listings only. ``kek`` is secret: it is left out of ``repr``.
    """

    __slots__ = ("comment", "fingerprint", "kek", "key_type", "public_key", "salt")

    def __init__(
        self, *, public_key: bytes, key_type: str, fingerprint: str, comment: str, salt: bytes, kek: bytes
    ) -> None:
        self.public_key = public_key
        self.key_type = key_type
        self.fingerprint = fingerprint
        self.comment = comment
        self.salt = salt
        self.kek = kek

    def __repr__(self) -> str:
        return f"EnrolledKey({self.fingerprint}, {self.key_type}, comment={self.comment!r}, kek=<hidden>)"


def challenge(store_id: bytes, slot_id: bytes, salt: bytes) -> bytes:
    """The message the agent signs (inside SSHSIG) to open slot ``slot_id`` of store ``store_id``."""
    return CHALLENGE_PREFIX + ssh_string(store_id) + ssh_string(slot_id) + ssh_string(salt)


def signed_data(store_id: bytes, slot_id: bytes, salt: bytes) -> bytes:
    """The bytes given to the agent: the SSHSIG wrapper of :func:`challenge` under :data:`NAMESPACE`."""
    return sshsig.signed_data(NAMESPACE, challenge(store_id, slot_id, salt))


def derive_kek(signature: bytes, salt: bytes, store_id: bytes, slot_id: bytes) -> bytes:
    """HKDF-SHA256 of the signature, with the slot's salt, binding store id and slot id in the info."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if len(salt) != SALT_LEN:
        raise ValueError(f"ssh-agent slot salt must be {SALT_LEN} bytes")
    info = HKDF_INFO_PREFIX + ssh_string(store_id) + ssh_string(slot_id)
    return HKDF(algorithm=hashes.SHA256(), length=KEK_LEN, salt=salt, info=info).derive(signature)


# --- choosing a key -------------------------------------------------------------------------------------------


def read_public_key_file(path: str | os.PathLike[str]) -> bytes:
    """The key blob of an OpenSSH ``.pub`` file (``TYPE BASE64 [comment]``, first non-comment line)."""
    shown = printable(os.fspath(path))
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PUBKEY_FILE_LEN + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no such public key file: {shown}") from None
    except OSError as exc:
        raise UsageError(f"cannot read public key file {shown}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_PUBKEY_FILE_LEN:
        raise UsageError(f"{shown} is not an SSH public key file (too large)")
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2:
            break
        try:
            blob = base64.b64decode(fields[1], validate=True)
            if key_type_of(blob) != fields[0]:
                break
        except (binascii.Error, ValueError, SSHWireError):
            break
        return blob
    raise UsageError(f"{shown} is not an SSH public key file (expected 'TYPE BASE64 [comment]', e.g. id_ed25519.pub)")


def _listing(keys: Sequence[AgentKey]) -> str:
    return ", ".join(key.describe() for key in keys)


def select_key(keys: Sequence[AgentKey], selector: str | os.PathLike[str] | None) -> AgentKey:
    """The agent key ``selector`` names: a ``.pub`` file path, a ``SHA256:`` fingerprint, or ``None`` for the only
    usable key. Matching is by public key blob (or its fingerprint), never by comment. The chosen key is checked
    against the key policy (``UnsuitableKeyError`` with the reason)."""
    if not keys:
        raise KeySelectionError("the ssh agent holds no keys: add one with ssh-add")
    if selector is None:
        usable = [key for key in keys if sshsig.refusal_reason(key.blob) is None]
        if len(usable) > 1:
            raise AmbiguousKeyError(
                f"the ssh agent holds {len(usable)} usable keys: {_listing(usable)};"
                " choose one by its .pub file or SHA256: fingerprint"
            )
        if not usable:
            reasons = "; ".join(f"{key.fingerprint}: {sshsig.refusal_reason(key.blob)}" for key in keys)
            raise KeySelectionError(f"no usable key in the ssh agent ({reasons})")
        chosen = usable[0]
    else:
        text = os.fspath(selector)
        if text.startswith("SHA256:"):
            wanted = text.rstrip("=")
            matches = [key for key in keys if key.fingerprint == wanted]
            if not matches:
                raise KeySelectionError(f"no key {printable(wanted)} in the ssh agent (it holds {_listing(keys)})")
        elif text.startswith("MD5:"):
            raise UsageError("give the key as a SHA256: fingerprint (ssh-add -l prints it) or its .pub file")
        else:
            blob = read_public_key_file(text)
            matches = [key for key in keys if key.blob == blob]
            if not matches:
                raise KeySelectionError(
                    f"the key in {printable(text)} ({fingerprint(blob)}) is not in the ssh agent: add it with ssh-add"
                )
        chosen = matches[0]
    reason = sshsig.refusal_reason(chosen.blob)
    if reason is not None:
        raise sshsig.UnsuitableKeyError(f"{chosen.fingerprint}: {reason}")
    return chosen


# --- signing ------------------------------------------------------------------------------------------------------


def _sign(agent: SSHAgent, key: AgentKey, data: bytes) -> bytes:
    """One verified signature of ``data`` by ``key`` (algorithm checked: rsa-sha2-512 for RSA)."""
    try:
        signature = agent.sign(key.blob, data, flags=sshsig.agent_sign_flags(key.blob))
    except AgentRefusedError:
        raise AgentRefusedError(
            f"the ssh agent refused to sign with {key.fingerprint} ({key.key_type}): {_REFUSED_HINT}"
        ) from None
    try:
        sshsig.verify_signature(key.blob, data, signature)
    except sshsig.BadSignatureError as exc:
        raise sshsig.BadSignatureError(f"ssh agent, key {key.fingerprint}: {exc}") from None
    return signature


def enrol(
    agent: SSHAgent,
    selector: str | os.PathLike[str] | None,
    *,
    store_id: bytes,
    slot_id: bytes,
    salt: bytes | None = None,
) -> EnrolledKey:
    """Choose the key (see :func:`select_key`), sign this slot's challenge twice, require equal signatures,
    and return what the slot stores plus its KEK. ``salt`` defaults to 32 fresh random bytes."""
    salt = os.urandom(SALT_LEN) if salt is None else salt
    key = select_key(agent.list_identities(), selector)
    data = signed_data(store_id, slot_id, salt)
    first = _sign(agent, key, data)
    second = _sign(agent, key, data)
    from credstore.crypto.primitives import equal

    if not equal(first, second):
        raise sshsig.UnsuitableKeyError(
            f"the ssh agent signed the same challenge twice with {key.fingerprint} and the signatures differ:"
            " this agent or key does not sign deterministically; use an ssh-ed25519 key in OpenSSH's ssh-agent"
        )
    return EnrolledKey(
        public_key=key.blob,
        key_type=key.key_type,
        fingerprint=key.fingerprint,
        comment=key.comment,
        salt=salt,
        kek=derive_kek(first, salt, store_id, slot_id),
    )


def find_key(keys: Sequence[AgentKey], public_key: bytes) -> AgentKey | None:
    """The agent key with this exact public key blob, if the agent holds it."""
    return next((key for key in keys if key.blob == public_key), None)


def unlock(agent: SSHAgent, public_key: bytes, store_id: bytes, slot_id: bytes, salt: bytes) -> bytes:
    """The slot's KEK from one signature by the agent. ``KeyNotInAgentError`` (a ``LockedError``) names the
    missing key; ``AgentRefusedError`` when the agent refuses (e.g. an ``ssh-add -c`` confirmation denied)."""
    key = find_key(agent.list_identities(), public_key)
    if key is None:
        raise KeyNotInAgentError(
            f"the ssh key {fingerprint(public_key)} ({key_type_of(public_key)}) of this slot is not in the ssh agent"
        )
    return derive_kek(_sign(agent, key, signed_data(store_id, slot_id, salt)), salt, store_id, slot_id)


def recovery_kek(armored: str | bytes, public_key: bytes, store_id: bytes, slot_id: bytes, salt: bytes) -> bytes:
    """The slot's KEK from ``ssh-keygen -Y sign -n NAMESPACE -f KEY`` output over :func:`challenge` (no agent).

    ``SignatureFormatError`` for text that is not a signature; ``AuthError`` for a signature by another key, in
    another namespace, or over another message.
    """
    parsed = sshsig.parse_armored(armored)
    if parsed.public_key != public_key:
        made_by, slot_key = fingerprint(parsed.public_key), fingerprint(public_key)
        raise AuthError(f"the signature was made with {made_by}, this slot's key is {slot_key}")
    if parsed.namespace != NAMESPACE:
        shown = printable(parsed.namespace)
        raise AuthError(f"the signature is in namespace {shown!r}: sign with ssh-keygen -Y sign -n {NAMESPACE}")
    if parsed.hash_algorithm != sshsig.HASH_ALGORITHM:
        raise AuthError(f"the signature uses hash {printable(parsed.hash_algorithm)!r}, not sha512")
    try:
        sshsig.verify_signature(public_key, signed_data(store_id, slot_id, salt), parsed.signature)
    except sshsig.BadSignatureError:
        raise sshsig.BadSignatureError("the signature is not over this slot's challenge (or is damaged)") from None
    return derive_kek(parsed.signature, salt, store_id, slot_id)
