"""The ``ssh-agent`` protection level: the KEK of a key slot comes from a signature of a key in the person's SSH agent.

The cryptography is ``crypto/ssh_slot.py`` (challenge, KDF, enrolment, recovery; docs/ssh-agent-slot.md). This
module is the level: it keeps the slot's public key and salt in the slot parameters, and asks the agent at
``$SSH_AUTH_SOCK`` (of the caller's environment) for the signature. No person is needed (an ``ssh-add -c`` key asks
for a confirmation in the agent, not here), so ``env`` opens such a store with no prompt and then caches the data key
for the login session, so the hot path asks the agent once per session.

Slot parameters (canonical, all three present, nothing after them)::

    params = string(public_key) || string(salt[32]) || string(comment, UTF-8, at most 1024 bytes)

The comment is a label for ``protect list`` only; the key is always matched by ``public_key``.

Recovery without the agent: ``KekContext.options["ssh-signature"]`` holds the armoured output of
``ssh-keygen -Y sign`` over the slot's challenge (``credstore unlock --ssh-signature FILE``).
"""

from __future__ import annotations

import struct

from credstore.crypto.protection import KekContext, Protection
from credstore.errors import CorruptStoreError

MAX_COMMENT_LEN = 1024
MAX_KEY_LEN = 4096


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def encode_params(public_key: bytes, salt: bytes, comment: str) -> bytes:
    label = comment.encode("utf-8", "replace")[:MAX_COMMENT_LEN]
    label = label.decode("utf-8", "ignore").encode("utf-8")  # never cut inside a character
    return _string(public_key) + _string(salt) + _string(label)


def decode_params(params: bytes) -> tuple[bytes, bytes, str]:
    """(public key blob, salt, comment); ``CorruptStoreError`` for anything but the canonical form."""
    from credstore.crypto.ssh_agent import SSHReader, SSHWireError, key_type_of
    from credstore.crypto.ssh_slot import SALT_LEN

    try:
        reader = SSHReader(params)
        public_key, salt, comment = reader.string(), reader.string(), reader.string()
        reader.end()
        key_type_of(public_key)
        text = comment.decode("utf-8")
    except (SSHWireError, UnicodeDecodeError, ValueError):
        raise CorruptStoreError("store header is malformed (ssh-agent slot parameters)") from None
    if len(salt) != SALT_LEN or not public_key or len(public_key) > MAX_KEY_LEN or len(comment) > MAX_COMMENT_LEN:
        raise CorruptStoreError("store header is malformed (ssh-agent slot parameters)")
    return public_key, salt, text


def public_key_of(params: bytes) -> bytes:
    return decode_params(params)[0]


def _agent(ctx: KekContext):  # -> SSHAgent
    from credstore.crypto.ssh_agent import AgentUnavailableError, SSHAgent

    sock = (ctx.environ or {}).get("SSH_AUTH_SOCK") if ctx.environ is not None else None
    if ctx.environ is not None and not sock:
        raise AgentUnavailableError("no ssh agent: SSH_AUTH_SOCK is not set")
    return SSHAgent.connect(sock)


class SSHAgentProtection(Protection):
    kind = "ssh-agent"
    description = (
        "a signature by a key in your ssh agent (works through `ssh -A`; the private key never needs to be on this "
        "machine)"
    )
    caches_data_key = True
    caches_after_read = True
    renewable = True
    binds_slot_id = True
    only_slot_warning = (
        "its only key slot is an ssh key: lose the key (or the agent's access to it) and the store is lost"
    )
    strength = 3

    def create(self, ctx: KekContext) -> tuple[bytes, bytes]:
        return self._enrol(ctx, ctx.option("ssh-key"))

    def renew(self, params: bytes, ctx: KekContext) -> tuple[bytes, bytes]:
        """The same key with a fresh salt: every signature made for the old salt stops opening the slot."""
        from credstore.crypto.ssh_agent import fingerprint

        return self._enrol(ctx, fingerprint(public_key_of(params)))

    def _enrol(self, ctx: KekContext, selector: str | None) -> tuple[bytes, bytes]:
        from credstore.crypto import ssh_slot

        with _agent(ctx) as agent:
            enrolled = ssh_slot.enrol(agent, selector, store_id=ctx.store_id, slot_id=_slot_bytes(ctx))
        return enrolled.kek, encode_params(enrolled.public_key, enrolled.salt, enrolled.comment)

    def derive(self, params: bytes, ctx: KekContext) -> bytes:
        from credstore.crypto import ssh_slot

        public_key, salt, _ = decode_params(params)
        signature = ctx.option("ssh-signature")
        if signature is not None:
            return ssh_slot.recovery_kek(signature, public_key, ctx.store_id, _slot_bytes(ctx), salt)
        from credstore.crypto.ssh_agent import AgentUnavailableError, fingerprint, key_type_of

        try:
            with _agent(ctx) as agent:
                return ssh_slot.unlock(agent, public_key, ctx.store_id, _slot_bytes(ctx), salt)
        except ssh_slot.KeyNotInAgentError as exc:
            raise ssh_slot.KeyNotInAgentError(f"profile '{ctx.profile}' is locked: {exc}") from None
        except AgentUnavailableError as exc:
            # One line naming the key that is missing, not only the agent.
            raise AgentUnavailableError(
                f"profile '{ctx.profile}' is locked: it needs the ssh key {fingerprint(public_key)} "
                f"({key_type_of(public_key)}) from your ssh agent, and {exc}"
            ) from None

    def describe_params(self, params: bytes) -> dict[str, str]:
        from credstore.crypto.ssh_agent import fingerprint, key_type_of, printable

        public_key, _, comment = decode_params(params)
        facts = {"fingerprint": fingerprint(public_key), "key_type": key_type_of(public_key)}
        if comment:
            facts["comment"] = printable(comment)
        return facts


def _slot_bytes(ctx: KekContext) -> bytes:
    return struct.pack(">H", ctx.slot_id)


def challenge_for(params: bytes, store_id: bytes, slot_id: int) -> bytes:
    """The bytes to sign with ``ssh-keygen -Y sign -n credstore-unlock-v1@credstore`` to recover this slot."""
    from credstore.crypto import ssh_slot

    _, salt, _ = decode_params(params)
    return ssh_slot.challenge(store_id, struct.pack(">H", slot_id), salt)
