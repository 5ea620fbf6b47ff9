"""Options and variants of a listing (v2): options (size: S/M/L, wood: oak/birch) and SKUs,
each a combination of one value per option with its own surcharge, its own stock and an
optional code. An order names its SKU by those values; its price is the listing's price plus
the SKU's surcharge, and its quantity is bounded by the SKU's stock.

    options: [{name, values: [str]}]          1..5 options, 1..20 distinct values each
    skus: [{values: [str], surcharge, quantity, code?}]   1..200, one value per option, in
                                              order, each combination once
"""

from __future__ import annotations

from typing import Any

from . import fields as f

MAX_OPTIONS = 5
MAX_VALUES = 20
MAX_SKUS = 200
MAX_TEXT = 40


def validate(err: f.ErrorClass, body: dict[str, Any]) -> None:
    """``options`` and ``skus`` of a listing body: both or neither, consistent whole."""
    if ("options" in body) != ("skus" in body):
        f.fail(err, "skus", "options and skus come together")
    if "options" not in body:
        return
    options = body["options"]
    if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
        f.fail(err, "options", f"must be a list of 1..{MAX_OPTIONS} options")
    names: set[str] = set()
    for i, opt in enumerate(options):
        o = f.exact_keys(err, f"options[{i}]", opt, {"name", "values"})
        f.text(err, f"options[{i}].name", o["name"], MAX_TEXT, 1)
        if o["name"] in names:
            f.fail(err, "options", "names an option twice")
        names.add(o["name"])
        values = o["values"]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            f.fail(err, f"options[{i}].values", f"must be a list of 1..{MAX_VALUES} values")
        for j, v in enumerate(values):
            f.text(err, f"options[{i}].values[{j}]", v, MAX_TEXT, 1)
        if len(set(values)) != len(values):
            f.fail(err, f"options[{i}].values", "names a value twice")
    skus = body["skus"]
    if not isinstance(skus, list) or not 1 <= len(skus) <= MAX_SKUS:
        f.fail(err, "skus", f"must be a list of 1..{MAX_SKUS} SKUs")
    seen: set[tuple[str, ...]] = set()
    for i, sku in enumerate(skus):
        name = f"skus[{i}]"
        if not isinstance(sku, dict) or not {"values", "surcharge", "quantity"} <= set(sku) \
                or not set(sku) <= {"values", "surcharge", "quantity", "code"}:
            f.fail(err, name, "must be {values, surcharge, quantity, code?}")
        values = sku["values"]
        if not isinstance(values, list) or len(values) != len(options):
            f.fail(err, f"{name}.values", "must name one value per option, in order")
        for opt, v in zip(options, values, strict=True):
            if v not in opt["values"]:
                f.fail(err, f"{name}.values", f"{str(v)[:40]!r} is not a {opt['name']}")
        key = tuple(values)
        if key in seen:
            f.fail(err, "skus", "names a combination twice")
        seen.add(key)
        f.integer(err, f"{name}.surcharge", sku["surcharge"])
        f.integer(err, f"{name}.quantity", sku["quantity"], 0, 10**9)
        if "code" in sku:
            f.text(err, f"{name}.code", sku["code"], MAX_TEXT, 1)


def find(body: dict[str, Any], values: list[str] | None) -> dict[str, Any] | None:
    """The SKU of ``values`` in a listing body (None: no such combination)."""
    if values is None:
        return None
    for sku in body.get("skus", []):
        if sku["values"] == list(values):
            return dict(sku)
    return None


def validate_choice(err: f.ErrorClass, value: Any) -> list[str]:
    """An ORDER's ``sku``: the values of one combination (checked against the listing later)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_OPTIONS:
        f.fail(err, "sku", f"must be a list of 1..{MAX_OPTIONS} option values")
    for i, v in enumerate(value):
        f.text(err, f"sku[{i}]", v, MAX_TEXT, 1)
    return list(value)


def with_stock(body: dict[str, Any], values: list[str], quantity: int) -> dict[str, Any]:
    """The listing's fields after one SKU's stock became ``quantity``: its ``skus`` and its
    ``quantity`` (the sum over its SKUs)."""
    skus = [{**s, "quantity": quantity} if s["values"] == list(values) else dict(s)
            for s in body["skus"]]
    return {"skus": skus, "quantity": sum(int(s["quantity"]) for s in skus)}


def label(values: list[str] | tuple[str, ...]) -> str:
    return " / ".join(values)
