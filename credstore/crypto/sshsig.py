"""OpenSSH's SSHSIG signature format (PROTOCOL.sshsig; ssh-keygen -Y sign) and the key policy of credstore.

A signature for credstore is never made over the challenge itself but over SSHSIG's wrapper::

    "SSHSIG" || string namespace || string reserved ("") || string hash_algorithm ("sha512") || string SHA-512(message)

The preamble and the namespace keep such a signature from ever being confused with one made for SSH authentication
(that data starts with a session id) or for another SSHSIG namespace (git commits, files); and ``ssh-keygen -Y sign
-n NAMESPACE -f KEY`` signs exactly these bytes, so a person holding the private key can reproduce the signature
without any agent (the recovery path). The signature itself is the SSH encoding ``string algorithm || string sig``.

Key policy: the signature becomes key material, so it must be the same every time, under every agent. Ed25519 and
Ed448 (RFC 8032: the nonce is derived from the key and the message) and RSA PKCS#1 v1.5 (no randomness at all) are;
ECDSA and DSA under OpenSSH use a fresh random nonce per signature; FIDO ``sk-`` keys put a counter in every
signature (and need a touch each time).
"""

from __future__ import annotations

import base64
import binascii
import struct

from credstore.crypto.ssh_agent import SSH_AGENT_RSA_SHA2_512, SSHReader, SSHWireError, ssh_string
from credstore.errors import AuthError, UsageError

MAGIC_PREAMBLE = b"SSHSIG"
SIG_VERSION = 1
HASH_ALGORITHM = "sha512"
BEGIN = "-----BEGIN SSH SIGNATURE-----\n"
END = "-----END SSH SIGNATURE-----"
#: ssh-keygen wraps the armoured base64 at 70 columns (sshbuf_dtob64).
ARMOR_WIDTH = 70
#: A signature file larger than this is not one (an RSA-16384 signature armours to about 5 KiB).
MAX_ARMORED_LEN = 64 * 1024

MIN_RSA_BITS = 2048
#: Accepted key type -> the only signature algorithm accepted from it.
SIGNATURE_ALGORITHM = {
    "ssh-ed25519": "ssh-ed25519",
    "ssh-ed448": "ssh-ed448",
    "ssh-rsa": "rsa-sha2-512",
}
_ED_KEY_LEN = {"ssh-ed25519": 32, "ssh-ed448": 57}
_ED_SIG_LEN = {"ssh-ed25519": 64, "ssh-ed448": 114}
_RANDOM_NONCE = "it signs with a random nonce, so no two signatures are equal"
_ACCEPTED_TEXT = "use an ssh-ed25519 key (or ssh-rsa of at least 2048 bits)"


class UnsuitableKeyError(UsageError):
    """This SSH key cannot protect a store (the message says why in one line)."""


class SignatureFormatError(UsageError):
    """Text that is not a well-formed SSH signature (``-----BEGIN SSH SIGNATURE-----``)."""


class BadSignatureError(AuthError):
    """A signature that does not verify, or made with an algorithm this key type must not use."""


# --- key policy ----------------------------------------------------------------------------------------------


def rsa_bits(key_blob: bytes) -> int:
    """Modulus size of an ``ssh-rsa`` public key blob (``string "ssh-rsa" || mpint e || mpint n``)."""
    reader = SSHReader(key_blob)
    reader.string()
    reader.mpint()
    n = reader.mpint()
    reader.end()
    return n.bit_length()


def refusal_reason(key_blob: bytes) -> str | None:
    """Why this key cannot protect a store (one line), or ``None`` when its type and size are acceptable.

    A destination-constrained key (``ssh-add -h``) cannot be told from its blob: the agent refuses to sign with it
    (see :func:`credstore.crypto.ssh_slot.enrol`).
    """
    try:
        reader = SSHReader(key_blob)
        key_type = reader.string().decode("ascii")
    except (SSHWireError, UnicodeDecodeError):
        return "not an SSH public key"
    if key_type.endswith("-cert-v01@openssh.com"):
        return "an SSH certificate cannot be enrolled (it expires and is re-issued): enrol the plain key instead"
    if key_type.startswith("sk-"):
        return (
            f"{key_type} is a FIDO security-key (sk-) key: every signature carries a counter and needs a touch,"
            f" so it never signs the same twice; {_ACCEPTED_TEXT}"
        )
    if key_type.startswith("ecdsa-sha2-"):
        return f"{key_type} is an ECDSA key: {_RANDOM_NONCE}; {_ACCEPTED_TEXT}"
    if key_type == "ssh-dss":
        return f"ssh-dss is a DSA key: {_RANDOM_NONCE}; {_ACCEPTED_TEXT}"
    if key_type not in SIGNATURE_ALGORITHM:
        return f"key type {key_type!r} is not supported; {_ACCEPTED_TEXT}"
    try:
        if key_type == "ssh-rsa":
            bits = rsa_bits(key_blob)
            if bits < MIN_RSA_BITS:
                return f"ssh-rsa key of {bits} bits is too small (at least {MIN_RSA_BITS})"
        else:
            if len(reader.string()) != _ED_KEY_LEN[key_type]:
                return f"malformed {key_type} public key"
            reader.end()
    except SSHWireError:
        return f"malformed {key_type} public key"
    return None


def check_key(key_blob: bytes) -> None:
    """``UnsuitableKeyError`` unless the key's type and size are accepted."""
    reason = refusal_reason(key_blob)
    if reason is not None:
        raise UnsuitableKeyError(reason)


def agent_sign_flags(key_blob: bytes) -> int:
    """Flags for SSH_AGENTC_SIGN_REQUEST: ask RSA keys for rsa-sha2-512 (the default would be SHA-1 ``ssh-rsa``)."""
    return SSH_AGENT_RSA_SHA2_512 if SSHReader(key_blob).string() == b"ssh-rsa" else 0


# --- signed data and verification ----------------------------------------------------------------------------


def _sha512(data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SHA512())
    digest.update(data)
    return digest.finalize()


def signed_data(namespace: str, message: bytes, hash_algorithm: str = HASH_ALGORITHM) -> bytes:
    """The bytes an SSHSIG signature is made over (what the agent is asked to sign)."""
    if not namespace:
        raise ValueError("SSHSIG namespace must not be empty")
    if hash_algorithm != HASH_ALGORITHM:
        raise ValueError(f"only {HASH_ALGORITHM} is used")
    return (
        MAGIC_PREAMBLE
        + ssh_string(namespace.encode("utf-8"))
        + ssh_string(b"")
        + ssh_string(hash_algorithm.encode("ascii"))
        + ssh_string(_sha512(message))
    )


def verify_signature(key_blob: bytes, data: bytes, signature: bytes) -> None:
    """Check an SSH signature (``string algorithm || string sig``) over ``data`` by an accepted key.

    ``BadSignatureError`` when the algorithm is not the one this key type must use (an RSA signature that is not
    rsa-sha2-512 is refused) or when the signature does not verify.
    """
    from cryptography.exceptions import InvalidSignature

    check_key(key_blob)
    key_reader = SSHReader(key_blob)
    key_type = key_reader.string().decode("ascii")
    expected = SIGNATURE_ALGORITHM[key_type]
    try:
        sig_reader = SSHReader(signature)
        algorithm = sig_reader.string()
        raw = sig_reader.string()
        sig_reader.end()
    except SSHWireError:
        raise BadSignatureError("malformed SSH signature") from None
    if algorithm != expected.encode("ascii"):
        shown = algorithm.decode("ascii", "replace")[:40]
        raise BadSignatureError(f"the signature uses {shown!r}, not {expected}: refused")
    try:
        if key_type == "ssh-rsa":
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding, rsa

            e = key_reader.mpint()
            n = key_reader.mpint()
            rsa.RSAPublicNumbers(e, n).public_key().verify(raw, data, padding.PKCS1v15(), hashes.SHA512())
        else:
            if len(raw) != _ED_SIG_LEN[key_type]:
                raise InvalidSignature
            if key_type == "ssh-ed25519":
                from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey as EdPublicKey
            else:
                from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey as EdPublicKey  # type: ignore[assignment]
            EdPublicKey.from_public_bytes(key_reader.string()).verify(raw, data)
    except InvalidSignature:
        raise BadSignatureError(f"the {key_type} signature does not verify against the key") from None
    except (SSHWireError, ValueError):
        raise BadSignatureError(f"malformed {key_type} key or signature") from None


# --- the SSHSIG blob and its armour ---------------------------------------------------------------------------


class SSHSig:
    """A parsed SSHSIG blob. ``signature`` opens a store slot: it is left out of ``repr``."""

    __slots__ = ("hash_algorithm", "namespace", "public_key", "reserved", "signature", "version")

    def __init__(
        self,
        public_key: bytes,
        namespace: str,
        hash_algorithm: str,
        signature: bytes,
        reserved: bytes = b"",
        version: int = SIG_VERSION,
    ) -> None:
        self.public_key = public_key
        self.namespace = namespace
        self.hash_algorithm = hash_algorithm
        self.signature = signature
        self.reserved = reserved
        self.version = version

    def __repr__(self) -> str:
        return f"SSHSig(namespace={self.namespace!r}, hash_algorithm={self.hash_algorithm!r}, signature=<hidden>)"


def encode(public_key: bytes, namespace: str, signature: bytes, hash_algorithm: str = HASH_ALGORITHM) -> bytes:
    """The SSHSIG blob ``ssh-keygen -Y sign`` writes for this signature."""
    return (
        MAGIC_PREAMBLE
        + struct.pack(">I", SIG_VERSION)
        + ssh_string(public_key)
        + ssh_string(namespace.encode("utf-8"))
        + ssh_string(b"")
        + ssh_string(hash_algorithm.encode("ascii"))
        + ssh_string(signature)
    )


def armor(blob: bytes) -> str:
    """``-----BEGIN SSH SIGNATURE-----`` text, byte for byte as ssh-keygen writes it (base64 wrapped at 70)."""
    b64 = base64.b64encode(blob).decode("ascii")
    lines = [b64[i : i + ARMOR_WIDTH] for i in range(0, len(b64), ARMOR_WIDTH)]
    return BEGIN + "".join(line + "\n" for line in lines) + END + "\n"


def dearmor(text: str | bytes) -> bytes:
    """The blob inside armoured signature text (as ssh-keygen's sshsig_dearmor accepts it)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SignatureFormatError("not an SSH signature: it contains non-ASCII bytes") from None
    if len(text) > MAX_ARMORED_LEN:
        raise SignatureFormatError(f"not an SSH signature: longer than {MAX_ARMORED_LEN} characters")
    if not text.startswith(BEGIN):
        raise SignatureFormatError("not an SSH signature: it does not start with -----BEGIN SSH SIGNATURE-----")
    end = text.find("\n" + END, len(BEGIN) - 1)
    if end < 0:
        raise SignatureFormatError("not an SSH signature: no -----END SSH SIGNATURE----- line")
    body = "".join(text[len(BEGIN) : end].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("not an SSH signature: its base64 is malformed") from None


def parse(blob: bytes) -> SSHSig:
    """Parse an SSHSIG blob (``SignatureFormatError`` if malformed or of a later version)."""
    try:
        reader = SSHReader(blob)
        if reader.raw(len(MAGIC_PREAMBLE)) != MAGIC_PREAMBLE:
            raise SignatureFormatError("not an SSH signature: wrong magic")
        version = reader.uint32()
        if version != SIG_VERSION:
            raise SignatureFormatError(f"SSH signature version {version} is not supported (only {SIG_VERSION})")
        public_key = reader.string()
        namespace = reader.string().decode("utf-8")
        reserved = reader.string()
        hash_algorithm = reader.string().decode("ascii")
        signature = reader.string()
        reader.end()
    except (SSHWireError, UnicodeDecodeError):
        raise SignatureFormatError("not an SSH signature: malformed blob") from None
    return SSHSig(public_key, namespace, hash_algorithm, signature, reserved, version)


def parse_armored(text: str | bytes) -> SSHSig:
    return parse(dearmor(text))
