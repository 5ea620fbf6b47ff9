"""Pure helpers for showing listings and reading the listing form."""

from __future__ import annotations

from typing import Any


def money(price: dict[str, Any]) -> str:
    return f"{price['amount']:,} {price['currency']}"


def describe_listing(item: dict[str, Any]) -> str:
    lines = [f"[b]{item['title']}[/b]  ·  {money(item['price'])}  ·  {item['quantity']} available",
             f"vendor {item['vendor']}  ·  version {item['seq']}"]
    if item.get("tags"):
        lines.append("tags: " + ", ".join(item["tags"]))
    for opt in item.get("shipping", []):
        lines.append(f"ships to {opt['region']} for {money(opt['price'])}")
    if item.get("description"):
        lines.append("")
        lines.append(item["description"])
    return "\n".join(lines)


def parse_listing_form(values: dict[str, str]) -> dict[str, Any]:
    """Form strings to listing.create params; ValueError with a readable message if bad."""
    title = values["title"].strip()
    if not title:
        raise ValueError("a title is required")
    try:
        amount = int(values["amount"].replace(",", "").replace("_", "").strip())
        quantity = int(values["quantity"].strip())
    except ValueError:
        raise ValueError("price and quantity must be whole numbers") from None
    tags = [t.strip() for t in values["tags"].split(",") if t.strip()]
    return {"title": title, "description": values["description"].strip(),
            "price": {"amount": amount, "currency": values["currency"].strip().upper()},
            "quantity": quantity, "tags": tags}
