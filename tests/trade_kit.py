"""Three real trading nodes (buyer, vendor, moderator), each in its own process with its own
wallet on one Litecoin regtest chain, and helpers to drive a trade over JSON-RPC."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.app.regtest import Regtest

from .cluster import NodeProc, wait_for

PASSPHRASE = "trading floor"
FAST = ["--chain-poll", "0.3", "--payment-grace", "3"]
_titles = itertools.count(1)


def trader(base: Path, name: str, regtest: Regtest, bootstrap: list[str] | None = None,
           extra: list[str] | None = None, chain: list[str] | None = None) -> NodeProc:
    """A trading node; `chain` picks its backend (default: the full node's JSON-RPC)."""
    backend = chain if chain is not None else ["--chain-rpc", regtest.url]
    return NodeProc(base / name, bootstrap=bootstrap,
                    extra_args=["--chain", "litecoin-regtest", *backend, *FAST, *(extra or [])],
                    env={"TORV_WALLET_PASSPHRASE": PASSPHRASE})


@dataclass
class Market:
    buyer: NodeProc
    vendor: NodeProc
    moderator: NodeProc
    regtest: Regtest

    @property
    def nodes(self) -> list[NodeProc]:
        return [self.buyer, self.vendor, self.moderator]

    async def listing(self, title: str | None = None, amount: int = 2_000_000,
                      quantity: int = 5, **extra: Any) -> dict[str, Any]:
        """A new listing of the vendor's, once the buyer can see it."""
        title = title or f"Trade item {next(_titles)}"
        made = await self.vendor.call("listing.create", title=title, description="for sale",
                                      price={"amount": amount, "currency": "LTC"},
                                      quantity=quantity, **extra)

        async def seen() -> bool:
            hits = await self.buyer.call("listing.search", query=title)
            return any(h["listing"]["id"] == made["id"] for h in hits)

        await wait_for(seen, 30, what=f"the buyer to see {title!r}")
        return dict(made)

    async def order(self, listing: dict[str, Any], **params: Any) -> dict[str, Any]:
        params.setdefault("quantity", 1)
        params.setdefault("moderator", self.moderator.peer_id)
        if listing.get("shipping"):
            params.setdefault("shipping_option", listing["shipping"][0]["region"])
            params.setdefault("shipping_address", "Nørregade 1, 1165 København K")
        return dict(await self.buyer.call("order.create", listing_id=listing["id"], **params))

    async def mine(self, blocks: int = 1) -> None:
        import asyncio

        await asyncio.to_thread(self.regtest.mine, blocks)


async def state_of(node: NodeProc, order_id: str) -> str | None:
    try:
        return str((await node.call("order.get", order_id=order_id))["state"])
    except Exception:  # noqa: BLE001 - not arrived yet
        return None


async def reach(nodes: list[NodeProc], order_id: str, state: str, timeout: float = 30) -> None:
    for node in nodes:
        async def there(n: NodeProc = node) -> bool:
            return await state_of(n, order_id) == state
        await wait_for(there, timeout, what=f"{node.data_dir.name} to see {state}")


async def fulfil(vendor: NodeProc, order_id: str, note: str = "sent",
                 timeout: float = 30, **params: Any) -> dict[str, Any]:
    """Fulfil once the vendor's own chain view shows the escrow funded and confirmed (a vendor
    ships only then)."""
    async def allowed() -> bool:
        got = await vendor.call("order.get", order_id=order_id)
        return "order.fulfill" in got["next_actions"]

    await wait_for(allowed, timeout, what="the vendor to see the escrow confirmed")
    return dict(await vendor.call("order.fulfill", order_id=order_id, note=note, **params))


async def confirmed_order(market: Market, listing: dict[str, Any], **params: Any) -> str:
    """An order of ``listing`` the vendor confirmed, seen so by the buyer (not paid yet)."""
    oid = str((await market.order(listing, **params))["order_id"])
    await reach([market.vendor], oid, "PENDING")
    await market.vendor.call("order.confirm", order_id=oid)
    await reach([market.buyer], oid, "AWAITING_PAYMENT")
    return oid


@contextlib.asynccontextmanager
async def running_market(base: Path, regtest: Regtest, chain: list[str] | None = None,
                         extra: list[str] | None = None) -> AsyncIterator[Market]:
    """``start_market``, stopped whatever happens."""
    m = await start_market(base, regtest, chain, extra)
    try:
        yield m
    finally:
        for node in m.nodes:
            await node.stop()


async def balance(node: NodeProc) -> int:
    b = (await node.call("wallet.info"))["balance"]
    return int(b["confirmed"] + b["unconfirmed"])


async def fund(node: NodeProc, regtest: Regtest, sats: int) -> None:
    import asyncio

    address = (await node.call("wallet.address"))["address"]
    await asyncio.to_thread(regtest.fund, address, sats)
    await asyncio.to_thread(regtest.mine, 1)

    async def arrived() -> bool:
        return (await node.call("wallet.info"))["balance"]["confirmed"] >= sats
    await wait_for(arrived, 30, what="funds")


async def start_market(base: Path, regtest: Regtest, chain: list[str] | None = None,
                       extra: list[str] | None = None) -> Market:
    vendor = await trader(base, "vendor", regtest, extra=extra, chain=chain).start()
    buyer = trader(base, "buyer", regtest, [vendor.addr], extra=extra, chain=chain)
    moderator = trader(base, "moderator", regtest, [vendor.addr], extra=extra, chain=chain)
    buyer.spawn()
    moderator.spawn()
    await buyer.ready()
    await moderator.ready()
    await moderator.call("profile.set", name="Mads the Moderator",
                         moderator={"fee_bp": 200, "fee_fixed": 10_000,
                                    "description": "Fair and fast"})
    await vendor.call("profile.set", name="Vera's Woodshop", moderators=[moderator.peer_id])

    async def knows_moderator() -> bool:
        mods = await buyer.call("moderator.list")
        vendor_profile = await buyer.call("profile.get", peer_id=vendor.peer_id)
        return any(m["peer_id"] == moderator.peer_id for m in mods) and \
            vendor_profile.get("moderators") == [moderator.peer_id]

    await wait_for(knows_moderator, 30, what="the buyer to know the moderator")
    await fund(buyer, regtest, 5 * 10**8)
    return Market(buyer, vendor, moderator, regtest)
