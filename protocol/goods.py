"""Digital goods in a contract: what a vendor delivers with its FULFILLMENT (a licence key, a
download link, a small file), sealed to the buyer.

The FULFILLMENT's optional ``goods`` field is ``{sealed: bin, sha256: bin(32)}``: ``sealed`` is
a NaCl sealed box to the buyer's key (its peer id's Ed25519 key, as X25519) of the canonical
encoding of ``{kind: "text" | "file", name: str, content: bin}``, and ``sha256`` is the hash of
that encoding. Only the buyer can open it; the hash, signed by the vendor with the rest of the
message, lets the buyer prove in a dispute what was delivered (it shows the moderator the
plaintext, the moderator checks the hash). At most ``MAX_GOODS`` bytes of content: bigger
goods go as a link.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import nacl.exceptions
import nacl.public

from . import canonical
from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity, x25519_private, x25519_public

MAX_GOODS = 32 * 1024
SEAL_OVERHEAD = 48  # a sealed box adds an ephemeral key and a tag
MAX_SEALED = MAX_GOODS + 1024 + SEAL_OVERHEAD  # the encoding's keys and name
MAX_NAME = 200
KINDS = ("text", "file")
# a file name shown to the buyer and offered when saving: one path component, no controls
NAME_RE = re.compile(r"[^/\\\x00-\x1f\x7f]{1,200}")


def validate(err: f.ErrorClass, field: str, value: Any) -> dict[str, Any]:
    """The ``goods`` field of a FULFILLMENT, as anyone can check it (without opening it)."""
    g = f.exact_keys(err, field, value, {"sealed", "sha256"})
    f.raw(err, f"{field}.sealed", g["sealed"], MAX_SEALED, SEAL_OVERHEAD + 1)
    f.raw(err, f"{field}.sha256", g["sha256"], 32, 32)
    return g


def check(err: f.ErrorClass, kind: Any, name: Any, content: Any) -> None:
    """The rules of what is sealed: a kind, a file name (none for a text), 1..MAX_GOODS bytes
    (UTF-8 for a text)."""
    if kind not in KINDS:
        f.fail(err, "goods.kind", f"must be one of {list(KINDS)}")
    if not isinstance(content, bytes) or not content or len(content) > MAX_GOODS:
        f.fail(err, "goods.content", f"must be 1..{MAX_GOODS} bytes (bigger goods: a link)")
    if kind == "text":
        if name != "":
            f.fail(err, "goods.name", "a text has no file name")
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            f.fail(err, "goods.content", "a text must be UTF-8")
    elif not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in (".", ".."):
        f.fail(err, "goods.name", "must be a file name (no / \\ or control characters)")


def seal(buyer: str, kind: str, name: str, content: bytes) -> dict[str, bytes]:
    """The ``goods`` field for ``buyer`` (LocalProtocolError if the goods break a rule)."""
    check(LocalProtocolError, kind, name, content)
    plain = canonical.encode({"kind": kind, "name": name, "content": content})
    box = nacl.public.SealedBox(x25519_public(buyer))
    return {"sealed": bytes(box.encrypt(plain)), "sha256": hashlib.sha256(plain).digest()}


def open_goods(goods: dict[str, Any], me: Identity) -> dict[str, Any]:
    """What the vendor delivered to us: ``{kind, name, content, sha256}``; RemoteProtocolError
    when it does not open with our key, does not match its hash, or breaks a rule."""
    try:
        plain = bytes(nacl.public.SealedBox(x25519_private(me)).decrypt(goods["sealed"]))
    except nacl.exceptions.CryptoError:
        raise RemoteProtocolError("the goods do not open with our key") from None
    if hashlib.sha256(plain).digest() != goods["sha256"]:
        raise RemoteProtocolError("the goods do not match the hash the vendor signed")
    value = canonical.decode(plain, max_size=MAX_SEALED)
    g = f.exact_keys(RemoteProtocolError, "goods", value, {"kind", "name", "content"})
    check(RemoteProtocolError, g["kind"], g["name"], g["content"])
    return {**g, "sha256": bytes(goods["sha256"])}
