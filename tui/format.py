"""Pure helpers for showing listings, money and orders, and for reading forms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from .safe import block, plain

DECIMALS = 8  # satoshis, litoshis: every coin Torv trades has 8 decimal places
_ONE = Decimal(10) ** DECIMALS


# currencies of ISO 4217 a listing may be priced in (two decimals; as protocol/fiat.py)
FIAT = frozenset({"EUR", "USD", "DKK", "SEK", "NOK", "GBP", "CHF", "CAD", "AUD", "NZD", "PLN",
                  "CZK", "BRL", "MXN", "ZAR", "INR", "SGD", "HKD"})


def coins(amount: int | None, currency: str = "LTC") -> str:
    """Base units as coins: 4_500_000 litoshi -> "0.045 LTC"; minor units of local money as
    it is written: 1250 EUR cents -> "12.50 EUR"."""
    if amount is None:
        return "—"
    if currency in FIAT:
        return f"{Decimal(amount) / 100:.2f} {currency}"
    text = f"{Decimal(amount) / _ONE:.{DECIMALS}f}".rstrip("0").rstrip(".")
    return f"{text} {currency}"


def parse_coins(text: str) -> int:
    """"0.045" -> 4_500_000. The decimal mark may be a point or a comma ("1,5" and "1.5"
    are both one and a half; never fifteen); thousands separators are refused, as is anything
    else that is not an amount (ValueError with a readable message)."""
    raw = text.strip()
    if not raw:
        raise ValueError("give an amount, e.g. 0.045")
    if "," in raw and "." in raw or raw.count(",") + raw.count(".") > 1:
        raise ValueError(f"{raw!r}: use one decimal mark (1.5 or 1,5) and no thousands "
                         "separators")
    try:
        value = Decimal(raw.replace(",", "."))
    except ArithmeticError:
        raise ValueError(f"{raw!r} is not an amount") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not an amount")
    units = value * _ONE
    if units != units.to_integral_value():
        raise ValueError(f"at most {DECIMALS} decimal places")
    return int(units)


def money(price: dict[str, Any]) -> str:
    return coins(int(price["amount"]), str(price["currency"]))


def reach_text(status: str, relays: int = 0) -> str:
    """How reachable this node is, in the status bar's words (node.info.reachability)."""
    if status == "public":
        return "[green]reachable[/green]"
    if relays:
        return "via relay"
    if status == "private":
        return "[yellow]not reachable[/yellow] (behind NAT: mail through peers)"
    return "reachability unknown"


def short(peer_id: str) -> str:
    return f"…{peer_id[-8:]}" if peer_id else ""


def who(peer_id: str, names: dict[str, str]) -> str:
    """A peer by its profile name (peer text: made safe), with the end of its peer ID."""
    name = plain(names.get(peer_id, ""))
    return f"{name} ({short(peer_id)})" if name else short(peer_id)


def describe_listing(item: dict[str, Any], names: dict[str, str] | None = None) -> str:
    names = names or {}
    stock = "unlimited" if item.get("unlimited") else f"{item['quantity']} available"
    lines = [f"[b]{plain(item['title'])}[/b]  ·  {money(item['price'])}  ·  {stock}",
             f"vendor {who(item['vendor'], names)}  ·  {item['vendor']}  ·  version {item['seq']}"]
    kind = [k for k in (item.get("type"), item.get("condition")) if k]
    if kind or item.get("categories"):
        lines.append("  ·  ".join([*(plain(k) for k in kind),
                                   *(plain(c) for c in item.get("categories", []))]))
    if item.get("processing_days") is not None:
        lines.append(f"ships {item['processing_days']} day(s) after payment")
    if item.get("tags"):
        lines.append("tags: " + ", ".join(plain(t) for t in item["tags"]))
    for opt in item.get("shipping", []):
        lines.append(f"ships to {plain(opt['region'])} for {money(opt['price'])}")
    profile = item.get("shipping_profile")
    if profile:
        for region in profile["regions"]:
            where = ", ".join("anywhere" if c == "WORLDWIDE" else plain(c)
                              for c in region["countries"][:12])
            more = " …" if len(region["countries"]) > 12 else ""
            how = "; ".join(f"{plain(s['name'])} {money({**item['price'], 'amount': s['first']})}"
                            f" ({s['days']} d)" for s in region["services"])
            lines.append(f"ships to {where}{more}: {how}")
        extras = (["local pickup"] if profile.get("pickup") else []) + (
            [f"free above {money({**item['price'], 'amount': profile['free_above']})}"]
            if profile.get("free_above") else [])
        if extras:
            lines.append("  ·  ".join(extras))
    if item.get("description"):
        lines.append("")
        lines.append(block(item["description"], ""))
    if item.get("terms"):
        lines.append("")
        lines.append(block(f"terms: {item['terms']}", ""))
    return "\n".join(lines)


def describe_quote(q: dict[str, Any]) -> str:
    cur = q["currency"]
    if q.get("rate"):
        rate = q["rate"]
        lines_rate = [f"priced in {rate['currency']}: 1 {rate['coin']} = "
                      f"{coins(rate['price'], rate['currency'])} ({plain(rate['source'])}, "
                      f"{rate['age']} s old)"]
    else:
        lines_rate = []
    off = int(q.get("discount") or 0)
    lines = [f"items        {coins(q['items'] + off, cur)}  ({q['quantity']} × "
             f"{coins((q['items'] + off) // max(q['quantity'], 1), cur)})"]
    if off:
        lines.append(f"discount     −{coins(off, cur)} (coupon)")
    lines += [
             f"shipping     {coins(q['shipping'], cur)}",
             f"[b]into escrow  {coins(q['amount_due'], cur)}[/b]",
             f"network fee  ~{coins(q['network_fee_estimate'], cur)} (paid by you to fund the "
             "escrow)",
             f"release fee  ~{coins(q['release_fee_estimate'], cur)} (taken from the escrow "
             "when it is released)"]
    lines = lines_rate + lines
    if "moderator_fee_if_disputed" in q:
        lines.append(f"moderator    {coins(q['moderator_fee_if_disputed'], cur)} only if a "
                     "dispute is decided")
    lines.append(f"[b]from your wallet ~{coins(q['total_from_wallet'], cur)}[/b]")
    if not q["tradeable"]:
        lines.append(f"[red]this node's chain does not trade {cur}[/red]")
    return "\n".join(lines)


def describe_order(o: dict[str, Any], names: dict[str, str] | None = None) -> str:
    names = names or {}
    cur = o["currency"]
    lines = [f"[b]{plain(o['title'])}[/b] × {o['quantity']}  ·  [b]{o['state']}[/b]  ·  "
             f"you are the {o['role']}",
             f"order {o['order_id']}",
             f"vendor {who(o['vendor'], names)}  ·  buyer {who(o['buyer'], names)}  ·  "
             f"moderator {who(o['moderator'], names)}",
             f"amount {coins(o['amount_due'], cur)} (shipping {coins(o['shipping']['price'], cur)}"
             f"{' to ' + plain(o['shipping']['region']) if o['shipping']['region'] else ''})"]
    if o.get("shipping_address"):
        lines.append(f"ship to: {block(o['shipping_address'], '         ')}")
    if o.get("escrow_address"):
        lines.append(f"escrow {o['escrow_address']}  ·  timeout {o['timeout_blocks']} blocks")
    if o.get("funding"):
        f = o["funding"]
        lines.append(f"paid {coins(f['amount'], cur)} in {f['txid'][:16]}… "
                     f"({f['confirmations']} confirmations)")
    if o.get("release"):
        lines.append(f"released in {o['release']['txid'][:16]}… "
                     f"({o['release']['confirmations']} confirmations)")
    mt = o["moderator_terms"]
    lines.append(f"moderator fee if disputed: {coins(mt['fee_if_disputed'], cur)}")
    if o.get("decision"):
        d = o["decision"]
        lines.append(f"[b]the moderator's decision[/b]: {plain(d['note']) or '(no note)'}")
        for role, amount in payout_by_role(o).items():
            mine = "you" if role == o["role"] else f"the {role}"
            lines.append(f"  {mine} get{'s' if mine != 'you' else ''} {coins(amount, cur)}")
        lines.append(f"  network fee {coins(d['network_fee'], cur)}")
    goods = o.get("goods")
    if goods:
        if "error" in goods:
            lines.append(f"[red]the delivered goods: {plain(goods['error'])}[/red]")
        elif goods["kind"] == "text":
            lines.append(f"[b]your goods[/b]: {block(goods['text'], '             ')}")
        else:
            lines.append(f"[b]your goods[/b]: the file {plain(goods['name'])} "
                         f"({goods['size']} bytes): press Save goods")
    delivery = o["delivery"]
    if delivery["pending"]:
        held = f", held by {delivery['held_by']} peer(s)" if delivery.get("held_by") else ""
        lines.append(f"[yellow]{delivery['pending']} message(s) waiting for delivery{held}"
                     "[/yellow]")
    parties = delivery.get("parties") or {}
    if parties:
        marks = {"pending": "… pending", "delivered": "✓ delivered", "read": "✓✓ read"}
        lines.append("our last message: " + "  ·  ".join(
            f"{who(p, names)} {marks.get(v['status'], v['status'])}"
            for p, v in parties.items()))
    lines.append("")
    lines.append("history:")
    lines.extend("  " + sentence for sentence in history(o))
    return "\n".join(lines)


def payout_by_role(o: dict[str, Any]) -> dict[str, int]:
    """A decided dispute's payout, by who gets it (matched by the parties' addresses)."""
    addresses: dict[str, str] = {}
    for m in o["messages"]:
        data = m["data"]
        if "refund_address" in data:
            addresses[data["refund_address"]] = "buyer"
        if "payout_address" in data:
            addresses[data["payout_address"]] = "vendor"
        if "moderator_address" in data:
            addresses[data["moderator_address"]] = "moderator"
    out: dict[str, int] = {}
    for p in (o.get("decision") or {}).get("payout", []):
        role = addresses.get(p["address"], "someone else")
        out[role] = out.get(role, 0) + int(p["amount"])
    return out


def history(o: dict[str, Any]) -> list[str]:
    """An order's messages as sentences: "You paid 0.0645 LTC into escrow"."""
    cur = o["currency"]
    out = []
    for m in o["messages"]:
        d = m["data"]
        actor = "You" if m["sender_role"] == o["role"] else f"The {m['sender_role']}"
        kind = m["kind"]
        if kind == "ORDER":
            text = f"{actor} ordered {d.get('quantity', o['quantity'])} × {plain(o['title'])}"
        elif kind == "ORDER_CONFIRMATION":
            text = f"{actor} accepted the order: {coins(d['amount'], cur)} to pay into escrow"
        elif kind == "ORDER_DECLINE":
            text = f"{actor} declined the order" + _said(d.get("reason"))
        elif kind == "ORDER_CANCEL":
            text = f"{actor} canceled the order" + _said(d.get("reason"))
        elif kind == "PAYMENT":
            text = f"{actor} paid {coins(d['amount'], cur)} into escrow"
        elif kind == "FULFILLMENT":
            text = f"{actor} marked it fulfilled" + _said(d.get("note"))
        elif kind == "COMPLETION":
            text = (f"{actor} completed it and released the escrow; rated it {d['rating']}/5"
                    + _said(d.get("review")))
        elif kind == "REFUND":
            text = f"{actor} refunded the escrow to the buyer"
        elif kind == "DISPUTE_OPEN":
            text = f"{actor} opened a dispute" + _said(d.get("reason"))
        elif kind == "DISPUTE_DECISION":
            shares = payout_by_role(o)
            told = ", ".join(f"{'you' if r == o['role'] else 'the ' + r} "
                             f"{coins(v, cur)}" for r, v in shares.items())
            text = f"{actor} decided the dispute: {told}" + _said(d.get("note"))
        elif kind == "DISPUTE_ACCEPT":
            text = f"{actor} accepted the decision; the payout was sent"
        elif kind == "TIMEOUT_CLAIM":
            text = f"{actor} claimed the escrow after the timeout"
        else:
            text = f"{actor}: {kind}"
        when = datetime.fromtimestamp(m["time"]).strftime("%d %b %H:%M")
        out.append(f"{when}  {text}")
    return out


def _said(text: Any) -> str:
    return f": “{plain(str(text))}”" if text else ""


def amount_in(text: str, currency: str) -> int:
    """Money typed in whole units to the base units of ``currency``: coins with up to 8
    decimals, local money with 2 (12.50 EUR); ValueError says why not."""
    amount = parse_coins(text)
    if currency in FIAT:
        if amount % 1_000_000:
            raise ValueError(f"{text.strip()!r} has more than 2 decimals")
        amount //= 1_000_000
    return amount


def parse_listing_form(values: dict[str, str]) -> dict[str, Any]:
    """Form strings to listing.create params; ValueError with a readable message if bad.

    The price is typed in coins (e.g. 0.045) and sent in base units."""
    title = values["title"].strip()
    if not title:
        raise ValueError("a title is required")
    currency = values["currency"].strip().upper()
    try:
        amount = amount_in(values["amount"], currency)
    except ValueError as exc:
        raise ValueError(f"price: {exc}") from None
    if amount <= 0:
        raise ValueError("price: must be more than 0")
    text = values["quantity"].strip()
    if not text.isdigit():
        raise ValueError("quantity: a whole number, e.g. 1")
    quantity = int(text)
    if quantity < 1:
        raise ValueError("quantity: at least 1 (delete a listing you no longer sell)")
    tags = [t.strip() for t in values["tags"].split(",") if t.strip()]
    form: dict[str, Any] = {"title": title, "description": values["description"].strip(),
                            "price": {"amount": amount, "currency": currency},
                            "quantity": quantity, "tags": tags}
    # listing v2 fields: only those given (a listing without them stays v1)
    kind, condition = values.get("type", ""), values.get("condition", "")
    if kind:
        form["type"] = kind
    if condition:
        if kind not in ("", "physical"):
            raise ValueError("condition: only a physical item has one")
        form["condition"] = condition
    categories = [c.strip() for c in values.get("categories", "").split(",") if c.strip()]
    if categories:
        if len(categories) > 5:
            raise ValueError("categories: at most 5")
        form["categories"] = categories
    days = values.get("days", "").strip()
    if days:
        if not days.isdigit() or int(days) > 365:
            raise ValueError("ships in days: a whole number from 0 to 365")
        form["processing_days"] = int(days)
    return form
