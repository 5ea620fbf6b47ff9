"""The escrow every order pays into: 2-of-3 with a vendor timeout branch, as OpenBazaar 2 did.
Part of the protocol (all three parties must build the same script); pure, no I/O.

Witness script (P2WSH)::

    OP_IF
        2 <k1> <k2> <k3> 3 OP_CHECKMULTISIG        # buyer, vendor, moderator; keys sorted
    OP_ELSE
        <N> OP_CHECKSEQUENCEVERIFY OP_DROP <vendor> OP_CHECKSIG   # vendor alone after N blocks
    OP_ENDIF

Spending paths: any two of the three keys (buyer+vendor release, moderator+buyer or
moderator+vendor dispute), or the vendor alone once the funding output has N confirmations.
"""

from __future__ import annotations

from dataclasses import dataclass

from embit import bip32
from embit.ec import PublicKey
from embit.script import Script, Witness, p2wsh

from .errors import LocalProtocolError
from .networks import MAX_CSV_BLOCKS

OP_IF, OP_ELSE, OP_ENDIF = 0x63, 0x67, 0x68
OP_2, OP_3 = 0x52, 0x53
OP_CHECKMULTISIG, OP_CHECKSIG = 0xAE, 0xAC
OP_CSV, OP_DROP = 0xB2, 0x75


class EscrowError(LocalProtocolError):
    """Keys, a timeout or a script that cannot make a Torv escrow."""


def script_num(n: int) -> bytes:
    """Minimal push of a positive script number (OP_1..OP_16, else little-endian bytes)."""
    if not 1 <= n <= MAX_CSV_BLOCKS:
        raise EscrowError(f"timeout must be between 1 and {MAX_CSV_BLOCKS} blocks")
    if n <= 16:
        return bytes([0x50 + n])
    data = n.to_bytes((n.bit_length() + 8) // 8, "little")  # room for the sign bit
    if len(data) > 1 and data[-1] == 0 and not data[-2] & 0x80:
        data = data[:-1]
    return bytes([len(data)]) + data


def _key(raw: bytes, role: str) -> bytes:
    try:
        key = PublicKey.parse(bytes(raw))
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad points
        raise EscrowError(f"{role} key is not a valid public key") from None
    if not key.compressed:
        raise EscrowError(f"{role} key must be compressed (33 bytes)")
    return bytes(key.sec())


@dataclass(frozen=True)
class EscrowTerms:
    buyer: bytes
    vendor: bytes
    moderator: bytes
    timeout_blocks: int

    def __post_init__(self) -> None:
        keys = [_key(self.buyer, "buyer"), _key(self.vendor, "vendor"),
                _key(self.moderator, "moderator")]
        if len(set(keys)) != 3:
            raise EscrowError("buyer, vendor and moderator keys must all differ")
        script_num(self.timeout_blocks)

    @property
    def sorted_keys(self) -> list[bytes]:
        return sorted([self.buyer, self.vendor, self.moderator])

    def witness_script(self) -> Script:
        body = bytes([OP_IF, OP_2])
        for key in self.sorted_keys:
            body += bytes([33]) + key
        body += bytes([OP_3, OP_CHECKMULTISIG, OP_ELSE]) + script_num(self.timeout_blocks)
        body += bytes([OP_CSV, OP_DROP, 33]) + self.vendor + bytes([OP_CHECKSIG, OP_ENDIF])
        return Script(body)

    def script_pubkey(self) -> Script:
        return p2wsh(self.witness_script())


def moderator_pubkey(xpub: str, index: int) -> bytes:
    """The moderator's key for one escrow: child ``index`` of the xpub in its profile."""
    try:
        key = bip32.HDKey.from_base58(xpub)
        if key.is_private or not 0 <= index < 2**31:
            raise ValueError
        return bytes(key.derive([index]).key.sec())
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad keys
        raise EscrowError("the moderator's escrow key (xpub) is not valid") from None


@dataclass(frozen=True)
class ParsedEscrow:
    """What a signer can learn from a witness script alone."""

    keys: list[bytes]  # the three multisig keys, sorted
    vendor: bytes
    timeout_blocks: int


def parse_witness_script(data: bytes) -> ParsedEscrow:
    """Parse a Torv escrow script; EscrowError unless it is exactly our template."""
    d = bytes(data)
    try:
        if d[:2] != bytes([OP_IF, OP_2]):
            raise ValueError
        keys = [d[3 + 34 * i: 3 + 34 * i + 33] for i in range(3)]
        if any(d[2 + 34 * i] != 33 for i in range(3)):
            raise ValueError
        pos = 2 + 34 * 3
        if d[pos:pos + 3] != bytes([OP_3, OP_CHECKMULTISIG, OP_ELSE]):
            raise ValueError
        pos += 3
        if 0x51 <= d[pos] <= 0x60:
            n, pos = d[pos] - 0x50, pos + 1
        else:
            length = d[pos]
            n = int.from_bytes(d[pos + 1: pos + 1 + length], "little")
            pos += 1 + length
        vendor = d[pos + 3: pos + 36]
        parsed = ParsedEscrow(keys, vendor, n)
        if vendor not in keys:
            raise ValueError
    except (ValueError, IndexError):
        raise EscrowError("not a Torv escrow script") from None
    others = [k for k in keys if k != vendor]
    rebuilt = EscrowTerms(others[0], vendor, others[1], n)
    if bytes(rebuilt.witness_script().data) != d:
        raise EscrowError("not a Torv escrow script")
    return parsed


def multisig_witness(witness_script: Script, sigs: dict[bytes, bytes]) -> Witness:
    """Witness for the 2-of-3 branch from signatures keyed by public key (33 bytes)."""
    parsed = parse_witness_script(witness_script.data)
    ordered = [sigs[k] for k in parsed.keys if k in sigs]
    if len(ordered) < 2:
        raise EscrowError(f"the 2-of-3 branch needs two signatures, have {len(ordered)}")
    return Witness([b"", *ordered[:2], b"\x01", witness_script.data])


def timeout_witness(witness_script: Script, vendor_sig: bytes) -> Witness:
    return Witness([vendor_sig, b"", witness_script.data])
