"""A store as a spreadsheet (node/market/listing_csv.py, listing.export / listing.import,
torv listings export|import): rows checked as tables, and real nodes: export from one node,
import into another gives the same store; a bad row is refused with its line number and
nothing is imported; a dry run changes nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node.market.listing_csv import COLUMNS, amount_of, coins, parse, parse_stock
from protocol.identity import Identity

from .cluster import NodeProc, sample_listing

ME = Identity(bytes([5]) * 32)
NOW = 1_800_000_000
HEADER = ",".join(COLUMNS)
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("text", "base"), [
    ("0.045", 4_500_000), ("1", 100_000_000), ("1.5", 150_000_000), ("0.00000001", 1),
    (" 2.50 ", 250_000_000)])
def test_amounts_in_whole_units(text: str, base: int) -> None:
    assert amount_of(text) == base
    assert amount_of(coins(base)) == base


@pytest.mark.parametrize(("text", "why"), [
    ("1,5", "use a point"), ("1,500.00", "use a point"), ("0.000000001", "8 decimals"),
    ("-1", "not an amount"), ("abc", "not an amount"), ("NaN", "not an amount"),
    ("inf", "not an amount")])
def test_amounts_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        amount_of(text)


def rows(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def test_every_bad_row_is_named_by_its_line() -> None:
    text = rows(
        ",Oak stool,nice,0.045,LTC,2,oak; stool,EU=0.0005,,,",  # line 2: good
        ",,no title,0.045,LTC,2,,,,,",  # line 3
        ",Lamp,,1;5,LTC,1,,,,,",  # line 4
        ",Rug,,1,LTC,many,,,,,",  # line 5
        ",Mug,,1,LTC,1,,EU:5,,,",  # line 6
        ",Bowl,,1,LTC,1,,,next year,,",  # line 7
        "zz,Box,,1,LTC,1,,,,,",  # line 8
        ",Tray,,1,ltc,1,,,,,",  # line 9: the listing rules speak (currency)
    )
    parsed = parse(text, {}, NOW, ME)
    got = [(e.line, e.field) for e in parsed.errors]
    assert got == [(3, "title"), (4, "price"), (5, "quantity"), (6, "shipping"),
                   (7, "expires"), (8, "id"), (9, "price.currency")], got
    assert len(parsed.created) == 1 and parsed.created[0].body["shipping"] == [
        {"region": "EU", "price": {"amount": 50_000, "currency": "LTC"}}]


def test_a_bad_header_is_refused() -> None:
    assert parse("title,price\nA,1\n", {}, NOW, ME).errors[0].field == "header"
    assert "unknown column 'colour'" in parse(
        HEADER + ",colour\n", {}, NOW, ME).errors[0].message


async def _node_listings(node: NodeProc) -> list[dict[str, Any]]:
    out = await node.call("listing.list")
    keep = ("id", "title", "description", "price", "quantity", "tags", "shipping", "expires",
            "escrow_timeout_hours")
    return sorted(({k: x.get(k) for k in keep} for x in out), key=lambda x: x["id"])


@pytest.mark.asyncio
async def test_export_then_import_elsewhere_gives_the_same_store(tmp_path: Path) -> None:
    one = await NodeProc(tmp_path / "one").start()
    two = await NodeProc(tmp_path / "two").start()
    try:
        await one.call("listing.create", **sample_listing("Oak stool, with a \"woven\" seat",
                                                        tags=["oak", "stool"]))
        await one.call("listing.create", **sample_listing(
            "Linen apron", amount=4_500_000, shipping=[
                {"region": "EU", "price": {"amount": 50_000, "currency": "LTC"}}]))
        text = (await one.call("listing.export"))["csv"]
        assert text.splitlines()[0] == HEADER
        report = await two.call("listing.import", csv=text)
        assert report == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0,
                          "errors": [], "imported": True, "dry_run": False}
        assert await _node_listings(two) == await _node_listings(one)
        again = await two.call("listing.import", csv=text)  # nothing changed: nothing signed
        assert (again["unchanged"], again["created"], again["imported"]) == (2, 0, False)

        # one bad row among good ones: refused with its line, nothing imported
        lines = (await two.call("listing.export"))["csv"].splitlines()
        changed = lines[1].replace(",1,", ",7,", 1)  # a new quantity for the first listing
        bad = "\n".join([lines[0], changed, ",Broken row,,\"1,5\",LTC,1,,,,,", lines[2]]) + "\n"
        before = await _node_listings(two)
        report = await two.call("listing.import", csv=bad)
        assert report["imported"] is False and report["errors"][0]["line"] == 3
        assert await _node_listings(two) == before
        # the dry run of the fixed file reports the change and changes nothing
        good = "\n".join([lines[0], changed, lines[2]]) + "\n"
        dry = await two.call("listing.import", csv=good, dry_run=True)
        assert (dry["updated"], dry["unchanged"], dry["imported"]) == (1, 1, False)
        assert await _node_listings(two) == before
        # the command line: export to a file, import a file (exit 1 and the line on error)
        torv = [sys.executable, "-m", "node.app.cli", "listings"]
        out = tmp_path / "store.csv"
        done = await asyncio.to_thread(subprocess.run, [
            *torv, "export", "--data-dir", str(two.data_dir), str(out)],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0 and out.read_text() == \
            (await two.call("listing.export"))["csv"]
        out.write_text(bad)
        done = await asyncio.to_thread(subprocess.run, [
            *torv, "import", "--data-dir", str(two.data_dir), str(out)],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 1 and f"{out}:3: price" in done.stderr
        out.write_text(good)
        done = await asyncio.to_thread(subprocess.run, [
            *torv, "import", "--data-dir", str(two.data_dir), str(out)],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0 and "changed 1" in done.stdout
    finally:
        await one.stop()
        await two.stop()


def test_a_row_with_more_cells_than_columns_is_named() -> None:
    cells = ["", "Lamp", "", "1", "5", "LTC", "1"] + [""] * (len(COLUMNS) - 6)
    parsed = parse(rows(",".join(cells)), {}, NOW, ME)  # "1,5" unquoted: one cell too many
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "row")]
    assert not parsed.created


def test_stock_rows_are_checked_by_line() -> None:
    own = {x.id: x for x in parse(rows(
        f"{'a' * 32},Lamp,,1,LTC,3,,,,,", f"{'b' * 32},Rug,,1,LTC,2,,,,,"), {}, NOW, ME).created}
    text = "id,quantity\n" + "\n".join([f"{'a' * 32},5", f"{'c' * 32},1", f"{'a' * 32},6",
                                        f"{'b' * 32},-1"]) + "\n"
    changed, unchanged, errors = parse_stock(text, own, ME)
    assert [x.body["quantity"] for x in changed] == [5] and unchanged == 0
    assert [(e.line, e.field) for e in errors] == [(3, "id"), (4, "id"), (5, "quantity")]
    assert parse_stock(f"id,quantity\n{'b' * 32},2\n", own, ME)[:2] == ([], 1)
    assert parse_stock("id,qty\n", own, ME)[2][0].field == "header"


@pytest.mark.asyncio
async def test_stock_bulk_on_a_node(tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "shop").start()
    try:
        a = await node.call("listing.create", **sample_listing("Lamp"))
        b = await node.call("listing.create", **sample_listing("Rug"))
        got = await node.call("listing.stock_bulk",
                              csv=f"id,quantity\n{a['id']},9\n{b['id']},{b['quantity']}\n")
        assert got == {"updated": 1, "unchanged": 1, "errors": [], "imported": True}
        listed = {x["id"]: x for x in await node.call("listing.list")}
        assert listed[a["id"]]["quantity"] == 9 and listed[a["id"]]["seq"] == a["seq"] + 1
        assert listed[b["id"]]["seq"] == b["seq"]  # untouched
        bad = await node.call("listing.stock_bulk",
                              csv=f"id,quantity\n{a['id']},1\n{b['id']},lots\n")
        assert bad["imported"] is False and bad["errors"][0]["line"] == 3
        assert {x["id"]: x["quantity"] for x in await node.call("listing.list")}[a["id"]] == 9
    finally:
        await node.stop()


def test_listing_v2_columns_round_trip_and_are_checked() -> None:
    from node.market.listing_csv import to_csv
    from protocol.listing import LISTING_V2, Listing

    made = Listing.create(ME, {
        "id": "cd" * 16, "seq": 1, "title": "Repair class", "price": {"amount": 5,
        "currency": "LTC"}, "quantity": 3, "created": NOW, "expires": NOW + 86400,
        "type": "service", "categories": ["classes", "repair"], "processing_days": 2,
        "terms": "Cancel a day ahead.", "unlimited": True})
    text = to_csv([made])
    other = Identity(bytes([6]) * 32)
    moved = parse(text, {}, NOW, other)
    assert not moved.errors and len(moved.created) == 1
    got = moved.created[0]
    assert got.signed.version == LISTING_V2
    for key in ("type", "categories", "processing_days", "terms", "unlimited"):
        assert got.body[key] == made.body[key]
    assert "condition" not in got.body
    again = parse(text, {made.id: made}, NOW, ME)
    assert again.unchanged == 1 and not again.updated
    bad = text.replace(",2,Cancel", ",soon,Cancel").replace("service,", "plane,")
    errors = {(e.line, e.field) for e in parse(bad, {}, NOW, ME).errors}
    assert errors == {(2, "processing_days")}
    bad_type = text.replace("service,", "plane,")
    assert [e.field for e in parse(bad_type, {}, NOW, ME).errors] == ["type"]
    maybe = text.replace(",true,", ",maybe,")
    assert [e.field for e in parse(maybe, {}, NOW, ME).errors] == ["unlimited"]


SHOP = {
    "options": [{"name": "size", "values": ["S", "L"]}],
    "skus": [{"values": ["S"], "surcharge": 0, "quantity": 2, "code": "ST-S"},
             {"values": ["L"], "surcharge": 500_000, "quantity": 1}],
    "shipping_profile": {"regions": [{"countries": ["DK", "SE"], "services": [
        {"name": "PostNord, \"parcel\"; tracked", "days": 3, "first": 40_000,
         "additional": 10_000}]}], "pickup": True, "free_above": 9_000_000},
}


def test_variants_shipping_profiles_and_coupons_as_json_columns() -> None:
    from node.market.listing_csv import to_csv
    from protocol.coupons import coupon_hash
    from protocol.listing import Listing

    lid = "ab" * 16
    made = Listing.create(ME, {
        "id": lid, "seq": 1, "title": "Stool", "price": {"amount": 5_000_000,
        "currency": "LTC"}, "quantity": 3, "created": NOW, "expires": NOW + 86400, **SHOP,
        "coupons": [{"hash": coupon_hash(lid, "SPRING"), "percent": 10}]})
    text = to_csv([made])
    moved = parse(text, {}, NOW, Identity(bytes([6]) * 32))
    assert not moved.errors and len(moved.created) == 1
    for key in (*SHOP, "coupons", "quantity"):
        assert moved.created[0].body[key] == made.body[key], key
    assert parse(text, {lid: made}, NOW, ME).unchanged == 1

    def with_coupons(*cells: str, new: bool = False) -> str:  # the row, once per cell
        rows = list(csv.DictReader(io.StringIO(text)))
        if new:
            rows[0]["id"] = ""
        out = io.StringIO()
        w = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows({**rows[0], "coupons": c} for c in cells)
        return out.getvalue()

    # a coupon given by its code is hashed with the listing's id: the code never is signed
    got = parse(with_coupons('[{"code":"summer-5","amount":1000}]'), {lid: made}, NOW, ME)
    assert not got.errors and len(got.updated) == 1
    assert got.updated[0].body["coupons"] == [{"hash": coupon_hash(lid, "SUMMER-5"),
                                               "amount": 1000}]
    assert "summer" not in got.updated[0].to_wire().decode("utf-8", "replace").lower()

    # a file without the new columns leaves those fields of a listing it changes alone
    cols = ("id", "title", "price", "currency", "quantity")
    old = ",".join(cols) + f"\n{lid},Stool,0.05,LTC,4\n"
    kept = parse(old, {lid: made}, NOW, ME)
    assert not kept.errors and kept.updated[0].body["quantity"] == 4
    assert kept.updated[0].body["skus"] == made.body["skus"]
    assert kept.updated[0].body["coupons"] == made.body["coupons"]
    # an empty cell removes the field
    cleared = "id,title,price,currency,quantity,coupons\n" + f"{lid},Stool,0.05,LTC,3,\n"
    assert "coupons" not in parse(cleared, {lid: made}, NOW, ME).updated[0].body

    # broken cells are named by line and field; the listing rules apply to what they hold
    bad = with_coupons(
        '[{"code":"x"}',  # not JSON
        '{"code":"x"}',  # not a list
        '["SPRING"]',  # not a coupon
        '[{"code":"two words","percent":5}]',  # not a code
        '[{"code":"OK","percent":500}]', new=True)  # not a percentage
    assert [(e.line, e.field) for e in parse(bad, {}, NOW, ME).errors] == [
        (2, "coupons"), (3, "coupons"), (4, "coupons"), (5, "coupon"), (6, "coupons[0].percent")]
    skus = text.replace('""quantity"":1,', '""quantity"":-1,')
    assert skus != text
    assert [e.field for e in parse(skus, {}, NOW, ME).errors] == ["skus[1].quantity"]


@pytest.mark.asyncio
async def test_a_shop_with_variants_and_coupons_moves_to_another_node(tmp_path: Path) -> None:
    """Export from one node, import into another: options, SKUs, the shipping profile and
    the coupons come along (a coupon under the same id: its code still works there)."""
    one = await NodeProc(tmp_path / "one").start()
    two = await NodeProc(tmp_path / "two").start()
    try:
        made = await one.call("listing.create", **sample_listing(
            "Stool in sizes", **SHOP, coupons=[{"code": "spring", "percent": 10}]))
        assert made["coupons"][0]["hash"] != "spring"
        text = (await one.call("listing.export"))["csv"]
        report = await two.call("listing.import", csv=text)
        assert (report["created"], report["errors"]) == (1, [])
        got = (await two.call("listing.list"))[0]
        assert got["vendor"] == two.peer_id and got["id"] == made["id"]
        for key in ("options", "skus", "shipping_profile", "coupons", "quantity", "price"):
            assert got[key] == made[key], key
        assert (await two.call("listing.import", csv=text))["unchanged"] == 1
    finally:
        await one.stop()
        await two.stop()


def test_stock_rows_name_the_variant_of_a_listing_with_variants() -> None:
    from protocol.listing import Listing

    stool = Listing.create(ME, {
        "id": "ef" * 16, "seq": 1, "title": "Stool", "price": {"amount": 5, "currency": "LTC"},
        "quantity": 3, "created": NOW, "expires": NOW + 86400,
        "options": [{"name": "size", "values": ["S", "L"]},
                    {"name": "wood", "values": ["oak", "ash"]}],
        "skus": [{"values": ["S", "oak"], "surcharge": 0, "quantity": 1},
                 {"values": ["L", "ash"], "surcharge": 9, "quantity": 2}]})
    own = {stool.id: stool}
    text = "id,sku,quantity\n" + "\n".join([
        f"{stool.id},S / oak,4", f"{stool.id},L/ash,2", f"{stool.id},,7",
        f"{stool.id},M / oak,1", f"{stool.id},S / oak,5"]) + "\n"
    changed, unchanged, errors = parse_stock(text, own, ME)
    assert unchanged == 1  # L / ash already at 2
    assert [(e.line, e.field) for e in errors] == [(4, "sku"), (5, "sku"), (6, "id")]
    assert len(changed) == 1  # one listing, signed once
    skus = {tuple(s["values"]): s["quantity"] for s in changed[0].body["skus"]}
    assert skus == {("S", "oak"): 4, ("L", "ash"): 2} and changed[0].body["quantity"] == 6


async def test_photos_travel_with_the_csv_to_another_node(tmp_path: Path) -> None:
    import io

    from PIL import Image

    one = await NodeProc(tmp_path / "one").start()
    two = await NodeProc(tmp_path / "two").start()
    try:
        picture = tmp_path / "bowl.png"
        out = io.BytesIO()
        Image.new("RGB", (300, 200), (140, 90, 40)).save(out, "PNG")
        picture.write_bytes(out.getvalue())
        added = await one.call("listing.photo_add", path=str(picture))
        made = await one.call("listing.create", **sample_listing("Turned bowl"),
                              photos=[added["hash"]])
        exported = (await one.call("listing.export"))["csv"]
        assert added["hash"] in exported  # the API names a photo by its hash
        torv = [sys.executable, "-m", "node.app.cli", "listings"]
        sheet = tmp_path / "shop" / "store.csv"
        sheet.parent.mkdir()
        done = await asyncio.to_thread(subprocess.run, [
            *torv, "export", "--data-dir", str(one.data_dir), str(sheet)],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0 and "1 photo(s) beside it" in done.stdout, done.stderr
        photo_file = sheet.parent / "store_photos" / f"{added['hash']}.jpg"
        assert photo_file.exists() and "store_photos/" in sheet.read_text()
        done = await asyncio.to_thread(subprocess.run, [
            *torv, "import", "--data-dir", str(two.data_dir), str(sheet)],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0, done.stderr
        moved = (await two.call("listing.get", id=made["id"]))
        assert len(moved["photos"]) == 1
        shown = await two.call("listing.photo", vendor=moved["vendor"], id=made["id"], index=0)
        assert shown["source"] == "here" and shown["size"] > 0
        # a row naming a file that is not there: refused by its line, nothing imported
        bad = sheet.read_text().replace("store_photos/", "nowhere/")
        report = await two.call("listing.import", csv=bad.replace(
            "nowhere/", str(tmp_path / "nowhere") + "/"))
        assert report["imported"] is False
        assert [(e["line"], e["field"]) for e in report["errors"]] == [(2, "photos")]
    finally:
        await one.stop()
        await two.stop()
