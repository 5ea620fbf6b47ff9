"""The market's API methods: profile.*, listing.*, store.*. Each parses nothing by hand (the
schema did), calls one market service method and shapes its answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.core.api import (
    LISTING_ID,
    NETWORK_ERROR,
    NO_CHAIN,
    NOT_FOUND,
    OBJECT,
    PEER_ID,
    Args,
    Method,
    Param,
    array,
    boolean,
    enum,
    integer,
    nullable,
    obj,
    string,
)
from node.market import listing_csv
from node.market.search import SORTS, SearchFilters, price_factors
from protocol.coupons import MAX_CODE, MAX_COUPONS
from protocol.fields import CURRENCY_RE, MAX_AMOUNT
from protocol.listing import (
    CONDITIONS,
    KINDS,
    MAX_CATEGORIES,
    MAX_CATEGORY,
    MAX_DESCRIPTION,
    MAX_ESCROW_TIMEOUT_HOURS,
    MAX_LISTING_MARKETS,
    MAX_LISTING_MODERATORS,
    MAX_PROCESSING_DAYS,
    MAX_REGION,
    MAX_SHIPPING,
    MAX_TAG,
    MAX_TAGS,
    MAX_TERMS,
    MAX_TITLE,
    REMOVABLE,
)
from protocol.photos import MAX_PHOTOS, PHOTO_HASH_RE
from protocol.store import (
    MAX_ABOUT,
    MAX_ACCEPTED_MODERATORS,
    MAX_MODERATOR_DESCRIPTION,
    MAX_MODERATOR_FEE_BP,
    MAX_NAME,
)
from protocol.variants import MAX_OPTIONS, MAX_SKUS, MAX_VALUES
from protocol.variants import MAX_TEXT as MAX_VARIANT_TEXT

if TYPE_CHECKING:
    from node.market.service import MarketService

PRICE = obj({"amount": integer(0, MAX_AMOUNT, "base units (satoshis, litoshis)"),
             "currency": string(10, 3, CURRENCY_RE.pattern, "must be a currency code (LTC)")},
            ("amount", "currency"))
SHIPPING = obj({"region": string(MAX_REGION, 1), "price": PRICE}, ("region", "price"))
MODERATOR_IDS = array(PEER_ID, MAX_LISTING_MODERATORS, unique=True)
PHOTO_HASH = string(64, 64, PHOTO_HASH_RE.pattern, "must be a photo's sha256 (listing.photo_add)")
COUPON_OFF = {"percent": integer(1, 100), "amount": integer(1, MAX_AMOUNT),
              "expires": integer(1, description="no discount for an order from then on")}
LISTING_FIELDS: dict[str, Any] = {
    "title": string(MAX_TITLE, 1), "description": string(MAX_DESCRIPTION), "price": PRICE,
    "quantity": integer(0, 10**9), "tags": array(string(MAX_TAG, 1), MAX_TAGS),
    "shipping": array(SHIPPING, MAX_SHIPPING), "expires": integer(1),
    "escrow_timeout_hours": integer(1, MAX_ESCROW_TIMEOUT_HOURS),
    "moderators": nullable(MODERATOR_IDS),
    "type": enum(KINDS, "physical, digital or service (listing v2)"),
    "condition": enum(CONDITIONS, "a physical item's condition (listing v2)"),
    "categories": array(string(MAX_CATEGORY, 1), MAX_CATEGORIES, unique=True),
    "processing_days": integer(0, MAX_PROCESSING_DAYS, "days to ship after payment"),
    "terms": string(MAX_TERMS),
    "photos": array(PHOTO_HASH, MAX_PHOTOS, unique=True),
    "unlimited": boolean("digital goods or a service sold without counting stock"),
    "markets": array(string(64, 64, "[0-9a-f]{64}", "a market id (market.list)"),
                     MAX_LISTING_MARKETS, unique=True),
    # a coupon by its code, or one the listing has, as it carries it (kept on update)
    "coupons": array({"anyOf": [
        obj({"code": string(MAX_CODE, 1), **COUPON_OFF}, ("code",)),
        obj({"hash": string(64, 64, "[0-9a-f]{64}", "a coupon hash the listing has"),
             **COUPON_OFF}, ("hash",))]}, MAX_COUPONS),
    "shipping_profile": obj({
        "regions": array(obj({"countries": array(string(9, 2), 250, 1),
                              "services": array(obj({"name": string(40, 1),
                                                     "days": integer(0, 365),
                                                     "first": integer(0, MAX_AMOUNT),
                                                     "additional": integer(0, MAX_AMOUNT)},
                                                    ("name", "days", "first", "additional")),
                                                10, 1)},
                             ("countries", "services")), 20, 1),
        "pickup": boolean(), "free_above": integer(1, MAX_AMOUNT)}, ("regions",)),
    "options": array(obj({"name": string(MAX_VARIANT_TEXT, 1),
                          "values": array(string(MAX_VARIANT_TEXT, 1), MAX_VALUES, 1)},
                         ("name", "values")), MAX_OPTIONS, 1),
    "skus": array(obj({"values": array(string(MAX_VARIANT_TEXT, 1), MAX_OPTIONS, 1),
                       "surcharge": integer(0, MAX_AMOUNT), "quantity": integer(0, 10**9),
                       "code": string(MAX_VARIANT_TEXT, 1)},
                      ("values", "surcharge", "quantity")), MAX_SKUS, 1),
}
LISTING = obj({
    "id": LISTING_ID, "vendor": PEER_ID, "seq": integer(1), "title": string(),
    "description": string(), "price": PRICE, "quantity": integer(), "tags": array(string(), 100),
    "shipping": array(SHIPPING, 100), "created": integer(), "expires": integer(),
    "escrow_timeout_hours": integer(), "moderators": MODERATOR_IDS,
}, ("id", "vendor", "seq", "title", "price", "quantity", "created", "expires"), additional=True)
MODERATOR_TERMS = obj({"fee_bp": integer(0, MAX_MODERATOR_FEE_BP), "fee_fixed": integer(0),
                       "description": string(MAX_MODERATOR_DESCRIPTION)},
                      ("fee_bp", "fee_fixed"))
PROFILE = obj({
    "vendor": PEER_ID, "seq": integer(), "name": string(), "about": string(),
    "addrs": array(string(), 100), "moderator": OBJECT,
    "moderators": array(PEER_ID, MAX_ACCEPTED_MODERATORS), "mailboxes": array(PEER_ID, 10),
    "ratings": obj({"count": integer(), "average": nullable({"type": "number"})},
                   ("count", "average")),
}, ("vendor", "seq", "name", "about"), additional=True)


IMPORT_REPORT = obj({
    "rows": integer(), "created": integer(), "updated": integer(), "unchanged": integer(),
    "errors": array(obj({"line": integer(), "field": string(), "message": string()},
                        ("line", "field", "message")), 100_000),
    "imported": boolean(), "dry_run": boolean()},
    ("rows", "created", "updated", "unchanged", "errors", "imported", "dry_run"))


def methods(market: MarketService) -> list[Method]:
    async def profile_get(p: Args) -> Any:
        return await market.profile_view(p["peer_id"] or market.me)

    async def profile_set(p: Args) -> Any:
        changes = p.changes()
        if "moderator" in changes and changes["moderator"] is not None:
            changes["moderator"] = {"description": "", **changes["moderator"]}
        return await market.profile_json(await market.set_profile(changes))

    async def with_photos(fields: dict[str, Any]) -> dict[str, Any]:
        if fields.get("photos") is not None:
            fields["photos"] = await market.photos.refs(fields["photos"])
        return fields

    async def listing_create(p: Args) -> Any:
        fields = {k: v for k, v in p.changes().items() if v is not None}  # null: not given
        return (await market.create_listing(await with_photos(fields))).to_json()

    async def listing_update(p: Args) -> Any:
        changes = await with_photos(p.changes("id"))
        return (await market.update_listing(p["id"], changes)).to_json()

    async def photo_add(p: Args) -> Any:
        return await market.photos.add(p["path"], p["data"])

    async def photo_get(p: Args) -> Any:
        return await market.photos.photo(p["vendor"], p["id"], p["index"], p["thumb"])

    async def listing_stock(p: Args) -> Any:
        return (await market.set_stock(p["id"], p["quantity"], p["sku"])).to_json()

    async def listing_export(p: Args) -> Any:
        return {"csv": await market.export_listings()}

    async def listing_import(p: Args) -> Any:
        return await market.import_listings(p["csv"], p["dry_run"])

    async def listing_stock_bulk(p: Args) -> Any:
        return await market.stock_bulk(p["csv"])

    async def listing_delete(p: Args) -> Any:
        await market.delete_listing(p["id"])
        return {"id": p["id"], "deleted": True}

    async def listing_get(p: Args) -> Any:
        return await market.get_listing(p["id"], p["vendor"])

    async def listing_list(p: Args) -> Any:
        return await market.vendor_listings(p["vendor"] or market.me)

    async def listing_search(p: Args) -> Any:
        price_in = p["price_in"]
        filters = SearchFilters(p["min_price"], p["max_price"], p["currency"], p["ships_to"],
                                p["vendor"], p["sort"], p["type"], p["category"],
                                p["condition"], p["min_rating"], p["market"], price_in,
                                price_factors(market.coin, price_in, market.prices()) if price_in
                                else ())
        hits = await market.search(p["query"], p["limit"], filters)
        if not price_in:
            return [{"listing": body, "score": score} for body, score in hits]
        return [{"listing": body, "score": score,
                 "price_in": {"currency": price_in, "amount": filters.converted(body)}}
                for body, score in hits]

    async def store_fetch(p: Args) -> Any:
        return await market.fetch_store(p["peer_id"])

    listing_params = tuple(Param(k, v, k in ("title", "price", "quantity"))
                           for k, v in LISTING_FIELDS.items())
    return [
        Method("profile.get", "A vendor's profile (yours without peer_id): the newest of the "
               "DHT's (2 s for it when a copy is held) and the copy held here; ratings counts "
               "the chain-checked ones.",
               (Param("peer_id", PEER_ID),), PROFILE, profile_get, (NOT_FOUND,)),
        Method("profile.set", "Change your profile: name, about, the moderators you accept "
               "(moderators) and your own terms as moderator (moderator; null stops).",
               (Param("name", string(MAX_NAME)), Param("about", string(MAX_ABOUT)),
                Param("moderator", nullable(MODERATOR_TERMS)),
                Param("moderators", array(PEER_ID, MAX_ACCEPTED_MODERATORS, unique=True))),
               PROFILE, profile_set, (NO_CHAIN,)),
        Method("listing.create", "Publish a new listing in your store (seq 1; expires "
               "defaults to a year).", listing_params, LISTING, listing_create),
        Method("listing.update", "Change fields of one of your listings (seq + 1); an "
               "optional field given as null is removed (moderators: the profile's list "
               "applies again).",
               (Param("id", LISTING_ID, True),
                *(Param(k, nullable(v) if k in REMOVABLE and k != "moderators" else v)
                  for k, v in LISTING_FIELDS.items())),
               LISTING, listing_update, (NOT_FOUND,), min_given=2),
        Method("listing.stock", "Say how many of one of your listings are left to sell "
               "(re-signs that listing only). Items held for confirmed, unpaid orders are "
               "not counted in it: they come back if the order ends unpaid.",
               (Param("id", LISTING_ID, True), Param("quantity", integer(0, 10**9), True),
                Param("sku", array(string(MAX_VARIANT_TEXT, 1), MAX_OPTIONS, 1),
                      description="which variant (its values, one per option): required when "
                      "the listing has variants")),
               LISTING, listing_stock, (NOT_FOUND,)),
        Method("listing.stock_bulk", "How many are left of many of your listings at once, "
               "from CSV with the columns id, quantity (and sku for a variant: its values "
               "separated by /): all or nothing, each bad row named by its line; only the "
               "pages holding those listings are re-signed.",
               (Param("csv", string(listing_csv.MAX_CSV, 1), True),),
               obj({"updated": integer(), "unchanged": integer(),
                    "errors": IMPORT_REPORT["properties"]["errors"],
                    "imported": boolean()}, ("updated", "unchanged", "errors", "imported")),
               listing_stock_bulk),
        Method("listing.export", "Your listings as CSV (columns in docs/api.md).", (),
               obj({"csv": string()}, ("csv",)), listing_export),
        Method("listing.import", "Create and change your listings from CSV: every row is "
               "checked first, and the import is all or nothing; a dry run only reports.",
               (Param("csv", string(listing_csv.MAX_CSV, 1), True),
                Param("dry_run", boolean(), default=False)),
               IMPORT_REPORT, listing_import),
        Method("listing.photo_add", "Add a photo for your listings: a JPEG, PNG or WebP file "
               "on this machine (path) or its bytes (data, base64; requests are at most 1 MiB). "
               "It is re-encoded as a JPEG of at most 1600 pixels a side and 1 MiB with every "
               "bit of metadata removed (EXIF GPS, camera, ICC), plus a thumbnail; name it in "
               "listing.create/update photos by the hash returned.",
               (Param("path", string(4096, 1)), Param("data", string(1 << 20, 1))),
               obj({"hash": PHOTO_HASH, "thumb": PHOTO_HASH, "size": integer(),
                    "width": integer(), "height": integer()},
                   ("hash", "thumb", "size", "width", "height")), photo_add, min_given=1),
        Method("listing.photo", "A listing's photo (or its thumbnail) by its place in the "
               "listing: held here, else fetched from the vendor or peers and checked against "
               "its hash; data is base64.",
               (Param("vendor", PEER_ID, True), Param("id", LISTING_ID, True),
                Param("index", integer(0, MAX_PHOTOS - 1), True),
                Param("thumb", boolean(), default=False)),
               obj({"hash": PHOTO_HASH, "size": integer(), "data": string(),
                    "source": enum(["here", "vendor", "peer"])},
                   ("hash", "size", "data", "source")), photo_get, (NOT_FOUND,)),
        Method("listing.delete", "Remove one of your listings.",
               (Param("id", LISTING_ID, True),),
               obj({"id": LISTING_ID, "deleted": boolean()}, ("id", "deleted")),
               listing_delete, (NOT_FOUND,)),
        Method("listing.get", "A listing by id: that vendor's, else yours, else the only "
               "vendor's using the id.", (Param("id", LISTING_ID, True), Param("vendor", PEER_ID)),
               LISTING, listing_get, (NOT_FOUND,)),
        Method("listing.list", "Your listings, or those of a known vendor.",
               (Param("vendor", PEER_ID),), array(LISTING, 10**6), listing_list),
        Method("listing.search", "Full-text search of the listings held here (title, "
               "description, tags; every word must match, the last as a prefix; empty lists the "
               "newest), narrowed by price, currency, where it ships, vendor, type, category, "
               "condition and the vendor's rating (min_rating: the average of the ratings "
               "this node checked against its chain, see rating.list) and to what one "
               "community market shows (market), sorted by relevance, newest, price or "
               "rating (unrated vendors last); price_in compares and sorts prices in one "
               "currency, each listing's converted by this node's exchange rates.",
               (Param("query", string(500), True), Param("limit", integer(1, 500), default=50),
                Param("min_price", integer(0, MAX_AMOUNT)),
                Param("max_price", integer(0, MAX_AMOUNT)),
                Param("currency", string(10, 3, CURRENCY_RE.pattern, "a currency code")),
                Param("ships_to", string(MAX_REGION, 1)), Param("vendor", PEER_ID),
                Param("sort", enum(SORTS), default="relevance"),
                Param("type", enum(KINDS, "physical (v1 listings too), digital or service")),
                Param("category", string(MAX_CATEGORY, 1)),
                Param("condition", enum(CONDITIONS)),
                Param("min_rating", {"type": "number", "minimum": 1, "maximum": 5}),
                Param("market", string(64, 64, "[0-9a-f]{64}", "must be a market id")),
                Param("price_in", string(10, 3, CURRENCY_RE.pattern, "a currency code"))),
               array(obj({"listing": LISTING, "score": {"type": "number"},
                          "price_in": obj({"currency": string(),
                                           "amount": nullable(integer())},
                                          ("currency", "amount"))},
                         ("listing", "score")), 500), listing_search),
        Method("store.fetch", "A vendor's current profile and unexpired listings, from the "
               "vendor or, if it is offline, from the DHT and peers holding copies.",
               (Param("peer_id", PEER_ID, True),),
               obj({"vendor": PEER_ID, "manifest_seq": integer(), "complete": boolean(),
                    "profile": nullable(OBJECT), "listings": array(LISTING, 10**6)},
                   ("vendor", "manifest_seq", "complete", "profile", "listings")),
               store_fetch, (NOT_FOUND, NETWORK_ERROR)),
    ]
