"""The node's settings file: ``<data dir>/torv.toml``, written by the first-run setup
(``torv``) and the TUI's settings screen, read by ``torv`` and ``torv node`` (a command-line
flag given overrides the file).

    # Torv node settings (docs: README "Running a real node")
    chain = "litecoin"                       # the coin network of the wallet; "" for none
    electrum = ["ssl://electrum.example:50002"]   # Electrum servers, tried in turn, or
    chain_rpc = ""                           # a full node's JSON-RPC URL or cookie file
    listen = ["/ip4/0.0.0.0/tcp/4717"]       # libp2p listen addresses
    bootstrap = []                           # peers to connect to at start (multiaddrs)
    rpc_port = 8737                          # JSON-RPC on 127.0.0.1
    mdns = true                              # look for Torv nodes on the LAN (mDNS)
    upnp = true                              # ask the router to forward the listen port
    relay_service = "auto"                   # relay for peers behind NAT: on, off, auto
    rates = []                               # exchange rate sources (URLs or files)
    carry = "all"                            # listings kept: all, or markets (joined ones)

Only these keys; anything else is refused with the key named, so a typo is never silently
ignored. The wallet's words and passphrase are never written here.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from node.core.config import DEFAULT_LISTEN, DEFAULT_RPC_PORT
from protocol.errors import LocalProtocolError
from protocol.networks import NETWORKS_BY_NAME
from wallet.atomic import write_private_file

CONFIG_NAME = "torv.toml"


@dataclass
class Settings:
    chain: str = ""
    electrum: list[str] = field(default_factory=list)
    chain_rpc: str = ""
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    bootstrap: list[str] = field(default_factory=list)
    rpc_port: int = DEFAULT_RPC_PORT
    mdns: bool = True
    upnp: bool = True
    relay_service: str = "auto"
    rates: list[str] = field(default_factory=list)
    carry: str = "all"

    def check(self) -> Settings:
        """The settings, or a LocalProtocolError naming the first wrong one."""
        if self.chain and self.chain not in NETWORKS_BY_NAME:
            raise LocalProtocolError(f"chain: one of {sorted(NETWORKS_BY_NAME)}, or empty",
                                     field="chain")
        if self.electrum and self.chain_rpc:
            raise LocalProtocolError("electrum and chain_rpc: give one of them", field="chain")
        if (self.electrum or self.chain_rpc) and not self.chain:
            raise LocalProtocolError("chain: a chain backend needs the chain it serves",
                                     field="chain")
        for url in self.electrum:
            if not url.startswith(("tcp://", "ssl://")) or ":" not in url[6:]:
                raise LocalProtocolError(f"electrum: {url!r} is not tcp://host:port or "
                                         "ssl://host:port", field="electrum")
        for name in ("listen", "bootstrap"):
            for addr in getattr(self, name):
                if not addr.startswith("/"):
                    raise LocalProtocolError(f"{name}: {addr!r} is not a multiaddr", field=name)
        if not self.listen:
            raise LocalProtocolError("listen: at least one address", field="listen")
        if self.relay_service not in ("on", "off", "auto"):
            raise LocalProtocolError("relay_service: on, off or auto", field="relay_service")
        if self.carry not in ("all", "markets"):
            raise LocalProtocolError("carry: all or markets", field="carry")
        if not 0 <= self.rpc_port <= 65535:
            raise LocalProtocolError("rpc_port: 0..65535", field="rpc_port")
        return self

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise LocalProtocolError(f"{unknown[0]}: not a setting (settings: {sorted(known)})",
                                     field=unknown[0])
        values: dict[str, Any] = {}
        for name, value in raw.items():
            want = known[name].type
            ok = (isinstance(value, bool) if want == "bool" else
                  isinstance(value, int) and not isinstance(value, bool) if want == "int" else
                  isinstance(value, list) and all(isinstance(v, str) for v in value)
                  if want.startswith("list") else isinstance(value, str))
            if not ok:
                raise LocalProtocolError(f"{name}: must be {want}", field=name)
            values[name] = value
        return cls(**values).check()


def path_of(data_dir: Path) -> Path:
    return data_dir / CONFIG_NAME


def load(data_dir: Path) -> Settings | None:
    """The settings file of ``data_dir`` (None when there is none yet)."""
    path = path_of(data_dir)
    if not path.exists():
        return None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LocalProtocolError(f"{path}: not valid TOML: {exc}") from None
    return Settings.from_dict(raw)


def save(data_dir: Path, settings: Settings) -> Path:
    """Write the settings (checked first) atomically, mode 0600."""
    settings.check()
    lines = ["# Torv node settings (README: \"Running a real node\"); torv and torv node read",
             "# them, a command-line flag overrides them."]
    for name, value in asdict(settings).items():
        lines.append(f"{name} = {_toml(value)}")
    path = path_of(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private_file(path, ("\n".join(lines) + "\n").encode())
    return path


def _toml(value: Any) -> str:
    """A TOML value of a boolean, a string, an int or a list of strings (JSON's string
    escapes are TOML's basic-string escapes for these)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
