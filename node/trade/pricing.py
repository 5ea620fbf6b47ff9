"""What an order costs before it is made (``order.quote``, and ``order.create``'s checks): the
listing it names, the exchange rate of a listing priced in local money, the moderators its
vendor accepts, a size whose release fee fits; on the trading actions (``TradeActions``
inherits it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.core.node import NodeCore
from node.core.services import NotFound
from node.trade import signing
from protocol import contract_rules as r
from protocol import fiat
from protocol.coupons import normalize as normalize_coupon
from protocol.errors import LocalProtocolError
from protocol.fees import max_fee, payment_vsize, release_vsize
from protocol.listing import Listing
from protocol.store import PROFILE_TYPE
from wallet.wallet import Wallet

if TYPE_CHECKING:
    from node.trade.service import TradingService


def field_of(why: str) -> str:
    """Which order parameter a pricing refusal is about."""
    return ("coupon" if "coupon" in why else "sku" if "sku" in why or "variant" in why
            else "quantity" if "quantity" in why or "cost" in why else "shipping_option")


class OrderPricing:
    svc: TradingService
    core: NodeCore
    me: str

    def wallet(self, unlocked: bool = True) -> Wallet:
        raise NotImplementedError

    def rate_now(self, coin: str, currency: str) -> dict[str, Any] | None:
        rates = self.svc.rates
        return rates.current(coin, currency) if rates is not None else None

    def rate_for(self, listing: Listing, coin: str) -> dict[str, Any] | None:
        """The exchange rate an order of ``listing`` is priced with (None: priced in coin);
        LocalProtocolError when it is priced in local money and no fresh rate is known."""
        currency = listing.body["price"]["currency"]
        if not fiat.is_fiat(currency):
            return None
        rate = self.rate_now(coin, currency)
        if rate is None:
            raise LocalProtocolError(
                f"the listing is priced in {currency} and this node has no fresh {coin}/"
                f"{currency} exchange rate (start it with --rates, docs/api.md)",
                field="listing_id")
        return rate

    async def quote(self, listing_id: str, vendor: str | None, quantity: int,
                    moderator: str | None, shipping_option: str,
                    coupon: str | None = None, sku: list[str] | None = None
                    ) -> dict[str, Any]:
        """Every cost of an order before it is made, in base units."""
        network = self.svc.network()
        listing = Listing.from_trusted(await self._listing_wire(listing_id, vendor))
        body = listing.body
        options = {o["region"]: o["price"]["amount"] for o in body["shipping"]}
        if coupon is not None:
            coupon = normalize_coupon(coupon)
        try:
            exchange = self.rate_for(listing, network.unit)
            cost = r.price_order(body, quantity, shipping_option, coupon, sku, exchange,
                                 self.core.now())
        except ValueError as exc:
            raise LocalProtocolError(str(exc), field=field_of(str(exc))) from None
        rate = await self.wallet(False).fee_rate()
        accepted = await self.accepted_moderators(listing)
        out: dict[str, Any] = {
            "listing_id": listing.id, "vendor": listing.vendor, "title": body["title"],
            "currency": cost.currency, "tradeable": cost.currency == network.unit,
            "quantity": quantity, "available": body["quantity"],
            "items": cost.items, "shipping": cost.shipping, "amount_due": cost.amount_due,
            "discount": cost.discount,
            "price_currency": body["price"]["currency"],
            "shipping_options": [{"region": k, "price": v} for k, v in options.items()],
            "network_fee_estimate": rate * payment_vsize(2, 2),
            "release_fee_estimate": signing.release_fee(rate, 1),
            "escrow_timeout_hours": body["escrow_timeout_hours"],
            "moderators": accepted}
        out["total_from_wallet"] = cost.amount_due + out["network_fee_estimate"]
        if exchange is not None:
            out["rate"] = {**exchange, "age": max(0, self.core.now() - int(exchange["time"]))}
        if moderator is not None:
            if moderator not in accepted:
                raise LocalProtocolError(f"the vendor does not accept {moderator} as "
                                         f"moderator; choose one of {accepted}",
                                         field="moderator")
            profile = await self.svc.market.store_object(moderator, PROFILE_TYPE)
            terms = profile.moderator if profile is not None else None
            if terms is None:
                raise LocalProtocolError(f"{moderator} is not a known moderator",
                                         field="moderator")
            out["moderator_fee_if_disputed"] = r.moderator_fee(cost.amount_due,
                                                               terms["fee_bp"],
                                                               terms["fee_fixed"])
        return out

    async def accepted_moderators(self, listing: Listing) -> list[str]:
        """Whom the vendor accepts as moderator for ``listing``: the listing's own list, else
        its signed profile's."""
        if listing.moderators is not None:
            return listing.moderators
        profile = await self.svc.market.store_object(listing.vendor, PROFILE_TYPE)
        if profile is None:
            profile = await self.svc.market.get_profile(listing.vendor)
        return profile.accepted_moderators if profile is not None else []

    async def moderators_for(self, listing_id: str, vendor: str | None,
                             moderators: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The known moderators as a buyer of ``listing_id`` meets them: each with whether the
        vendor accepts it and the community markets (showing the listing) it moderates; the
        markets' moderators the vendor accepts first, then the others it accepts, then the
        rest."""
        listing = Listing.from_trusted(await self._listing_wire(listing_id, vendor))
        accepted = set(await self.accepted_moderators(listing))
        of_markets: dict[str, list[str]] = {}
        if self.svc.market_moderators is not None:
            of_markets = await self.svc.market_moderators(
                list(listing.body.get("markets", [])), listing.vendor, listing.id)
        rows = [{**m, "accepted": m["peer_id"] in accepted,
                 "markets": of_markets.get(m["peer_id"], [])} for m in moderators]
        return sorted(rows, key=lambda m: (not m["accepted"], not m["markets"]))

    @staticmethod
    def _check_size(network: Any, due: int, rate: int) -> None:
        """An order must be big enough that its release fee fits the fee bounds."""
        vsize = release_vsize(3)
        if rate * vsize > max_fee(network, due, vsize):
            raise LocalProtocolError(
                f"an order of {due} is too small: releasing its escrow would cost about "
                f"{rate * vsize}, over 5% of it", field="quantity")

    async def _listing_wire(self, listing_id: str, vendor: str | None) -> bytes:
        market = self.svc.market
        if vendor is None:
            others = [v for v in await market.vendors_of_listing(listing_id) if v != self.me]
            if not others:
                raise NotFound(f"no listing {listing_id} known")
            if len(others) > 1:
                raise LocalProtocolError(f"several vendors have a listing {listing_id}; give "
                                         f"vendor (one of {others})", field="vendor")
            vendor = others[0]
        wire = await market.listing_wire(vendor, listing_id)
        if wire is None:
            raise NotFound(f"no listing {listing_id} of {vendor} known")
        return wire
