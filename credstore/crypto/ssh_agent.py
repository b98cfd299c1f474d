"""A small client of the SSH agent protocol (RFC 9987, OpenSSH's PROTOCOL.agent): list keys and ask for a signature.

Standard library only. Only the two requests credstore needs are implemented: ``SSH_AGENTC_REQUEST_IDENTITIES``
and ``SSH_AGENTC_SIGN_REQUEST``. Replies are bounded (256 KiB and 2048 keys, OpenSSH's own client limits), so a
hostile or broken peer on ``$SSH_AUTH_SOCK`` cannot make us allocate without limit or wait forever: connecting and
listing use a short timeout, a signature a long one (an ``ssh-add -c`` key waits for a person to confirm).

Import cost matters (automatic profile choice may list keys on a shell start): no dataclasses, hashlib or hmac,
and ``_socket`` instead of ``socket`` (which pulls in selectors and array, about 2 ms).

Every failure is a :class:`~credstore.errors.CredstoreError` with a one-line message naming no secret. The classes
below say what went wrong; their exit codes follow the store's meaning: an agent that is missing, silent or refuses
to sign leaves the store locked (``LockedError``, exit 4).
"""

from __future__ import annotations

import _socket
import base64
import os
import struct
import time

from credstore.errors import CredstoreError, LockedError

# Message numbers (RFC 9987 section 6.1 / PROTOCOL.agent).
SSH_AGENT_FAILURE = 5
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_EXTENSION_FAILURE = 28

# Signature flags of SSH_AGENTC_SIGN_REQUEST.
SSH_AGENT_RSA_SHA2_256 = 0x02
SSH_AGENT_RSA_SHA2_512 = 0x04

#: Largest reply accepted, in bytes (OpenSSH's MAX_AGENT_REPLY_LEN).
MAX_REPLY_LEN = 256 * 1024
#: Most keys accepted in one identities answer (OpenSSH's MAX_AGENT_IDENTITIES).
MAX_IDENTITIES = 2048
#: Seconds to connect and to list keys: a local agent answers in microseconds, a forwarded one in a round trip.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for a signature: long enough for a person to answer an `ssh-add -c` confirmation.
SIGN_TIMEOUT = 120.0


class SSHAgentError(CredstoreError):
    """The SSH agent could not give what was asked (base class of the errors below)."""


class AgentUnavailableError(SSHAgentError, LockedError):
    """No agent: ``$SSH_AUTH_SOCK`` unset, nothing listening, connection closed, or no answer in time."""


class AgentRefusedError(SSHAgentError, LockedError):
    """The agent answered SSH_AGENT_FAILURE to a request (it gives no reason)."""


class AgentProtocolError(SSHAgentError):
    """The peer on the socket answered something that is not a valid agent reply (or an oversized one)."""


class SSHWireError(ValueError):
    """Malformed SSH wire data (RFC 4251 encoding); callers turn it into the error that fits their context."""


# --- RFC 4251 wire encoding ----------------------------------------------------------------------------------


def ssh_string(data: bytes) -> bytes:
    """``string``: uint32 length then the bytes."""
    return struct.pack(">I", len(data)) + data


class SSHReader:
    """Reads RFC 4251 fields from a byte string; every overrun raises :class:`SSHWireError`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def raw(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise SSHWireError("truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def byte(self) -> int:
        return self.raw(1)[0]

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.raw(4))[0])

    def string(self) -> bytes:
        return self.raw(self.uint32())

    def mpint(self) -> int:
        data = self.string()
        if data and data[0] & 0x80:
            raise SSHWireError("negative mpint")
        return int.from_bytes(data, "big")

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def end(self) -> None:
        if self.remaining():
            raise SSHWireError("trailing bytes")


def key_type_of(key_blob: bytes) -> str:
    """The key type name a public key blob starts with (``ssh-ed25519``, ``ssh-rsa``, ...)."""
    try:
        name = SSHReader(key_blob).string()
        return name.decode("ascii")
    except (SSHWireError, UnicodeDecodeError) as exc:
        raise SSHWireError("not an SSH public key blob") from exc


def fingerprint(key_blob: bytes) -> str:
    """``SHA256:<base64, no padding>``, as ``ssh-keygen -l`` and ``ssh-add -l`` print it."""
    from cryptography.hazmat.primitives import hashes  # not needed by importers that never fingerprint

    digest = hashes.Hash(hashes.SHA256())
    digest.update(key_blob)
    return "SHA256:" + base64.b64encode(digest.finalize()).decode("ascii").rstrip("=")


def printable(text: str, limit: int = 64) -> str:
    """``text`` made safe for a one-line message: control characters replaced, length capped."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


class AgentKey:
    """One key the agent holds. ``blob`` (the public key in SSH wire form) identifies it; the comment is a label."""

    __slots__ = ("blob", "comment", "key_type")

    def __init__(self, blob: bytes, comment: str, key_type: str) -> None:
        self.blob = blob
        self.comment = comment
        self.key_type = key_type

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgentKey):
            return NotImplemented
        return (self.blob, self.comment, self.key_type) == (other.blob, other.comment, other.key_type)

    def __hash__(self) -> int:
        return hash((self.blob, self.comment, self.key_type))

    def __repr__(self) -> str:
        return f"AgentKey({self.fingerprint}, {self.key_type}, comment={self.comment!r})"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def describe(self) -> str:
        """One-line label for messages: fingerprint, type and (sanitised) comment."""
        label = f"{self.fingerprint} ({self.key_type}"
        return label + (f" {printable(self.comment)!r})" if self.comment else ")")


# --- the client ----------------------------------------------------------------------------------------------


def socket_path(path: str | os.PathLike[str] | None = None) -> str:
    """``path`` if given, else ``$SSH_AUTH_SOCK``; ``AgentUnavailableError`` when neither is set."""
    if path is not None:
        return os.fspath(path)
    env = os.environ.get("SSH_AUTH_SOCK", "")
    if not env:
        raise AgentUnavailableError("no ssh agent: SSH_AUTH_SOCK is not set")
    return env


class SSHAgent:
    """A connection to an SSH agent. Use :meth:`connect`; close it (or use it as a context manager) when done."""

    def __init__(self, sock: _socket.socket, path: str, *, timeout: float, sign_timeout: float) -> None:
        self._sock = sock
        self.path = path
        self.timeout = timeout
        self.sign_timeout = sign_timeout

    @classmethod
    def connect(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = CONNECT_TIMEOUT,
        sign_timeout: float = SIGN_TIMEOUT,
    ) -> SSHAgent:
        """Connect to the agent at ``path`` (default ``$SSH_AUTH_SOCK``) within ``timeout`` seconds."""
        where = socket_path(path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(where)
        except TimeoutError:
            sock.close()
            raise AgentUnavailableError(f"the ssh agent at {printable(where)} did not accept a connection") from None
        except OSError as exc:
            sock.close()
            reason = exc.strerror or type(exc).__name__
            raise AgentUnavailableError(f"cannot connect to the ssh agent at {printable(where)}: {reason}") from None
        return cls(sock, where, timeout=timeout, sign_timeout=sign_timeout)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> SSHAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SSHAgent(path={self.path!r})"

    # -- requests --

    def list_identities(self) -> list[AgentKey]:
        """The keys the agent offers on this connection, in its order."""
        kind, body = self._request(SSH_AGENTC_REQUEST_IDENTITIES, b"", self.timeout, "list keys")
        if kind == SSH_AGENT_FAILURE:
            raise AgentRefusedError("the ssh agent refused to list its keys")
        if kind != SSH_AGENT_IDENTITIES_ANSWER:
            raise AgentProtocolError(f"the ssh agent answered message {kind} to a key list request")
        keys: list[AgentKey] = []
        try:
            reader = SSHReader(body)
            count = reader.uint32()
            if count > MAX_IDENTITIES:
                raise AgentProtocolError(f"the ssh agent listed {count} keys (limit {MAX_IDENTITIES}): refused")
            for _ in range(count):
                blob = reader.string()
                comment = reader.string().decode("utf-8", "replace")
                keys.append(AgentKey(blob=blob, comment=comment, key_type=key_type_of(blob)))
            reader.end()
        except SSHWireError:
            raise AgentProtocolError("the ssh agent sent a malformed key list") from None
        return keys

    def sign(self, key_blob: bytes, data: bytes, *, flags: int = 0) -> bytes:
        """The agent's signature of ``data`` with the key ``key_blob``: the SSH signature encoding
        ``string algorithm || string signature bytes``, as returned in SSH_AGENT_SIGN_RESPONSE.

        Waits up to ``sign_timeout`` seconds (a confirmation may be pending). ``AgentRefusedError`` when the agent
        answers SSH_AGENT_FAILURE: it does for an unknown key, a denied ``ssh-add -c`` confirmation and a
        destination-constrained (``ssh-add -h``) key, without saying which.
        """
        request = ssh_string(key_blob) + ssh_string(data) + struct.pack(">I", flags)
        kind, body = self._request(SSH_AGENTC_SIGN_REQUEST, request, self.sign_timeout, "sign")
        if kind in (SSH_AGENT_FAILURE, SSH_AGENT_EXTENSION_FAILURE):
            raise AgentRefusedError("the ssh agent refused to sign")
        if kind != SSH_AGENT_SIGN_RESPONSE:
            raise AgentProtocolError(f"the ssh agent answered message {kind} to a sign request")
        try:
            reader = SSHReader(body)
            signature = reader.string()
            reader.end()
        except SSHWireError:
            raise AgentProtocolError("the ssh agent sent a malformed signature reply") from None
        return signature

    # -- framing --

    def _request(self, kind: int, payload: bytes, timeout: float, what: str) -> tuple[int, bytes]:
        """Send one message and read one reply: ``(message number, contents)``."""
        message = bytes([kind]) + payload
        # One deadline for the whole exchange: a peer trickling bytes cannot stretch it.
        deadline = time.monotonic() + timeout
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(struct.pack(">I", len(message)) + message)
            (length,) = struct.unpack(">I", self._recv_exact(4, deadline, what))
            if length == 0:
                raise AgentProtocolError("the ssh agent sent an empty reply")
            if length > MAX_REPLY_LEN:
                raise AgentProtocolError(
                    f"the ssh agent sent a reply of {length} bytes (limit {MAX_REPLY_LEN}): refused"
                )
            reply = self._recv_exact(length, deadline, what)
        except TimeoutError:
            raise AgentUnavailableError(f"the ssh agent did not answer ({what}) within {timeout:g} s") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AgentUnavailableError(f"lost the connection to the ssh agent ({what}): {reason}") from None
        return reply[0], reply[1:]

    def _recv_exact(self, n: int, deadline: float, what: str) -> bytes:
        chunks: list[bytes] = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            chunk = self._sock.recv(min(n, 65536))
            if not chunk:
                raise AgentUnavailableError(f"the ssh agent closed the connection ({what})")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)
