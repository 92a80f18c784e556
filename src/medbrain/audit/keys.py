"""The Ed25519 key that signs audit checkpoints, kept in the instance's ``keys`` directory.

Why a signature and not just the hash chain: anyone who can write to the database can edit an
entry and recompute every later hash, and the chain alone would still look intact. A signed
checkpoint pins the hash of the entry at some ``seq`` with a key that lives outside the
database, so such a rewrite is caught unless the attacker also holds the private key.

Files (created on first use, never overwritten):

- ``audit_ed25519.pem``: PKCS #8 private key, mode 0600, directory mode 0700.
- ``audit_ed25519.pub.pem``: SubjectPublicKeyInfo public key, for verifiers that must not hold
  the private key (copy it off the server to check the chain independently).

Everything here takes the directory as an argument: no globals, no environment reads.

References
----------
.. [1] RFC 8032, Edwards-Curve Digital Signature Algorithm (EdDSA), section 5.1 (Ed25519).
.. [2] RFC 8410, Algorithm Identifiers for Ed25519 ... in X.509 (PKCS #8 / SPKI encodings).
.. [3] FIPS 180-4, Secure Hash Standard, section 6.2 (SHA-256), used for the key fingerprint.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medbrain.core.errors import InputError

PRIVATE_KEY_FILE = "audit_ed25519.pem"
PUBLIC_KEY_FILE = "audit_ed25519.pub.pem"


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 hex of the 32 raw public-key bytes: the ``key_id`` stored with a checkpoint."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def verify_signature(public_key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    """True when ``signature_hex`` is a valid Ed25519 signature of ``message``."""
    try:
        public_key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class AuditSigner:
    """A loaded private key with its public half and fingerprint."""

    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    key_id: str

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> AuditSigner:
        public_key = private_key.public_key()
        return cls(private_key, public_key, key_fingerprint(public_key))

    @classmethod
    def generate(cls) -> AuditSigner:
        """A fresh in-memory key (tests, benchmarks); use :func:`load_or_create_signer` to keep one."""
        return cls.from_private_key(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> str:
        """Hex of the 64-byte Ed25519 signature (deterministic, RFC 8032 §5.1.6)."""
        return self.private_key.sign(message).hex()


def _write_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Write ``data`` to ``path`` only if it does not exist yet; False when another won the race.

    The bytes go to a temporary file first and are then hard-linked into place, so a concurrent
    reader never sees a half-written key and two processes starting together agree on one key.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp_name)


def _check_private_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InputError(
            str(path), "", f"permissions {mode:04o} are too open for a private key; chmod 600 it"
        )


def _read_private(path: Path) -> Ed25519PrivateKey:
    _check_private_permissions(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(str(path), "", f"not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(str(path), "", "not an Ed25519 private key")
    return key


def read_public_key(path: Path) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM (SubjectPublicKeyInfo) file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise InputError(str(path), "", "file not found") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(str(path), "", f"not a readable PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(str(path), "", "not an Ed25519 public key")
    return key


def _public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_or_create_signer(keys_dir: Path) -> AuditSigner:
    """Load the instance's signing key, creating it (0600) and its public key on first use.

    Raises
    ------
    InputError
        The key file exists but is unreadable, not Ed25519, readable by group/others, or the
        public key beside it belongs to another key.
    """
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = keys_dir / PRIVATE_KEY_FILE
    public_path = keys_dir / PUBLIC_KEY_FILE
    if not private_path.exists():
        candidate = Ed25519PrivateKey.generate()
        pem = candidate.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_exclusive(private_path, pem, 0o600)  # a lost race means: load the winner's key
    signer = AuditSigner.from_private_key(_read_private(private_path))
    if public_path.exists():
        if key_fingerprint(read_public_key(public_path)) != signer.key_id:
            raise InputError(str(public_path), "", f"does not match {PRIVATE_KEY_FILE}")
    else:
        _write_exclusive(public_path, _public_pem(signer.public_key), 0o644)
    return signer


def load_public_key(keys_dir: Path) -> Ed25519PublicKey | None:
    """The key to verify checkpoints with, or None when the instance has no key yet.

    The private key is the root of trust: when it is present the public key is derived from it
    and the ``.pub.pem`` file beside it must agree, so swapping that file alone is refused.
    """
    private_path = keys_dir / PRIVATE_KEY_FILE
    public_path = keys_dir / PUBLIC_KEY_FILE
    if private_path.exists():
        public_key = _read_private(private_path).public_key()
        if public_path.exists() and key_fingerprint(read_public_key(public_path)) != (
            key_fingerprint(public_key)
        ):
            raise InputError(str(public_path), "", f"does not match {PRIVATE_KEY_FILE}")
        return public_key
    if public_path.exists():
        return read_public_key(public_path)
    return None
