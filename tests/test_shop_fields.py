"""The store form's variants and coupons as typed (tui/shop_fields.py): what they become and
what is refused, with the reason, before anything is sent."""

from __future__ import annotations

import pytest

from tui.format import amount_in
from tui.shop_fields import parse_coupons, parse_variants, variants_text


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
