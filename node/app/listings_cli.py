"""``torv listings export FILE.csv`` and ``torv listings import FILE.csv [--dry-run]``: a
store as a spreadsheet, through the running node's JSON-RPC API (``listing.export``,
``listing.import``)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.client import RpcCallError, RpcClient


def cmd_listings(args: argparse.Namespace) -> int:
    path = Path(args.file)

    async def call(method: str, **params: Any) -> Any:
        async with RpcClient.from_data_dir(args.data_dir) as client:
            return await client.call(method, **params)

    try:
        if args.listings_command == "export":
            text, photos = asyncio.run(export_with_photos(args.data_dir, path))
            path.write_text(text, encoding="utf-8")
            print(f"{max(0, text.count(chr(10)) - 1)} listing(s) written to {path}"
                  + (f", {photos} photo(s) beside it" if photos else ""))
            return 0
        try:
            text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is fine
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return 2
        text = with_absolute_photo_paths(text, path.parent)
        report = asyncio.run(call("listing.import", csv=text, dry_run=args.dry_run))
    except RpcCallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for e in report["errors"]:
        print(f"{path}:{e['line']}: {e['field']}: {e['message']}", file=sys.stderr)
    if report["errors"]:
        print(f"nothing imported: {len(report['errors'])} error(s)", file=sys.stderr)
        return 1
    verb = "would create" if args.dry_run else "created"
    print(f"{verb} {report['created']}, {'would change' if args.dry_run else 'changed'} "
          f"{report['updated']}, left {report['unchanged']} as they were")
    return 0


def _rewrite_photos(text: str, change: Callable[[dict[str, str], list[str]], list[str]]) -> str:
    """The CSV with each row's photos entries replaced by ``change(row, entries)``."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "photos" not in rows[0]:
        return text
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        entries = [e.strip() for e in (row.get("photos") or "").split(";") if e.strip()]
        row["photos"] = "; ".join(change(row, entries))
        writer.writerow(row)
    return out.getvalue()


def with_absolute_photo_paths(text: str, folder: Path) -> str:
    """Photo files named relative to the CSV's folder, made absolute for the node (a photo's
    hash is left as it is)."""
    def change(row: dict[str, str], entries: list[str]) -> list[str]:
        return [e if re.fullmatch(r"[0-9a-f]{64}", e) or Path(e).is_absolute()
                else str((folder / e).resolve()) for e in entries]

    return _rewrite_photos(text, change)


async def export_with_photos(data_dir: Path, path: Path) -> tuple[str, int]:
    """The store as CSV, each photo written beside it (``<name>_photos/<hash>.jpg``) and named
    by that relative path, so that importing the folder elsewhere brings the photos along."""
    folder = path.parent / f"{path.stem}_photos"
    written = 0
    async with RpcClient.from_data_dir(data_dir) as client:
        text = (await client.call("listing.export"))["csv"]
        me = (await client.call("node.info"))["peer_id"]
        fetched: dict[tuple[str, int], bytes] = {}
        for row in csv.DictReader(io.StringIO(text)):
            for i, _ in enumerate(e for e in (row.get("photos") or "").split(";") if e.strip()):
                got = await client.call("listing.photo", vendor=me, id=row["id"], index=i)
                fetched[(row["id"], i)] = base64.b64decode(got["data"])

    def change(row: dict[str, str], entries: list[str]) -> list[str]:
        nonlocal written
        names = []
        for i, digest in enumerate(entries):
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{digest}.jpg"
            if not target.exists():
                target.write_bytes(fetched[(row["id"], i)])
                written += 1
            names.append(f"{folder.name}/{target.name}")
        return names

    return _rewrite_photos(text, change), written
