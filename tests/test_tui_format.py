"""The TUI's pure helpers: amounts read as typed, money in one form, a wallet transaction as
one line with its net effect and what it was, an order's history as sentences."""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text

from tui.format import history, parse_coins, parse_listing_form, payout_by_role, reach_text
from tui.market_pane import price_text
from tui.wallet_pane import transaction_lines


@pytest.mark.parametrize(("typed", "units"), [
    ("1.5", 150_000_000), ("1,5", 150_000_000), (" 0.045 ", 4_500_000), ("0,00000001", 1),
    ("2", 200_000_000), ("0", 0)])
def test_an_amount_is_read_with_either_decimal_mark(typed: str, units: int) -> None:
    assert parse_coins(typed) == units


@pytest.mark.parametrize(("typed", "said"), [
    ("", "give an amount"), ("1,500.00", "one decimal mark"), ("1.500,00", "one decimal mark"),
    ("1.2.3", "one decimal mark"), ("abc", "not an amount"), ("-1", "not an amount"),
    ("0.000000001", "8 decimal places"), ("inf", "not an amount")])
def test_what_is_not_an_amount_is_refused_never_misread(typed: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_coins(typed)


def form(**over: str) -> dict[str, str]:
    return {"title": "Oak spoon", "description": "", "amount": "1,5", "currency": "ltc",
            "quantity": "2", "tags": "wood, kitchen", **over}


def test_a_listing_form() -> None:
    assert parse_listing_form(form()) == {
        "title": "Oak spoon", "description": "", "quantity": 2, "tags": ["wood", "kitchen"],
        "price": {"amount": 150_000_000, "currency": "LTC"}}
    for over, said in (({"amount": "0"}, "more than 0"), ({"quantity": "0"}, "at least 1"),
                       ({"quantity": "two"}, "whole number"), ({"title": " "}, "title")):
        with pytest.raises(ValueError, match=said):
            parse_listing_form(form(**over))


BUYER_ADDR, VENDOR_ADDR, MOD_ADDR = "rltc1qbuyer", "rltc1qvendor", "rltc1qmod"


def order(role: str = "buyer") -> dict[str, Any]:
    def msg(kind: str, sender: str, **data: Any) -> dict[str, Any]:
        return {"kind": kind, "sender_role": sender, "time": 1_800_000_000, "data": data}

    return {
        "role": role, "title": "Oak stool", "quantity": 2, "currency": "LTC",
        "decision": {"buyer_bp": 5000, "note": "split", "network_fee": 4900,
                     "payout": [{"address": MOD_ADDR, "amount": 20_000},
                                {"address": BUYER_ADDR, "amount": 3_185_300},
                                {"address": VENDOR_ADDR, "amount": 3_185_300}]},
        "messages": [
            msg("ORDER", "buyer", quantity=2, refund_address=BUYER_ADDR),
            msg("ORDER_CONFIRMATION", "vendor", payout_address=VENDOR_ADDR, amount=6_450_000),
            msg("PAYMENT", "buyer", amount=6_450_000),
            msg("DISPUTE_OPEN", "buyer", reason="never arrived"),
            msg("DISPUTE_DECISION", "moderator", moderator_address=MOD_ADDR, buyer_bp=5000,
                note="split", network_fee=4900)]}


def test_a_history_reads_as_sentences_with_money_in_coins() -> None:
    lines = history(order())
    assert lines[0].endswith("You ordered 2 × Oak stool")
    assert lines[1].endswith("The vendor accepted the order: 0.0645 LTC to pay into escrow")
    assert lines[2].endswith("You paid 0.0645 LTC into escrow")
    assert lines[3].endswith("You opened a dispute: “never arrived”")
    assert "The moderator decided the dispute: the moderator 0.0002 LTC, you 0.031853 LTC, " \
           "the vendor 0.031853 LTC" in lines[4]
    assert not any("amount:" in line or "network_fee" in line for line in lines)  # no raw fields
    assert history(order("vendor"))[2].endswith("The buyer paid 0.0645 LTC into escrow")


def test_a_payout_is_told_by_who_gets_it() -> None:
    assert payout_by_role(order()) == {"moderator": 20_000, "buyer": 3_185_300,
                                       "vendor": 3_185_300}


def test_a_wallet_transaction_is_one_line_with_what_it_was() -> None:
    orders = [{"title": "Oak stool", "role": "buyer", "state": "RESOLVED",
               "funding_txid": "f" * 64, "release_txid": "r" * 64}]
    history = [{"txid": "r" * 64, "amount": 3_185_300, "fee": None, "confirmations": 1,
                "time": 300},
               {"txid": "f" * 64, "amount": -6_452_000, "fee": 2_000, "confirmations": 2,
                "time": 200},
               {"txid": "p" * 64, "amount": 10_000_000, "fee": None, "confirmations": 3,
                "time": 100},
               {"txid": "s" * 64, "amount": -1_002_000, "fee": 2_000, "confirmations": 3,
                "time": 50}]
    assert [(x["label"], x["amount"]) for x in transaction_lines(history, orders)] == [
        ("payout of the dispute from Oak stool", 3_185_300),
        ("escrow funding for Oak stool (fee 0.00002)", -6_452_000),
        ("received", 10_000_000), ("sent (fee 0.00002)", -1_002_000)]


@pytest.mark.parametrize(("status", "relays", "said"), [
    ("public", 0, "reachable"),
    ("private", 0, "not reachable (behind NAT: mail through peers)"),
    ("private", 2, "via relay"),
    ("unknown", 0, "reachability unknown"),
    ("something new", 0, "reachability unknown"),
])
def test_reachability_in_the_status_bar(status: str, relays: int, said: str) -> None:
    assert Text.from_markup(reach_text(status, relays)).plain == said


def full_order(goods: dict[str, Any] | None) -> dict[str, Any]:
    return {"title": "Turning guide", "quantity": 1, "state": "FULFILLED", "role": "buyer",
            "order_id": "ab" * 32, "vendor": "v", "buyer": "b", "moderator": "m",
            "amount_due": 1_000_000, "currency": "LTC", "shipping": {"price": 0, "region": ""},
            "moderator_terms": {"fee_if_disputed": 10_000}, "goods": goods,
            "delivery": {"pending": 0, "parties": {}}, "messages": []}


def test_delivered_goods_are_shown_to_the_buyer() -> None:
    from tui.format import describe_order

    text = describe_order(full_order({"kind": "text", "name": "", "size": 9,
                                      "sha256": "00", "text": "KEY-[b]1[/b]"}))
    assert "your goods" in text and "KEY-\\[b]1\\[/b]" in text  # markup from a peer escaped
    file = describe_order(full_order({"kind": "file", "name": "guide.txt", "size": 600,
                                      "sha256": "00", "data": "eA=="}))
    assert "the file guide.txt (600 bytes): press Save goods" in file
    broken = describe_order(full_order({"error": "the goods do not open with our key"}))
    assert "do not open" in broken
    assert "your goods" not in describe_order(full_order(None))


def test_saved_goods_never_overwrite_and_stay_in_the_folder(tmp_path: Any) -> None:
    from tui.order_screen import save_file

    first = save_file(tmp_path, "guide.txt", b"one")
    second = save_file(tmp_path, "guide.txt", b"two")
    assert first.name == "guide.txt" and second.name == "guide (2).txt"
    assert first.read_bytes() == b"one" and second.read_bytes() == b"two"
    sneaky = save_file(tmp_path, "../../etc/passwd", b"x")
    assert sneaky.parent == tmp_path and sneaky.name == "passwd"


def test_a_quote_with_a_coupon_shows_the_discount() -> None:
    from tui.format import describe_quote

    quote = {"currency": "LTC", "quantity": 2, "items": 1_900_000, "discount": 100_000,
             "shipping": 0, "amount_due": 1_900_000, "network_fee_estimate": 1000,
             "release_fee_estimate": 1000, "total_from_wallet": 1_901_000, "tradeable": True}
    text = describe_quote(quote)
    assert "items        0.02 LTC  (2 × 0.01 LTC)" in text
    assert "discount     −0.001 LTC (coupon)" in text
    assert "discount" not in describe_quote({**quote, "discount": 0, "items": 2_000_000})


def test_local_money_is_written_with_two_decimals_and_its_rate_shown() -> None:
    from tui.format import coins, describe_quote, parse_listing_form

    assert coins(1_250, "EUR") == "12.50 EUR" and coins(4_500_000, "LTC") == "0.045 LTC"
    form = parse_listing_form({"title": "Board", "description": "", "amount": "12,5",
                               "currency": "eur", "quantity": "1", "tags": ""})
    assert form["price"] == {"amount": 1_250, "currency": "EUR"}
    with pytest.raises(ValueError, match="more than 2 decimals"):
        parse_listing_form({"title": "Board", "description": "", "amount": "12.505",
                            "currency": "EUR", "quantity": "1", "tags": ""})
    quote = {"currency": "LTC", "quantity": 1, "items": 15_625_000, "discount": 0,
             "shipping": 0, "amount_due": 15_625_000, "network_fee_estimate": 1000,
             "release_fee_estimate": 1000, "total_from_wallet": 15_626_000, "tradeable": True,
             "rate": {"currency": "EUR", "coin": "LTC", "price": 8_000, "time": 1,
                      "source": "median of 2", "age": 42}}
    assert "priced in EUR: 1 LTC = 80.00 EUR (median of 2, 42 s old)" in describe_quote(quote)


EURO_BOARD = {"price": {"amount": 1_250, "currency": "EUR"}}
COIN_STOOL = {"price": {"amount": 3_000_000, "currency": "LTC"}}


@pytest.mark.parametrize(("hit", "shown"), [
    ({"listing": EURO_BOARD, "score": 0}, "12.50 EUR"),  # searched without price_in
    ({"listing": EURO_BOARD, "score": 0, "price_in": {"currency": "LTC", "amount": 15_625_000}},
     "12.50 EUR ≈ 0.15625 LTC"),
    ({"listing": EURO_BOARD, "score": 0, "price_in": {"currency": "LTC", "amount": None}},
     "12.50 EUR"),  # no rate for euros on this node
    ({"listing": COIN_STOOL, "score": 0, "price_in": {"currency": "LTC", "amount": 3_000_000}},
     "0.03 LTC"),
])
def test_a_result_in_other_money_shows_what_it_comes_to(hit: dict[str, Any],
                                                       shown: str) -> None:
    assert price_text(hit) == shown
