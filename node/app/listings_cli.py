"""``torv listings export FILE.csv`` and ``torv listings import FILE.csv [--dry-run]``: a
store as a spreadsheet, through the running node's JSON-RPC API (``listing.export``,
``listing.import``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
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
            text = asyncio.run(call("listing.export"))["csv"]
            path.write_text(text, encoding="utf-8")
            print(f"{max(0, text.count(chr(10)) - 1)} listing(s) written to {path}")
            return 0
        try:
            text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is fine
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            return 2
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
