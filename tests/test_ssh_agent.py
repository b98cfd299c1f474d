"""The SSH agent client, SSHSIG and the ssh-agent slot KEK, against real OpenSSH (ssh-agent, ssh-add, ssh-keygen).

The only fake peer is a deliberately hostile one on a unix socket (oversized or silent replies): a real agent
never sends those, and the client must survive them.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from credstore.crypto import ssh_agent as agent_mod
from credstore.crypto import ssh_slot, sshsig
from credstore.crypto.ssh_agent import (
    AgentProtocolError,
    AgentRefusedError,
    AgentUnavailableError,
    SSHAgent,
    ssh_string,
)
from credstore.errors import EXIT_AUTH, EXIT_LOCKED, EXIT_NOT_FOUND, EXIT_USAGE, CredstoreError
from tests.fixtures_services import require_binary

if TYPE_CHECKING:
    from tests.ssh_fixtures import AgentProcess, SSHKey, SSHKeys

# The ssh_agent and ssh_keys fixtures (conftest.py may list this module in its pytest_plugins instead).
pytest_plugins = ["tests.ssh_fixtures"]

STORE_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
SLOT_ID = b"\x00\x01"
SALT = bytes(range(32))


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    return text


@pytest.fixture
def agent(ssh_agent: AgentProcess) -> Iterator[SSHAgent]:
    with SSHAgent.connect(ssh_agent.socket) as connection:
        yield connection


def keygen_sign(key: SSHKey, message: bytes, namespace: str = ssh_slot.NAMESPACE) -> str:
    """``ssh-keygen -Y sign`` with the private key file and no agent: the recovery path."""
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    result = subprocess.run(
        [require_binary("ssh-keygen"), "-Y", "sign", "-n", namespace, "-f", str(key.private)],
        input=message,
        capture_output=True,
        env=env,
        check=True,
        timeout=60,
    )
    return result.stdout.decode("ascii")


# --- listing and signing through the real agent -------------------------------------------------------------


def test_list_identities_as_ssh_add_shows_them(ssh_agent: AgentProcess, agent: SSHAgent, ssh_keys: SSHKeys) -> None:
    ed, rsa = ssh_keys.make("ed25519"), ssh_keys.make("rsa", 3072)
    assert agent.list_identities() == []
    ssh_agent.add(ed)
    ssh_agent.add(rsa)
    keys = agent.list_identities()
    assert [key.blob for key in keys] == [ed.blob, rsa.blob]
    assert [key.key_type for key in keys] == ["ssh-ed25519", "ssh-rsa"]
    assert [key.comment for key in keys] == ["test ed25519", "test rsa3072"]
    assert [key.fingerprint for key in keys] == [ed.fingerprint, rsa.fingerprint]


@pytest.mark.parametrize(
    ("kind", "bits", "algorithm"), [("ed25519", None, "ssh-ed25519"), ("rsa", 3072, "rsa-sha2-512")]
)
def test_agent_signatures_are_deterministic_and_verify(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    kind: str,
    bits: int | None,
    algorithm: str,
) -> None:
    key = ssh_keys.make(kind, bits)
    ssh_agent.add(key)
    data = ssh_slot.signed_data(STORE_ID, SLOT_ID, SALT)
    flags = sshsig.agent_sign_flags(key.blob)
    first = agent.sign(key.blob, data, flags=flags)
    second = agent.sign(key.blob, data, flags=flags)
    assert first == second
    assert first.startswith(ssh_string(algorithm.encode()))
    sshsig.verify_signature(key.blob, data, first)
    with pytest.raises(sshsig.BadSignatureError):
        sshsig.verify_signature(key.blob, data + b"x", first)


def test_rsa_signature_in_another_algorithm_is_refused(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
) -> None:
    """Without the SHA-512 flag the real agent signs as SHA-1 `ssh-rsa`: such a reply must be refused."""
    key = ssh_keys.make("rsa", 3072)
    ssh_agent.add(key)
    data = ssh_slot.signed_data(STORE_ID, SLOT_ID, SALT)
    sha1_signature = agent.sign(key.blob, data, flags=0)
    assert sha1_signature.startswith(ssh_string(b"ssh-rsa"))
    with pytest.raises(sshsig.BadSignatureError) as caught:
        sshsig.verify_signature(key.blob, data, sha1_signature)
    assert "'ssh-rsa', not rsa-sha2-512" in one_line(caught.value)


# --- enrolment and unlock -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("rsa", 3072)])
def test_enrol_then_unlock_gives_the_same_kek(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    kind: str,
    bits: int | None,
) -> None:
    key = ssh_keys.make(kind, bits)
    ssh_agent.add(key)
    enrolled = ssh_slot.enrol(agent, key.public, store_id=STORE_ID, slot_id=SLOT_ID)
    assert enrolled.public_key == key.blob
    assert enrolled.fingerprint == key.fingerprint
    assert len(enrolled.salt) == ssh_slot.SALT_LEN and len(enrolled.kek) == ssh_slot.KEK_LEN
    assert enrolled.kek.hex() not in repr(enrolled)
    # A new connection (a new session) derives the same KEK with one signature.
    with SSHAgent.connect(ssh_agent.socket) as other:
        assert ssh_slot.unlock(other, key.blob, STORE_ID, SLOT_ID, enrolled.salt) == enrolled.kek
    # Store id, slot id and salt are all bound: changing any one changes the KEK.
    for store_id, slot_id, salt in [
        (bytes(16), SLOT_ID, enrolled.salt),
        (STORE_ID, b"\x00\x02", enrolled.salt),
        (STORE_ID, SLOT_ID, os.urandom(32)),
    ]:
        assert ssh_slot.unlock(agent, key.blob, store_id, slot_id, salt) != enrolled.kek


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("rsa", 3072)])
def test_ssh_keygen_reproduces_the_agent_signature(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    kind: str,
    bits: int | None,
) -> None:
    """Recovery: `ssh-keygen -Y sign` with the private key (no agent) gives byte for byte the SSHSIG the agent's
    signature makes, so it derives the same KEK."""
    key = ssh_keys.make(kind, bits)
    ssh_agent.add(key)
    enrolled = ssh_slot.enrol(agent, key.public, store_id=STORE_ID, slot_id=SLOT_ID, salt=SALT)
    agent_signature = agent.sign(
        key.blob, ssh_slot.signed_data(STORE_ID, SLOT_ID, SALT), flags=sshsig.agent_sign_flags(key.blob)
    )
    armored = keygen_sign(key, ssh_slot.challenge(STORE_ID, SLOT_ID, SALT))
    assert armored == sshsig.armor(sshsig.encode(key.blob, ssh_slot.NAMESPACE, agent_signature))
    parsed = sshsig.parse_armored(armored)
    assert (parsed.public_key, parsed.namespace, parsed.hash_algorithm) == (key.blob, ssh_slot.NAMESPACE, "sha512")
    assert parsed.signature == agent_signature
    assert ssh_slot.recovery_kek(armored, key.blob, STORE_ID, SLOT_ID, SALT) == enrolled.kek
    assert ssh_slot.derive_kek(agent_signature, SALT, STORE_ID, SLOT_ID) == enrolled.kek


def test_ssh_keygen_verifies_our_armored_signature(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    tmp_path: Path,
) -> None:
    key = ssh_keys.make("ed25519")
    ssh_agent.add(key)
    message = ssh_slot.challenge(STORE_ID, SLOT_ID, SALT)
    signature = agent.sign(key.blob, ssh_slot.signed_data(STORE_ID, SLOT_ID, SALT))
    sig_file = tmp_path / "sig"
    sig_file.write_text(sshsig.armor(sshsig.encode(key.blob, ssh_slot.NAMESPACE, signature)))
    check = [require_binary("ssh-keygen"), "-Y", "check-novalidate", "-n", ssh_slot.NAMESPACE, "-s", str(sig_file)]
    assert subprocess.run(check, input=message, capture_output=True, timeout=60).returncode == 0
    assert subprocess.run(check, input=message + b"x", capture_output=True, timeout=60).returncode != 0


def test_recovery_refuses_other_key_namespace_or_message(ssh_keys: SSHKeys) -> None:
    key, other = ssh_keys.make("ed25519"), ssh_keys.make("ed25519", name="other")
    message = ssh_slot.challenge(STORE_ID, SLOT_ID, SALT)
    cases = [
        (keygen_sign(other, message), "made with"),
        (keygen_sign(key, message, namespace="file"), "namespace 'file'"),
        (keygen_sign(key, ssh_slot.challenge(STORE_ID, b"\x00\x09", SALT)), "not over this slot's challenge"),
    ]
    for armored, expected in cases:
        with pytest.raises(CredstoreError) as caught:
            ssh_slot.recovery_kek(armored, key.blob, STORE_ID, SLOT_ID, SALT)
        assert caught.value.exit_code == EXIT_AUTH
        assert expected in one_line(caught.value)
    for text, expected in [
        ("hello", "does not start with"),
        (sshsig.BEGIN + "AAAA\n", "no -----END"),
        (sshsig.BEGIN + "!!!!\n" + sshsig.END + "\n", "base64"),
        (sshsig.armor(b"SSHSIG\x00\x00\x00\x02"), "version 2"),
    ]:
        with pytest.raises(sshsig.SignatureFormatError) as caught_format:
            ssh_slot.recovery_kek(text, key.blob, STORE_ID, SLOT_ID, SALT)
        assert expected in one_line(caught_format.value)
        assert caught_format.value.exit_code == EXIT_USAGE


# --- key policy -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "bits", "reason"),
    [
        ("rsa", 1024, "ssh-rsa key of 1024 bits is too small"),
        ("ecdsa", None, "ECDSA key: it signs with a random nonce"),
        ("dsa", None, "DSA key: it signs with a random nonce"),
    ],
)
def test_enrol_refuses_unsuitable_key_types(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    kind: str,
    bits: int | None,
    reason: str,
) -> None:
    key = ssh_keys.make(kind, bits)
    ssh_agent.add(key)
    for selector in (key.public, key.fingerprint):
        with pytest.raises(sshsig.UnsuitableKeyError) as caught:
            ssh_slot.enrol(agent, selector, store_id=STORE_ID, slot_id=SLOT_ID)
        assert reason in one_line(caught.value)
        assert caught.value.exit_code == EXIT_USAGE
    # Without a selector the unusable key is not chosen; the error says why, per key.
    with pytest.raises(ssh_slot.KeySelectionError) as caught_none:
        ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    assert key.fingerprint in one_line(caught_none.value) and reason in str(caught_none.value)


def test_policy_of_key_types_without_a_real_key() -> None:
    """FIDO keys need a token and OpenSSH has no Ed448: their public blobs are enough for the policy."""
    sk = ssh_string(b"sk-ssh-ed25519@openssh.com") + ssh_string(bytes(32)) + ssh_string(b"ssh:")
    assert "FIDO security-key (sk-) key" in (sshsig.refusal_reason(sk) or "")
    cert = ssh_string(b"ssh-ed25519-cert-v01@openssh.com") + ssh_string(bytes(32))
    assert "certificate" in (sshsig.refusal_reason(cert) or "")
    assert "malformed" in (sshsig.refusal_reason(ssh_string(b"ssh-ed25519") + ssh_string(bytes(31))) or "")

    from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed448PrivateKey.generate()
    blob = ssh_string(b"ssh-ed448") + ssh_string(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    assert sshsig.refusal_reason(blob) is None
    data = ssh_slot.signed_data(STORE_ID, SLOT_ID, SALT)
    signature = ssh_string(b"ssh-ed448") + ssh_string(private.sign(data))
    sshsig.verify_signature(blob, data, signature)
    assert ssh_slot.derive_kek(signature, SALT, STORE_ID, SLOT_ID) == ssh_slot.derive_kek(
        ssh_string(b"ssh-ed448") + ssh_string(private.sign(data)), SALT, STORE_ID, SLOT_ID
    )


def test_destination_constrained_key_is_refused_at_enrolment(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    tmp_path: Path,
) -> None:
    """`ssh-add -h`: OpenSSH's agent lists the key but answers SSH_AGENT_FAILURE (no reason on the wire) to any
    signature that is not a user authentication on a bound connection; its log says why."""
    key = ssh_keys.make("ed25519", name="constrained")
    host = ssh_keys.make("ed25519", name="hostkey")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"gpu.example {' '.join(host.public.read_text().split()[:2])}\n")
    ssh_agent.add(key, "-H", str(known_hosts), "-h", "gpu.example")
    assert [k.blob for k in agent.list_identities()] == [key.blob]
    with pytest.raises(AgentRefusedError) as caught:
        ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    message = one_line(caught.value)
    assert key.fingerprint in message and "ssh-add -h" in message and "destination-constrained" in message
    assert "refusing use of destination-constrained key" in ssh_agent.log()


# --- choosing the key ----------------------------------------------------------------------------------------


def test_key_selection(ssh_agent: AgentProcess, agent: SSHAgent, ssh_keys: SSHKeys) -> None:
    ed, rsa, ecdsa = ssh_keys.make("ed25519"), ssh_keys.make("rsa", 3072), ssh_keys.make("ecdsa")
    not_added = ssh_keys.make("ed25519", name="other")

    with pytest.raises(ssh_slot.KeySelectionError) as empty:
        ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    assert "holds no keys" in one_line(empty.value) and empty.value.exit_code == EXIT_NOT_FOUND

    ssh_agent.add(ecdsa)
    ssh_agent.add(ed)
    # The only usable key is chosen (ECDSA is skipped).
    assert ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID).public_key == ed.blob

    ssh_agent.add(rsa)
    with pytest.raises(ssh_slot.AmbiguousKeyError) as ambiguous:
        ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    message = one_line(ambiguous.value)
    assert ed.fingerprint in message and rsa.fingerprint in message and ecdsa.fingerprint not in message
    assert ambiguous.value.exit_code == EXIT_USAGE

    assert ssh_slot.enrol(agent, rsa.fingerprint, store_id=STORE_ID, slot_id=SLOT_ID).public_key == rsa.blob
    assert ssh_slot.enrol(agent, str(rsa.public), store_id=STORE_ID, slot_id=SLOT_ID).public_key == rsa.blob

    with pytest.raises(ssh_slot.KeySelectionError) as missing:
        ssh_slot.enrol(agent, not_added.public, store_id=STORE_ID, slot_id=SLOT_ID)
    assert not_added.fingerprint in one_line(missing.value) and "not in the ssh agent" in str(missing.value)
    with pytest.raises(ssh_slot.KeySelectionError):
        ssh_slot.enrol(agent, not_added.fingerprint, store_id=STORE_ID, slot_id=SLOT_ID)
    with pytest.raises(CredstoreError) as not_a_key:
        ssh_slot.enrol(agent, ed.private, store_id=STORE_ID, slot_id=SLOT_ID)
    assert "not an SSH public key file" in one_line(not_a_key.value)


def test_keys_are_matched_by_blob_not_comment(
    ssh_agent: AgentProcess,
    agent: SSHAgent,
    ssh_keys: SSHKeys,
    tmp_path: Path,
) -> None:
    """A .pub file whose comment names an agent key but whose key differs does not select it."""
    ed, other = ssh_keys.make("ed25519"), ssh_keys.make("ed25519", name="other")
    ssh_agent.add(ed)
    forged = tmp_path / "forged.pub"
    forged.write_text(" ".join([*other.public.read_text().split()[:2], "test", "ed25519"]) + "\n")
    with pytest.raises(ssh_slot.KeySelectionError):
        ssh_slot.enrol(agent, forged, store_id=STORE_ID, slot_id=SLOT_ID)
    with pytest.raises(ssh_slot.KeyNotInAgentError):
        ssh_slot.unlock(agent, other.blob, STORE_ID, SLOT_ID, SALT)


# --- a different key, an empty agent, no agent ---------------------------------------------------------------


def test_unlock_without_the_key_is_locked(ssh_agent: AgentProcess, agent: SSHAgent, ssh_keys: SSHKeys) -> None:
    ed, rsa = ssh_keys.make("ed25519"), ssh_keys.make("rsa", 3072)
    ssh_agent.add(ed)
    enrolled = ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    ssh_agent.remove_all()
    # Empty agent, then an agent holding only a different key.
    for add in (None, rsa):
        if add is not None:
            ssh_agent.add(add)
        with pytest.raises(ssh_slot.KeyNotInAgentError) as caught:
            ssh_slot.unlock(agent, enrolled.public_key, STORE_ID, SLOT_ID, enrolled.salt)
        assert ed.fingerprint in one_line(caught.value) and caught.value.exit_code == EXIT_LOCKED


def test_no_agent_is_locked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(AgentUnavailableError) as unset:
        SSHAgent.connect()
    assert "SSH_AUTH_SOCK is not set" in one_line(unset.value) and unset.value.exit_code == EXIT_LOCKED
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "gone.sock"))
    with pytest.raises(AgentUnavailableError) as gone:
        SSHAgent.connect()
    assert "No such file or directory" in one_line(gone.value)


def test_agent_that_went_away(ssh_agent: AgentProcess, ssh_keys: SSHKeys) -> None:
    key = ssh_keys.make("ed25519")
    ssh_agent.add(key)
    connection = SSHAgent.connect(ssh_agent.socket)
    ssh_agent.stop()
    with pytest.raises(AgentUnavailableError) as caught:
        ssh_slot.unlock(connection, key.blob, STORE_ID, SLOT_ID, SALT)
    assert caught.value.exit_code == EXIT_LOCKED
    one_line(caught.value)
    connection.close()
    with pytest.raises(AgentUnavailableError):
        SSHAgent.connect(ssh_agent.socket)


# --- ssh-add -c: a person confirms each use ------------------------------------------------------------------


def test_confirmation_denied_then_approved(ssh_agent: AgentProcess, agent: SSHAgent, ssh_keys: SSHKeys) -> None:
    """The agent runs our scripted SSH_ASKPASS for an `ssh-add -c` key (SSH_ASKPASS_REQUIRE=force, DISPLAY set)."""
    key = ssh_keys.make("ed25519")
    ssh_agent.add(key, "-c")
    ssh_agent.set_confirmation(True)
    enrolled = ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    assert ssh_agent.confirmations() == 2  # enrolment signs twice

    ssh_agent.set_confirmation(False)
    with pytest.raises(AgentRefusedError) as caught:
        ssh_slot.unlock(agent, key.blob, STORE_ID, SLOT_ID, enrolled.salt)
    assert "confirmation was denied" in one_line(caught.value) and caught.value.exit_code == EXIT_LOCKED
    assert ssh_agent.confirmations() == 3

    ssh_agent.set_confirmation(True)
    assert ssh_slot.unlock(agent, key.blob, STORE_ID, SLOT_ID, enrolled.salt) == enrolled.kek
    assert ssh_agent.confirmations() == 4  # unlock signs once
    assert key.fingerprint in ssh_agent.askpass_log.read_text()


# --- hostile peer on the socket ------------------------------------------------------------------------------


class HostilePeer:
    """A unix socket server that reads one request and answers ``reply`` (or nothing), for bounds checks."""

    def __init__(self, reply: bytes | None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cs-peer-"))
        self.path = self.directory / "sock"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(1)
        self.reply = reply
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.recv(65536)
            if self.reply is not None:
                conn.sendall(self.reply)
            self.done.wait(30)

    def close(self) -> None:
        self.done.set()
        self.thread.join(30)
        self.server.close()
        self.path.unlink(missing_ok=True)
        self.directory.rmdir()


@pytest.fixture
def hostile_peer() -> Iterator[type[HostilePeer]]:
    peers: list[HostilePeer] = []

    def make(reply: bytes | None) -> HostilePeer:
        peer = HostilePeer(reply)
        peers.append(peer)
        return peer

    yield make  # type: ignore[misc]
    for peer in peers:
        peer.close()


def test_huge_reply_length_is_refused(hostile_peer) -> None:
    for length in (0xFFFFFFFF, agent_mod.MAX_REPLY_LEN + 1):
        peer = hostile_peer(struct.pack(">I", length) + b"\x0c")
        with SSHAgent.connect(peer.path) as connection, pytest.raises(AgentProtocolError) as caught:
            connection.list_identities()
        assert f"reply of {length} bytes" in one_line(caught.value)


def test_absurd_key_count_and_malformed_replies_are_refused(hostile_peer) -> None:
    def frame(body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + body

    cases = [
        (frame(b"\x0c" + struct.pack(">I", 10**9)), "listed 1000000000 keys"),
        (frame(b"\x0c" + struct.pack(">I", 1) + struct.pack(">I", 5000)), "malformed key list"),
        (frame(b"\x0e"), "answered message 14"),
        (struct.pack(">I", 0), "empty reply"),
    ]
    for reply, expected in cases:
        peer = hostile_peer(reply)
        with SSHAgent.connect(peer.path) as connection, pytest.raises(AgentProtocolError) as caught:
            connection.list_identities()
        assert expected in one_line(caught.value)


def test_silent_or_truncating_peer_is_bounded(hostile_peer) -> None:
    silent = hostile_peer(None)
    with SSHAgent.connect(silent.path, timeout=0.3) as connection, pytest.raises(AgentUnavailableError) as caught:
        connection.list_identities()
    assert "did not answer" in one_line(caught.value)
    # Announces 100 bytes, sends 3, then waits: the sign timeout bounds it too.
    trickle = hostile_peer(struct.pack(">I", 100) + b"\x0e\x00\x00")
    with (
        SSHAgent.connect(trickle.path, timeout=0.3, sign_timeout=0.3) as connection,
        pytest.raises(AgentUnavailableError),
    ):
        connection.sign(b"key", b"data")


# --- fixed vector (documented in docs/ssh-agent-slot.md) -----------------------------------------------------

VECTOR_SEED = bytes(range(32, 64))  # Ed25519 private key seed of the test vector: a public test key


def test_vector_through_the_real_agent(ssh_agent: AgentProcess, agent: SSHAgent, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    private = Ed25519PrivateKey.from_private_bytes(VECTOR_SEED)
    key_file = tmp_path / "vector_ed25519"
    key_file.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    key_file.chmod(0o600)
    public_line = private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    key_file.with_name("vector_ed25519.pub").write_text(public_line + " vector\n")
    ssh_agent.add(key_file)
    blob = agent.list_identities()[0].blob

    assert blob.hex() == VECTOR_PUBLIC_KEY
    assert agent_mod.fingerprint(blob) == VECTOR_FINGERPRINT
    assert ssh_slot.challenge(STORE_ID, SLOT_ID, SALT).hex() == VECTOR_CHALLENGE
    assert ssh_slot.signed_data(STORE_ID, SLOT_ID, SALT).hex() == VECTOR_SIGNED_DATA
    signature = agent.sign(blob, bytes.fromhex(VECTOR_SIGNED_DATA))
    assert signature.hex() == VECTOR_SIGNATURE
    assert ssh_slot.unlock(agent, blob, STORE_ID, SLOT_ID, SALT).hex() == VECTOR_KEK
    # The KDF by hand (RFC 5869 with the standard library), independent of derive_kek.
    import hashlib
    import hmac

    prk = hmac.new(SALT, signature, hashlib.sha256).digest()
    info = b"credstore ssh-agent kek v1\x00" + ssh_string(STORE_ID) + ssh_string(SLOT_ID)
    assert hmac.new(prk, info + b"\x01", hashlib.sha256).hexdigest() == VECTOR_KEK


VECTOR_PUBLIC_KEY = (
    "0000000b7373682d656432353531390000002029acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
)
VECTOR_FINGERPRINT = "SHA256:ICWTIMFqIa1seHwfScxOpzmnnS/35sGRnuqEN5d9eOM"
VECTOR_CHALLENGE = (
    "6372656473746f7265207373682d6167656e7420736c6f74207631000000001000112233445566778899aabbccddeeff0000000200010000"
    "0020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
)
VECTOR_SIGNED_DATA = (
    "5353485349470000001d6372656473746f72652d756e6c6f636b2d7631406372656473746f7265000000000000000673686135313200000040"
    "063216ea5be5ad47a7d7c058973f973188687c9c73082a0b137311ab48c5d719cc7a726743b987ac4e6f319a3002e5f637a633eb28f3135fdf"
    "4a4cc0db9d4c41"
)
VECTOR_SIGNATURE = (
    "0000000b7373682d6564323535313900000040e3f83527c9471907b5c7348cdb05dacb941bb3fc002aa1daaa84f9d29898ef85515bc0da7ace"
    "e157ff11495cc5099204d199b83e08fb979ebdfbbbf17e14f509"
)
VECTOR_KEK = "ed53c4f9a495cb83d0f927cb1abcd44f5b74977de67447ac7ac157f3b8427f4e"


def test_enrolment_catches_unequal_signatures(
    ssh_agent: AgentProcess, agent: SSHAgent, ssh_keys: SSHKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two-signature check at enrolment, with the type policy switched off: the real agent's ECDSA signatures
    (random nonce) differ, so enrolment refuses the key even if the policy had let it through."""
    key = ssh_keys.make("ecdsa")
    ssh_agent.add(key)
    monkeypatch.setattr(sshsig, "refusal_reason", lambda blob: None)
    monkeypatch.setattr(sshsig, "verify_signature", lambda blob, data, signature: None)
    with pytest.raises(sshsig.UnsuitableKeyError) as caught:
        ssh_slot.enrol(agent, None, store_id=STORE_ID, slot_id=SLOT_ID)
    assert "signatures differ" in one_line(caught.value)
