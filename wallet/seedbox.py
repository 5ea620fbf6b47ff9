"""Pure crypto for secrets at rest: Argon2id (memory-hard) + XSalsa20-Poly1305 (SecretBox)."""

from __future__ import annotations

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from .errors import BadPassphrase, WalletError

KDF = "argon2id"
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES


def _key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    if not passphrase:
        raise WalletError("the wallet passphrase must not be empty")
    return bytes(nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE,
                                          passphrase.encode("utf-8"), salt,
                                          opslimit=opslimit, memlimit=memlimit))


def seal(secret: bytes, passphrase: str) -> dict[str, object]:
    """Encrypt ``secret``; returns the parameters to store (no secret in the clear)."""
    salt = nacl.utils.random(SALT_BYTES)
    box = nacl.secret.SecretBox(_key(passphrase, salt, OPSLIMIT, MEMLIMIT))
    return {"kdf": KDF, "opslimit": OPSLIMIT, "memlimit": MEMLIMIT, "salt": salt.hex(),
            "box": bytes(box.encrypt(secret)).hex()}


def open_sealed(sealed: dict[str, object], passphrase: str) -> bytes:
    """Decrypt; BadPassphrase if the passphrase is wrong (or the file was tampered with)."""
    if sealed.get("kdf") != KDF:
        raise WalletError(f"unsupported key derivation {sealed.get('kdf')!r}")
    try:
        salt = bytes.fromhex(str(sealed["salt"]))
        data = bytes.fromhex(str(sealed["box"]))
        opslimit, memlimit = int(str(sealed["opslimit"])), int(str(sealed["memlimit"]))
    except (KeyError, ValueError):
        raise WalletError("the wallet file is damaged") from None
    box = nacl.secret.SecretBox(_key(passphrase, salt, opslimit, memlimit))
    try:
        return bytes(box.decrypt(data))
    except nacl.exceptions.CryptoError:
        raise BadPassphrase("wrong wallet passphrase") from None
