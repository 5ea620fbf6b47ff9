"""The chains Torv trades on: their names on the wire, address formats, block interval, and the
fee-rate ceiling a node applies to every transaction it builds or co-signs there.

Pure (no I/O). ``script_for`` decodes an address whole (checksum, witness version, program
length) or raises ``AddressError``; the caller decides whose fault it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from embit import base58, bech32
from embit.networks import NETWORKS
from embit.script import Script

from .errors import LocalProtocolError

MAX_CSV_BLOCKS = 0xFFFF  # BIP68 block-based relative lock limit


class AddressError(LocalProtocolError):
    """Not an address of this network (or not an address at all)."""


@dataclass(frozen=True)
class Network:
    name: str
    hrp: str
    p2pkh: tuple[int, ...]
    p2sh: tuple[int, ...]
    coin_type: int
    rpc_port: int
    block_seconds: int
    embit_base: str  # embit network whose wif/xpub versions we reuse
    unit: str
    max_fee_rate: int  # sat/vB: the most a node pays or co-signs, whatever an estimate says

    @property
    def embit(self) -> dict[str, Any]:
        params = dict(NETWORKS[self.embit_base])
        params["bech32"] = self.hrp
        params["p2pkh"] = bytes([self.p2pkh[0]])
        params["p2sh"] = bytes([self.p2sh[0]])
        return params

    @property
    def xpub_version(self) -> bytes:
        """The version bytes of the BIP32 extended public keys moderators publish."""
        return bytes(NETWORKS[self.embit_base]["xpub"])

    def timeout_blocks(self, hours: int) -> int:
        """Escrow timeout in blocks for ``hours`` at this chain's block interval."""
        if hours <= 0:
            raise LocalProtocolError("escrow timeout must be positive", field="hours")
        blocks = math.ceil(hours * 3600 / self.block_seconds)
        if blocks > MAX_CSV_BLOCKS:
            raise LocalProtocolError(f"escrow timeout of {hours} h exceeds {MAX_CSV_BLOCKS} "
                                     "blocks", field="hours")
        return blocks

    def address(self, script_pubkey: Script) -> str:
        return str(script_pubkey.address(self.embit))

    def script_for(self, address: str) -> Script:
        """The scriptPubKey of ``address``; AddressError unless it is a valid address of this
        network (the whole string: no surrounding spaces, a valid checksum)."""
        if not isinstance(address, str) or not 14 <= len(address) <= 100:
            raise AddressError(f"not a {self.name} address", field="address")
        if address.lower().startswith(self.hrp + "1"):
            ver, prog = bech32.decode(self.hrp, address)
            if ver is None or prog is None or (ver == 0 and len(prog) not in (20, 32)):
                raise AddressError(f"invalid {self.name} address: {address}", field="address")
            op = 0 if ver == 0 else 0x50 + ver
            return Script(bytes([op, len(prog)]) + bytes(prog))
        try:
            raw = base58.decode_check(address)
        except Exception:  # noqa: BLE001 - embit raises assorted errors on bad base58
            raise AddressError(f"not a {self.name} address: {address}", field="address") from None
        if len(raw) == 21 and raw[0] in self.p2pkh:
            return Script(b"\x76\xa9\x14" + raw[1:] + b"\x88\xac")
        if len(raw) == 21 and raw[0] in self.p2sh:
            return Script(b"\xa9\x14" + raw[1:] + b"\x87")
        raise AddressError(f"not a {self.name} address: {address}", field="address")


NETWORKS_BY_NAME = {n.name: n for n in [
    Network("bitcoin", "bc", (0x00,), (0x05,), 0, 8332, 600, "main", "BTC", 1000),
    Network("testnet", "tb", (0x6F,), (0xC4,), 1, 18332, 600, "test", "BTC", 1000),
    Network("signet", "tb", (0x6F,), (0xC4,), 1, 38332, 600, "signet", "BTC", 1000),
    Network("regtest", "bcrt", (0x6F,), (0xC4,), 1, 18443, 600, "regtest", "BTC", 1000),
    Network("litecoin", "ltc", (0x30,), (0x32, 0x05), 2, 9332, 150, "main", "LTC", 500),
    Network("litecoin-regtest", "rltc", (0x6F,), (0x3A, 0xC4), 1, 19443, 150, "regtest", "LTC",
            500),
]}
NETWORK_NAMES = tuple(NETWORKS_BY_NAME)


def get_network(name: str) -> Network:
    try:
        return NETWORKS_BY_NAME[name]
    except KeyError:
        raise LocalProtocolError(
            f"unknown network {name!r}; choose one of {sorted(NETWORKS_BY_NAME)}",
            field="network") from None
