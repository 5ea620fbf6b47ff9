"""Listing photos (issue 18, section 4): every image re-encoded with its metadata stripped
(EXIF GPS would give away a home address), listing v2 naming photos by hash, the catalog's
``photo`` op, and real nodes: a buyer gets a vendor's photo checked against its hash, and a
real process serving wrong bytes is refused and counted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from node.app.launcher import NodeProc
from node.market.photo_process import MAX_SIDE, THUMB_SIDE, has_metadata, process
from protocol.catalog import make_request, parse_photo, parse_request
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity
from protocol.listing import LISTING_V2, LISTING_VERSION, Listing
from protocol.photos import MAX_PHOTO_BYTES, photo_hash

from .cluster import sample_listing, start_linked_pair, wait_for

ROOT = Path(__file__).resolve().parent.parent
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(width: int = 400, height: int = 200, orientation: int = 1) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    for x in range(width // 2):  # the left half blue: to see the rotation
        for y in range(0, height, 4):
            image.putpixel((x, y), (20, 20, 220))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # camera make
    exif[0xA431] = "SERIAL-123456"  # body serial number
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (55.0, 40.0, 30.0)
    gps[3] = "E"
    gps[4] = (12.0, 34.0, 56.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"at home")
    return out.getvalue()


def encoded(kind: str, size: tuple[int, int] = (300, 300), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 120, 10, 128) if mode == "RGBA" else (10, 120, 10)).save(out, kind)
    return out.getvalue()


def test_gps_camera_and_comment_are_gone_and_the_photo_stays_upright() -> None:
    original = jpeg_with_gps(orientation=6)  # "rotate 90° clockwise to view"
    assert has_metadata(original)
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get_ifd(GPS_IFD)
    done = process(original)
    assert not has_metadata(done.photo) and not has_metadata(done.thumb)
    assert b"SERIAL-123456" not in done.photo and b"PhoneMaker" not in done.photo
    assert b"at home" not in done.photo
    with Image.open(io.BytesIO(done.photo)) as after:
        assert after.format == "JPEG"
        assert after.size == (200, 400)  # the recorded orientation applied to the pixels
    assert done.hash == hashlib.sha256(done.photo).hexdigest()


@pytest.mark.parametrize(("data", "why"), [
    (b"", "empty"),
    (b"GIF89a" + b"\x00" * 100, "not a readable image|not taken"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "not a readable image"),
    (b"just some text, not an image", "not a readable image"),
])
def test_what_is_not_a_jpeg_png_or_webp_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(LocalProtocolError, match=why):
        process(data)


def test_a_gif_is_refused_by_name() -> None:
    with pytest.raises(LocalProtocolError, match="GIF images are not taken"):
        process(encoded("GIF"))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [9_000, 100_000])
def test_a_decompression_bomb_is_refused_before_it_is_decoded(side: int) -> None:
    with pytest.raises(LocalProtocolError, match="pixels"):
        process(png_claiming(side, side))


@pytest.mark.parametrize("kind", ["PNG", "WEBP", "JPEG"])
def test_png_webp_and_jpeg_come_out_as_small_jpegs(kind: str) -> None:
    mode = "RGBA" if kind in ("PNG", "WEBP") else "RGB"
    done = process(encoded(kind, (3000, 2000), mode))
    assert max(done.width, done.height) == MAX_SIDE
    with Image.open(io.BytesIO(done.thumb)) as thumb:
        assert max(thumb.size) == THUMB_SIDE and thumb.format == "JPEG"


def test_a_noisy_photo_is_squeezed_under_the_size_limit() -> None:
    noise = Image.frombytes("RGB", (2400, 2400), bytes(hashlib.sha256(bytes([i % 256])).digest()[
        i % 32] for i in range(2400 * 2400 * 3)))
    out = io.BytesIO()
    noise.save(out, "PNG")
    done = process(out.getvalue())
    assert len(done.photo) <= MAX_PHOTO_BYTES


# ---------------------------------------------------------------------- listing v2, the op
def v2_body(**extra: Any) -> dict[str, Any]:
    return {"id": "ab" * 16, "seq": 1, "title": "Oak bowl", "price": {"amount": 5,
            "currency": "LTC"}, "quantity": 1, "created": 1, "expires": 2, **extra}


def test_a_listing_without_v2_fields_stays_v1_and_one_with_them_is_v2() -> None:
    me = Identity(bytes(32))
    assert Listing.create(me, v2_body()).signed.version == LISTING_VERSION
    photo = {"hash": "a" * 64, "thumb": "b" * 64}
    v2 = Listing.create(me, v2_body(type="physical", condition="used", photos=[photo],
                                    categories=["kitchen"], processing_days=3, terms="none"))
    assert v2.signed.version == LISTING_V2
    back = Listing.from_wire(v2.to_wire())
    assert back.photos == [photo] and back.kind == "physical"


@pytest.mark.parametrize(("extra", "why"), [
    ({"type": "car"}, "type"),
    ({"type": "digital", "condition": "new"}, "only a physical item"),
    ({"condition": "mint"}, "condition"),
    ({"categories": ["a", "a"]}, "twice"),
    ({"categories": ["x"] * 6}, "at most 5"),
    ({"processing_days": 400}, "processing_days"),
    ({"photos": [{"hash": "A" * 64, "thumb": "b" * 64}]}, "hex"),
    ({"photos": [{"hash": "a" * 64, "thumb": "b" * 64}] * 2}, "twice"),
    ({"photos": [{"hash": f"{i:064x}", "thumb": "b" * 64} for i in range(9)]}, "at most 8"),
    ({"photos": [{"hash": "a" * 64}]}, "missing"),
])
def test_v2_fields_are_checked(extra: dict[str, Any], why: str) -> None:
    with pytest.raises(LocalProtocolError, match=why):
        Listing.create(Identity(bytes(32)), v2_body(**extra))


def test_a_v1_listing_carrying_a_v2_field_is_refused() -> None:
    from protocol.signed import SignedObject

    me = Identity(bytes(32))
    forged = SignedObject.create(me, "listing", 1, {
        **v2_body(type="digital"), "vendor": me.peer_id, "tags": [], "shipping": [],
        "description": "", "escrow_timeout_hours": 1080})
    with pytest.raises(RemoteProtocolError, match="unknown fields"):
        Listing.from_wire(forged.to_wire())


def test_the_photo_op_and_its_answer_are_checked() -> None:
    assert parse_request(make_request("photo", hash="c" * 64))["hash"] == "c" * 64
    for bad in ({"op": "photo"}, {"op": "photo", "hash": "C" * 64},
                {"op": "photo", "hash": "c" * 63}, {"op": "photo", "hash": "c" * 64, "x": 1}):
        with pytest.raises(RemoteProtocolError):
            parse_request(bad)
    data = b"photo bytes"
    assert parse_photo(photo_hash(data), False, {"photo": data}) == data
    with pytest.raises(RemoteProtocolError, match="do not match"):
        parse_photo(photo_hash(b"other"), False, {"photo": data})
    with pytest.raises(RemoteProtocolError, match="1..65536"):
        parse_photo(photo_hash(data), True, {"photo": b"x" * 70_000})
    with pytest.raises(RemoteProtocolError, match="refused"):
        parse_photo(photo_hash(data), False, {"error": "no such photo here"})


# ---------------------------------------------------------------------- real nodes
@pytest.mark.asyncio
async def test_a_buyer_gets_the_vendors_photo_checked_and_a_liar_is_refused(
        tmp_path: Path) -> None:
    vendor, buyer = await start_linked_pair(tmp_path)
    liar: asyncio.subprocess.Process | None = None
    try:
        path = tmp_path / "bowl.jpg"
        path.write_bytes(jpeg_with_gps())
        added = await vendor.call("listing.photo_add", path=str(path))
        with pytest.raises(Exception, match="not one of yours"):
            await vendor.call("listing.create", **sample_listing("Bowl"), photos=["d" * 64])
        made = await vendor.call("listing.create", **sample_listing("Oak bowl"), type="physical",
                                 condition="used", photos=[added["hash"]])
        assert made["photos"] == [{"hash": added["hash"], "thumb": added["thumb"]}]

        async def arrived() -> bool:
            return bool(await buyer.call("listing.search", query="oak"))

        await wait_for(arrived, 30, what="the listing with a photo at the buyer")
        got = await buyer.call("listing.photo", vendor=vendor.peer_id, id=made["id"], index=0)
        data = base64.b64decode(got["data"])
        assert got["source"] == "vendor" and photo_hash(data) == added["hash"]
        assert not has_metadata(data)
        again = await buyer.call("listing.photo", vendor=vendor.peer_id, id=made["id"], index=0)
        assert again["source"] == "here"
        thumb = await buyer.call("listing.photo", vendor=vendor.peer_id, id=made["id"],
                                 index=0, thumb=True)
        assert thumb["hash"] == added["thumb"]

        # a second photo: the vendor goes offline, a liar is the buyer's only peer
        second = await vendor.call("listing.photo_add", data=base64.b64encode(
            encoded("PNG", (500, 500))).decode())
        await vendor.call("listing.update", id=made["id"],
                          photos=[added["hash"], second["hash"]])

        async def updated() -> bool:
            x = await buyer.call("listing.get", id=made["id"], vendor=vendor.peer_id)
            return len(x.get("photos", [])) == 2

        await wait_for(updated, 30, what="the listing's second photo at the buyer")
        await vendor.stop()
        liar = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.photo_liar", buyer.addr, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        assert liar.stdout is not None and liar.stdin is not None
        assert (await asyncio.wait_for(liar.stdout.readline(), 60)).strip() == b"ready"
        before = (await buyer.call("node.info"))["rejected"]["fetch"]
        for _ in range(2):
            with pytest.raises(Exception, match="not found"):
                await buyer.call("listing.photo", vendor=vendor.peer_id, id=made["id"],
                                 index=1)
        info = await buyer.call("node.info")
        assert info["market"]["photos"]["rejected"] >= 2
        assert info["rejected"]["fetch"] - before >= 2
        liar.stdin.close()
        out = (await asyncio.wait_for(liar.stdout.read(), 30)).decode()
        assert "answered 2" in out  # asked twice, refused twice: nothing of it was kept
    finally:
        if liar is not None and liar.returncode is None:
            liar.kill()
            await liar.wait()
        for node in (vendor, buyer):
            await node.stop()


@pytest.mark.asyncio
async def test_bad_photo_requests_get_clear_errors(tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "n").start()
    try:
        for params, why in (({}, "path"), ({"path": str(tmp_path / "nope.jpg")}, "no file"),
                            ({"data": "not base64!"}, "base64"),
                            ({"data": base64.b64encode(b"text").decode()}, "readable")):
            with pytest.raises(Exception, match=why):
                await node.call("listing.photo_add", **params)
    finally:
        await node.stop()


def test_the_terminal_view_draws_two_pixels_per_cell() -> None:
    from tui.photo_view import PhotoError, half_blocks

    picture = Image.new("RGB", (40, 40), (250, 0, 0))
    picture.paste((0, 0, 250), (0, 20, 40, 40))  # red over blue
    done = process(encoded_image(picture))
    text = half_blocks(done.thumb, width=10)
    lines = text.plain.split("\n")
    assert len(lines) == 5 and all(line == "▀" * 10 for line in lines)
    first, last = text.spans[0].style, text.spans[-1].style
    assert first.color is not None and first.bgcolor is not None  # type: ignore[union-attr]
    top = first.color.get_truecolor()  # type: ignore[union-attr]
    bottom = last.bgcolor.get_truecolor()  # type: ignore[union-attr]
    assert top.red > 200 and top.blue < 60 and bottom.blue > 200 and bottom.red < 60
    with pytest.raises(PhotoError, match="not a thumbnail"):
        half_blocks(png_claiming(5000, 5000))
    with pytest.raises(PhotoError, match="not a picture"):
        half_blocks(b"no picture")


def encoded_image(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
