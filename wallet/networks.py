"""Chain parameters for the networks Torv trades on, and address encoding/decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from embit import base58, bech32
from embit.networks import NETWORKS
from embit.script import Script

from .errors import WalletError

MAX_CSV_BLOCKS = 0xFFFF  # BIP68 block-based relative lock limit


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

    @property
    def embit(self) -> dict[str, Any]:
        params = dict(NETWORKS[self.embit_base])
        params["bech32"] = self.hrp
        params["p2pkh"] = bytes([self.p2pkh[0]])
        params["p2sh"] = bytes([self.p2sh[0]])
        return params

    def timeout_blocks(self, hours: int) -> int:
        """Escrow timeout in blocks for ``hours`` at this chain's block interval."""
        if hours <= 0:
            raise WalletError("escrow timeout must be positive")
        blocks = math.ceil(hours * 3600 / self.block_seconds)
        if blocks > MAX_CSV_BLOCKS:
            raise WalletError(f"escrow timeout of {hours} h exceeds {MAX_CSV_BLOCKS} blocks")
        return blocks

    def address(self, script_pubkey: Script) -> str:
        return str(script_pubkey.address(self.embit))

    def script_for(self, address: str) -> Script:
        """The scriptPubKey of ``address``; WalletError if it is not for this network."""
        address = address.strip()
        if address.lower().startswith(self.hrp + "1"):
            ver, prog = bech32.decode(self.hrp, address)
            if ver is None or prog is None:
                raise WalletError(f"invalid {self.name} address: {address}")
            if ver == 0 and len(prog) not in (20, 32):
                raise WalletError(f"invalid {self.name} address: {address}")
            op = 0 if ver == 0 else 0x50 + ver
            return Script(bytes([op, len(prog)]) + bytes(prog))
        try:
            raw = base58.decode_check(address)
        except Exception:  # noqa: BLE001 - embit raises assorted errors on bad base58
            raise WalletError(f"not a {self.name} address: {address}") from None
        if len(raw) == 21 and raw[0] in self.p2pkh:
            return Script(b"\x76\xa9\x14" + raw[1:] + b"\x88\xac")
        if len(raw) == 21 and raw[0] in self.p2sh:
            return Script(b"\xa9\x14" + raw[1:] + b"\x87")
        raise WalletError(f"not a {self.name} address: {address}")


NETWORKS_BY_NAME = {n.name: n for n in [
    Network("bitcoin", "bc", (0x00,), (0x05,), 0, 8332, 600, "main", "BTC"),
    Network("testnet", "tb", (0x6F,), (0xC4,), 1, 18332, 600, "test", "BTC"),
    Network("signet", "tb", (0x6F,), (0xC4,), 1, 38332, 600, "signet", "BTC"),
    Network("regtest", "bcrt", (0x6F,), (0xC4,), 1, 18443, 600, "regtest", "BTC"),
    Network("litecoin", "ltc", (0x30,), (0x32, 0x05), 2, 9332, 150, "main", "LTC"),
    Network("litecoin-regtest", "rltc", (0x6F,), (0x3A, 0xC4), 1, 19443, 150, "regtest", "LTC"),
]}


def get_network(name: str) -> Network:
    try:
        return NETWORKS_BY_NAME[name]
    except KeyError:
        raise WalletError(
            f"unknown network {name!r}; choose one of {sorted(NETWORKS_BY_NAME)}") from None

