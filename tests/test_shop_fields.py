"""The store form's variants and coupons as typed (tui/shop_fields.py): what they become and
what is refused, with the reason, before anything is sent."""

from __future__ import annotations

import pytest

from tui.format import amount_in
from tui.shop_fields import (
    parse_coupons,
    parse_shipping,
    parse_stock,
    parse_variants,
    shipping_text,
    stock_text,
    variants_text,
)


def coins(text: str) -> int:
    return amount_in(text, "LTC")


def test_every_combination_is_a_variant_with_the_surcharges_of_its_values() -> None:
    options, skus = parse_variants("size=S|L+0.005; wood=oak|ash+0.001", coins, 3)
    assert options == [{"name": "size", "values": ["S", "L"]},
                       {"name": "wood", "values": ["oak", "ash"]}]
    assert [(s["values"], s["surcharge"], s["quantity"]) for s in skus] == [
        (["S", "oak"], 0, 3), (["S", "ash"], 100_000, 3),
        (["L", "oak"], 500_000, 3), (["L", "ash"], 600_000, 3)]
    assert variants_text(options) == "size=S|L; wood=oak|ash"
    assert parse_variants("  ", coins, 1) == ([], [])


def test_variants_already_listed_keep_their_stock_surcharge_and_code() -> None:
    existing = [{"values": ["S"], "surcharge": 7, "quantity": 0, "code": "ST-S"},
                {"values": ["M"], "surcharge": 9, "quantity": 4}]
    _, skus = parse_variants("size=S|M|L", coins, 2, existing)
    assert skus == [{"values": ["S"], "surcharge": 7, "quantity": 0, "code": "ST-S"},
                    {"values": ["M"], "surcharge": 9, "quantity": 4},
                    {"values": ["L"], "surcharge": 0, "quantity": 2}]
    # a surcharge typed sets every variant's from the values again (stock still kept)
    _, skus = parse_variants("size=S|M+0.01|L", coins, 2, existing)
    assert [(s["surcharge"], s["quantity"]) for s in skus] == [(0, 0), (1_000_000, 4), (0, 2)]


@pytest.mark.parametrize(("typed", "said"), [
    ("size", "is not name=value"), ("=S|M", "is not name=value"),
    ("size=S|S", "given twice"), ("size=S||M", "empty"), ("size=S; size=M", "named twice"),
    ("size=S+abc", "not an amount"), ("size=" + "|".join(map(str, range(21))), "at most 20"),
    ("; ".join(f"o{i}=a|b" for i in range(6)), "at most 5 options"),
    ("a=1|2|3|4|5|6|7|8|9|10; b=1|2|3|4|5|6|7|8|9|10; c=1|2|3", "300 combinations"),
    ("; ".join(f"o{i}=" + "|".join(map(str, range(20))) for i in range(5)),
     "3200000 combinations")])
def test_variants_refused_as_typed(typed: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_variants(typed, coins, 1)


def test_coupons_as_typed() -> None:
    assert parse_coupons("spring=10%, FRIEND-2 = 0.001", coins) == [
        {"code": "SPRING", "percent": 10}, {"code": "FRIEND-2", "amount": 100_000}]
    assert parse_coupons("JUL=2.50", lambda t: amount_in(t, "EUR")) == [
        {"code": "JUL", "amount": 250}]
    assert parse_coupons(" , ", coins) == []
    assert parse_coupons("MAY=5% until 2027-05-31", coins) == [
        {"code": "MAY", "percent": 5, "expires": 1811808000}]  # 2027-06-01T00:00:00Z


@pytest.mark.parametrize(("typed", "said"), [
    ("SPRING", "is not CODE=10%"), ("two words=5%", "is not CODE"), ("A=0%", "1..100"),
    ("A=101%", "1..100"), ("A=ten%", "1..100"), ("A=0", "more than 0"), ("A=x", "not an amount"),
    ("A=5%, a=6%", "given twice"), ("A=5% until May", "until a day"),
    (", ".join(f"C{i}=5%" for i in range(11)), "at most 10")])
def test_coupons_refused_as_typed(typed: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_coupons(typed, coins)


def test_stock_per_variant_as_typed() -> None:
    skus = [{"values": ["S", "oak"], "surcharge": 0, "quantity": 1},
            {"values": ["L", "birch"], "surcharge": 5, "quantity": 1, "code": "LB"}]
    out = parse_stock("S/oak=3, l/BIRCH=0", skus)  # values compared without case
    assert [(s["values"], s["quantity"]) for s in out] == [(["S", "oak"], 3), (["L", "birch"], 0)]
    assert out[1]["code"] == "LB" and skus[0]["quantity"] == 1  # the input is not changed
    assert parse_stock("", skus) == skus
    assert stock_text(out) == "S/oak=3, L/birch=0"
    for typed, said in (("M/oak=1", "names no variant"), ("S/oak=three", "whole number"),
                        ("S/oak", "names no variant"), ("S/oak=-1", "whole number")):
        with pytest.raises(ValueError, match=said):
            parse_stock(typed, skus)


def test_a_shipping_profile_as_typed_and_shown() -> None:
    typed = ("dk se,NO: Post 3d 0.0004+0.0001, Express 1d 0.001; WORLDWIDE: Post 10d 0.0012; "
             "pickup; free above 0.02")
    profile = parse_shipping(typed, coins)
    assert profile == {
        "regions": [{"countries": ["DK", "SE", "NO"], "services": [
            {"name": "Post", "days": 3, "first": 40_000, "additional": 10_000},
            {"name": "Express", "days": 1, "first": 100_000, "additional": 0}]},
            {"countries": ["WORLDWIDE"], "services": [
                {"name": "Post", "days": 10, "first": 120_000, "additional": 0}]}],
        "pickup": True, "free_above": 2_000_000}
    shown = shipping_text(profile, lambda n: f"{n / 10**8:.8f}".rstrip("0"))
    assert parse_shipping(shown, coins) == profile  # what the form shows reads back the same
    assert parse_shipping(" ", coins) is None
    assert parse_shipping("DK: Royal Mail 2nd class 4d 0", coins)["regions"][0]["services"] == [
        {"name": "Royal Mail 2nd class", "days": 4, "first": 0, "additional": 0}]


@pytest.mark.parametrize(("typed", "said"), [
    ("DK Post 3d 0.1", "COUNTRIES: service"),
    ("DNK: Post 3d 0.1", "two-letter"),
    ("DK DK: Post 3d 0.1", "each once"),
    ("DK: Post 0.1", "not a service"),
    ("DK: Post 3d", "not a service"),
    ("DK: Post 3d lots", "Post"),
    ("DK: Post 3d 0.1, Post 2d 0.2", "each once"),
    ("DK: A/B 3d 0.1", "without /"),
    ("pickup", "at least one region"),
    ("DK: Post 3d 0.1; free above 0", "more than 0"),
    (";".join(f"D{chr(65 + i)}: P 1d 0.1" for i in range(21)), "at most 20 regions"),
])
def test_shipping_refused_as_typed(typed: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_shipping(typed, coins)
