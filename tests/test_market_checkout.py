"""A community market's moderators at checkout (issue 19): for a listing in a market, the
market's moderators its vendor accepts come first in ``moderator.list {listing_id}`` (each
naming the market), then the vendor's other accepted ones, then those it does not accept; a
market that does not show the listing (its log removed it) lends it no moderator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.app.regtest import Regtest

from .cluster import wait_for
from .trade_kit import start_market, trader


async def test_the_markets_moderators_come_first(regtest: Regtest, tmp_path: Path) -> None:
    market = await start_market(tmp_path, regtest)
    buyer, vendor, usual = market.buyer, market.vendor, market.moderator
    guild = await trader(tmp_path, "guild", regtest, [vendor.addr]).start()
    stranger = await trader(tmp_path, "stranger", regtest, [vendor.addr]).start()
    try:
        for node, name in ((guild, "Zelda of the Guild"), (stranger, "Anna Stranger")):
            await node.call("profile.set", name=name,
                            moderator={"fee_bp": 100, "fee_fixed": 1_000, "description": "ok"})
        made = await guild.call("market.create", name="Wood guild",
                                moderators=[guild.peer_id])
        await buyer.call("market.join", market=made["market"], peer_id=guild.peer_id)
        await vendor.call("profile.set", moderators=[usual.peer_id, guild.peer_id])
        listing = await vendor.call("listing.create", title="Oak chair", quantity=1,
                                    price={"amount": 2_000_000, "currency": "LTC"},
                                    markets=[made["market"]])

        async def offered() -> list[dict[str, Any]]:
            mods = await buyer.call("moderator.list", listing_id=listing["id"],
                                    vendor=vendor.peer_id)
            profile = await buyer.call("profile.get", peer_id=vendor.peer_id)
            known = {m["peer_id"] for m in mods}
            if {usual.peer_id, guild.peer_id, stranger.peer_id} <= known and \
                    profile.get("moderators") == [usual.peer_id, guild.peer_id]:
                return mods
            return []

        mods = await wait_for(offered, 60, what="every moderator and the vendor's choice")
        assert [(m["peer_id"], m["accepted"], m["markets"]) for m in mods] == [
            (guild.peer_id, True, ["Wood guild"]), (usual.peer_id, True, []),
            (stranger.peer_id, False, [])]
        assert "markets" not in (await buyer.call("moderator.list"))[0]  # no listing named

        # the guild removes the chair from its market: the guild's moderator is no longer
        # the market's for it (still accepted by the vendor)
        await guild.call("market.propose", market=made["market"], action="remove_listing",
                         vendor=vendor.peer_id, listing=listing["id"], reason="not oak")

        async def removed() -> bool:
            return len(await buyer.call("market.log", market=made["market"])) == 1

        await wait_for(removed, 30, what="the removal at the buyer")
        mods = await buyer.call("moderator.list", listing_id=listing["id"],
                                vendor=vendor.peer_id)
        assert {m["peer_id"]: m["markets"] for m in mods}[guild.peer_id] == []
    finally:
        for node in (*market.nodes, guild, stranger):
            await node.stop()
