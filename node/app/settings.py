"""The settings file over the API: ``settings.get`` and ``settings.set`` (the TUI's settings
screen). A change is written to ``torv.toml`` and applies at the node's next start; the chain
(the wallet's network) is not changed here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from node.app import config_file
from node.app.config_file import Settings
from node.core.api import Args, Method, Param, array, boolean, enum, integer, obj, string
from node.core.services import Service

ADDRS = array(string(256, 1), 16)
SETTINGS = obj({
    "chain": string(), "electrum": array(string(), 16), "chain_rpc": string(),
    "listen": array(string(), 16), "bootstrap": array(string(), 16),
    "rpc_port": integer(0, 65535), "mdns": boolean(), "upnp": boolean(),
    "relay_service": enum(["on", "off", "auto"]), "rates": array(string(), 16), "file": string(),
    "carry": enum(["all", "markets"]),
    "exists": boolean(),
    "applies_at_next_start": boolean()},
    ("chain", "electrum", "chain_rpc", "listen", "bootstrap", "rpc_port", "file", "exists"))


class SettingsService(Service):
    name = "settings"

    def __init__(self, core: Any, data_dir: Path) -> None:
        super().__init__(core)
        self.data_dir = data_dir

    def current(self) -> dict[str, Any]:
        settings = config_file.load(self.data_dir)
        return {**dataclasses.asdict(settings or Settings()),
                "file": str(config_file.path_of(self.data_dir)), "exists": settings is not None}

    def change(self, changes: dict[str, Any]) -> dict[str, Any]:
        settings = config_file.load(self.data_dir) or Settings()
        merged = Settings(**{**dataclasses.asdict(settings), **changes})
        if "electrum" in changes and changes["electrum"]:
            merged.chain_rpc = ""  # one backend or the other
        if "chain_rpc" in changes and changes["chain_rpc"]:
            merged.electrum = []
        config_file.save(self.data_dir, merged)
        return {**self.current(), "applies_at_next_start": True}


def methods(svc: SettingsService) -> list[Method]:
    async def get(p: Args) -> Any:
        return svc.current()

    async def set_(p: Args) -> Any:
        return svc.change(p.changes())

    return [
        Method("settings.get", "The node's settings file (torv.toml): chain backend, listen "
               "and bootstrap addresses, RPC port.", (), SETTINGS, get),
        Method("settings.set", "Change the settings file; it applies at the node's next "
               "start. Electrum servers and a full node's RPC replace one another.",
               (Param("electrum", array(string(200, 1), 16)), Param("chain_rpc", string(500)),
                Param("listen", array(string(256, 1), 16, 1)), Param("bootstrap", ADDRS),
                Param("rpc_port", integer(0, 65535)),
                Param("mdns", boolean("look for Torv nodes on the LAN (mDNS)")),
                Param("upnp", boolean("ask the router (UPnP) to forward the listen port")),
                Param("relay_service", enum(["on", "off", "auto"], "relay connections for peers "
                                            "behind NAT: on, off, or auto (only while public)")),
                Param("rates", array(string(500, 1), 16)),
                Param("carry", enum(["all", "markets"], "whose listings to fetch and keep: "
                                    "every store's, or only the joined markets' stores and "
                                    "those browsed"))),
               SETTINGS, set_, min_given=1),
    ]
