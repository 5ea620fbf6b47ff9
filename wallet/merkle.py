"""What a light wallet checks itself instead of trusting its Electrum server: a transaction is
in the block the server says, by its merkle proof against that block's header, and the header
carries the proof of work its difficulty claims, no easier than the network allows.

Pure functions (no I/O). Hashes are in internal byte order unless named ``*_hex`` (display
order, as Electrum servers and block explorers write them).
"""

from __future__ import annotations

import hashlib

from .errors import ServerLied

HEADER_SIZE = 80
# The easiest difficulty each chain accepts (its powLimit, as compact bits).
POW_LIMIT_BITS = {"bitcoin": 0x1D00FFFF, "testnet": 0x1D00FFFF, "signet": 0x1E0377AE,
                  "regtest": 0x207FFFFF, "litecoin": 0x1E0FFFFF,
                  "litecoin-regtest": 0x207FFFFF}
SCRYPT_CHAINS = {"litecoin", "litecoin-regtest"}


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def scripthash(script_pubkey: bytes) -> str:
    """The Electrum protocol's key for an output script: sha256, byte-reversed, hex."""
    return hashlib.sha256(script_pubkey).digest()[::-1].hex()


def _header(header_hex: str) -> bytes:
    try:
        raw = bytes.fromhex(header_hex)
    except (TypeError, ValueError):
        raise ServerLied("the server sent a header that is not hex") from None
    if len(raw) != HEADER_SIZE:
        raise ServerLied(f"a block header is {HEADER_SIZE} bytes, the server sent {len(raw)}")
    return raw


def header_time(header_hex: str) -> int:
    return int.from_bytes(_header(header_hex)[68:72], "little")


def target(bits: int) -> int:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    if bits & 0x00800000:
        raise ServerLied("negative difficulty target")
    return mantissa << (8 * (exponent - 3)) if exponent > 3 else mantissa >> (8 * (3 - exponent))


def check_header(header_hex: str, network: str) -> bytes:
    """The header's block hash, once its proof of work meets its own target and that target
    is no easier than ``network`` allows (ServerLied otherwise)."""
    raw = _header(header_hex)
    bits = int.from_bytes(raw[72:76], "little")
    want = target(bits)
    limit = target(POW_LIMIT_BITS.get(network, 0x1D00FFFF))
    if want <= 0 or want > limit:
        raise ServerLied("the server sent a header easier than the network allows")
    if network in SCRYPT_CHAINS:
        pow_hash = hashlib.scrypt(raw, salt=raw, n=1024, r=1, p=1, dklen=32)
    else:
        pow_hash = sha256d(raw)
    if int.from_bytes(pow_hash, "little") > want:
        raise ServerLied("the server sent a header without its proof of work")
    return sha256d(raw)


def merkle_root(txid_hex: str, branch_hex: object, pos: object) -> bytes:
    """The merkle root implied by a transaction, its branch and its position in the block
    (``branch_hex`` and ``pos`` as the server sent them: checked here)."""
    if not isinstance(pos, int) or pos < 0 or not isinstance(branch_hex, list) or \
            len(branch_hex) > 64:
        raise ServerLied("the server sent a malformed merkle proof")
    try:
        node = bytes.fromhex(txid_hex)[::-1]
        for sibling_hex in branch_hex:
            sibling = bytes.fromhex(sibling_hex)[::-1]
            if len(sibling) != 32:
                raise ValueError
            node = sha256d(sibling + node) if pos & 1 else sha256d(node + sibling)
            pos >>= 1
    except (TypeError, ValueError):
        raise ServerLied("the server sent a malformed merkle proof") from None
    if pos:
        raise ServerLied("the merkle proof's position does not fit its branch")
    return node


def verify_inclusion(txid_hex: str, branch_hex: object, pos: object, header_hex: str,
                     network: str) -> None:
    """ServerLied unless the transaction is in the block whose header is given."""
    check_header(header_hex, network)
    if merkle_root(txid_hex, branch_hex, pos) != _header(header_hex)[36:68]:
        raise ServerLied(f"transaction {txid_hex[:16]}… is not in the block the server named")
