"""The ``torv`` command: node, rpc, tui, demo, wallet."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import platformdirs

from node.core.config import DEFAULT_EVENT_QUEUE, DEFAULT_LISTEN, DEFAULT_RPC_PORT
from protocol.errors import TorvError
from protocol.networks import NETWORKS_BY_NAME

# Heavy modules (libp2p, aiohttp, textual) are imported inside the commands that need them, so
# `torv rpc` starts quickly and worker processes that re-import this module stay light.


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("torv", appauthor=False))


def _data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="node data directory (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torv", description="Torv: a peer-to-peer market node. With no command: your "
        "own node in the terminal UI (set up on the first run).")
    _data_dir(parser)
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("node", help="run a node in the foreground")
    _data_dir(p)
    p.add_argument("--listen", action="append", default=None,
                   help=f"libp2p listen multiaddr, repeatable (default {DEFAULT_LISTEN})")
    p.add_argument("--rpc-port", type=int, default=None,
                   help="JSON-RPC port on 127.0.0.1; 0 picks a free one (default: the settings "
                        "file's, else {DEFAULT_RPC_PORT})")
    p.add_argument("--no-mdns", action="store_true",
                   help="do not look for Torv nodes on the LAN (mDNS)")
    p.add_argument("--no-upnp", action="store_true",
                   help="do not ask the router (UPnP) to forward the listen port")
    p.add_argument("--relay-service", choices=("on", "off", "auto"), default=None,
                   help="relay connections for peers behind NAT (circuit relay v2): on, off, "
                        "or auto: only while peers can dial this node (default: the settings "
                        "file's, else auto)")
    p.add_argument("--rates", action="append", default=None, metavar="URL_OR_FILE",
                   help="an exchange rate source for listings priced in local money (a URL "
                        "of JSON or a file, docs/api.md rates.get); repeat for more: the "
                        "median is used")
    p.add_argument("--bootstrap", nargs="*", default=None, metavar="MULTIADDR",
                   help="peers to connect to at start")
    p.add_argument("--chain", default=None, choices=sorted(NETWORKS_BY_NAME),
                   help="wallet network (default: no wallet backend)")
    p.add_argument("--chain-rpc", default=None,
                   help="chain node JSON-RPC URL (http://user:pass@host:port) or cookie file")
    p.add_argument("--electrum", action="append", default=[], metavar="URL",
                   help="an Electrum server (tcp://host:port or ssl://host:port) instead of "
                        "--chain-rpc; repeat for fallbacks, tried in turn")
    p.add_argument("--event-queue", type=int, default=DEFAULT_EVENT_QUEUE, metavar="N",
                   help="events an event-stream client may fall behind before it is dropped "
                        "(default %(default)s)")
    p.add_argument("--chain-poll", type=float, default=5.0, metavar="SECONDS",
                   help="how often to look at the chain for escrow payments and releases "
                        "(default %(default)s)")
    p.add_argument("--payment-grace", type=float, default=30.0, metavar="SECONDS",
                   help="as a vendor, how long a confirmed escrow funding may go without the "
                        "buyer's PAYMENT message before the node reports it itself "
                        "(default %(default)s)")
    p.add_argument("--hold-hours", type=float, default=24.0, metavar="HOURS",
                   help="as a vendor, how long a confirmed order may stay unpaid before its "
                        "items go back on sale (default %(default)s)")
    p.add_argument("--carry", default=None, choices=["all", "markets"],
                   help="whose listings this node fetches and keeps: every store it hears of "
                        "(all, the default), or only the stores of the community markets it "
                        "joined and those you browse (markets)")
    p.add_argument("--ratings-every", type=float, default=300.0, metavar="SECONDS",
                   help="how often to gather, in the background, the ratings of the vendors "
                        "whose listings this node holds (0: only when asked; default "
                        "%(default)s)")
    p.add_argument("--log-level", default="INFO")

    p = sub.add_parser("rpc", help="call a JSON-RPC method on a running node", add_help=False)
    p.add_argument("-h", "--help", nargs="?", const="", default=None, metavar="METHOD",
                   help="show this help, or a method's parameters and result (from the "
                        "node's rpc.discover)")
    _data_dir(p)
    p.add_argument("--watch", action="store_true",
                   help="instead of calling a method, print the node's events as they happen")
    p.add_argument("method", nargs="?")
    p.add_argument("params", nargs="?", default="{}", help="JSON object of named parameters")
    p.set_defaults(usage_text=p.format_help())

    p = sub.add_parser("events", help="print a running node's events as they happen (JSON lines)")
    _data_dir(p)

    p = sub.add_parser("tui", help="open the terminal UI against a running node")
    _data_dir(p)

    p = sub.add_parser("demo", help="start a private local market and open the TUI")
    p.add_argument("--vendors", type=int, default=3)
    p.add_argument("--no-tui", action="store_true", help="run the market without the TUI")
    p.add_argument("--no-chain", action="store_true", help="do not start a regtest chain")

    p = sub.add_parser("listings", help="your listings as CSV: export, import")
    lsub = p.add_subparsers(dest="listings_command", required=True)
    for name, what in (("export", "write your listings to FILE (CSV)"),
                       ("import", "create and change listings from FILE (CSV); all or "
                        "nothing")):
        lp = lsub.add_parser(name, help=what)
        _data_dir(lp)
        lp.add_argument("file", metavar="FILE")
        if name == "import":
            lp.add_argument("--dry-run", action="store_true",
                            help="check every row and report; change nothing")
    p = sub.add_parser("wallet", help="wallet maintenance")
    wsub = p.add_subparsers(dest="wallet_command", required=True)
    w = wsub.add_parser("restore", help="rebuild the wallet from its 24 words")
    _data_dir(w)
    w.add_argument("--chain", required=True, choices=sorted(NETWORKS_BY_NAME))
    return parser


def cmd_events(args: argparse.Namespace) -> int:
    """Print the event stream, one JSON object per line, until the node closes it or Ctrl+C."""
    from tui.client import RpcCallError, RpcClient

    async def go() -> int | None:
        async with RpcClient.from_data_dir(args.data_dir) as client:
            async for event in client.events():
                print(json.dumps(event, sort_keys=True), flush=True)
            return client.last_close_code

    try:
        code = asyncio.run(go())
    except RpcCallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    if code not in (None, 1000, 1001):
        print(f"error: the node closed the event stream (code {code})", file=sys.stderr)
        return 1
    return 0


def describe_method(doc: dict[str, Any], name: str) -> str | None:
    """A method of an OpenRPC document as text: summary, parameters, result, errors."""
    method = next((m for m in doc["methods"] if m["name"] == name), None)
    if method is None:
        return None
    lines = [f"{name}: {method['summary']}", "", "parameters:"]
    for param in method["params"] or []:
        need = "required" if param["required"] else "optional"
        lines.append(f"  {param['name']} ({need}): {json.dumps(param['schema'])}")
    if not method["params"]:
        lines.append("  (none)")
    lines += ["", f"result: {json.dumps(method['result']['schema'])}", "", "errors:"]
    lines += [f"  {e['code']}: {e['message']}" for e in method["errors"]]
    return "\n".join(lines)


def cmd_rpc_help(args: argparse.Namespace) -> int:
    from tui.client import RpcCallError, RpcClient

    if not args.help:
        print(args.usage_text, end="")
        return 0

    async def go() -> Any:
        async with RpcClient.from_data_dir(args.data_dir) as client:
            return await client.call("rpc.discover")

    try:
        doc = asyncio.run(go())
    except RpcCallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = describe_method(doc, args.help)
    if text is None:
        names = ", ".join(m["name"] for m in doc["methods"])
        print(f"error: no method {args.help}; the node has: {names}", file=sys.stderr)
        return 2
    print(text)
    return 0


def cmd_rpc(args: argparse.Namespace) -> int:
    from tui.client import RpcCallError, RpcClient

    if args.watch:
        return cmd_events(args)
    if not args.method:
        print("error: give a method name (or --watch)", file=sys.stderr)
        return 2
    try:
        params = json.loads(args.params)
    except ValueError as exc:
        print(f"error: params are not JSON: {exc}", file=sys.stderr)
        return 2
    if not isinstance(params, dict):
        print("error: params must be a JSON object", file=sys.stderr)
        return 2

    async def go() -> Any:
        async with RpcClient.from_data_dir(args.data_dir) as client:
            return await client.call(args.method, **params)

    try:
        result = asyncio.run(go())
    except RpcCallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.data is not None:
            print(json.dumps(exc.data), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def with_settings(args: argparse.Namespace) -> argparse.Namespace:
    """``torv node``'s flags over the data dir's settings file (``torv.toml``): a flag given
    wins; the chain backend is taken whole from one or the other."""
    from node.app.config_file import load

    settings = load(args.data_dir)
    if settings is not None:
        args.listen = args.listen or settings.listen
        args.bootstrap = settings.bootstrap if args.bootstrap is None else args.bootstrap
        args.rpc_port = settings.rpc_port if args.rpc_port is None else args.rpc_port
        args.no_mdns = getattr(args, "no_mdns", False) or not settings.mdns
        args.no_upnp = getattr(args, "no_upnp", False) or not settings.upnp
        args.relay_service = getattr(args, "relay_service", None) or settings.relay_service
        args.carry = getattr(args, "carry", None) or settings.carry
        args.rates = getattr(args, "rates", None) or settings.rates
        args.chain = args.chain or settings.chain or None
        if not (args.electrum or args.chain_rpc):
            args.electrum, args.chain_rpc = settings.electrum, settings.chain_rpc or None
    args.bootstrap = args.bootstrap or []
    args.relay_service = getattr(args, "relay_service", None) or "auto"
    args.carry = getattr(args, "carry", None) or "all"
    args.rates = getattr(args, "rates", None) or []
    args.rpc_port = DEFAULT_RPC_PORT if args.rpc_port is None else args.rpc_port
    return args


def cmd_node(args: argparse.Namespace) -> int:
    from node.app.runner import RunOptions, run_node
    from node.app.wallet_cli import startup_passphrase
    from node.core import heap
    from node.trade.service import TradeOptions

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = with_settings(args)
    except TorvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.event_queue < 1:
        print("error: --event-queue must be at least 1", file=sys.stderr)
        return 2
    args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.chain_poll <= 0 or args.payment_grace < 0 or args.hold_hours <= 0 or \
            args.ratings_every < 0:
        print("error: --chain-poll and --hold-hours must be positive and --payment-grace "
              "and --ratings-every not negative",
              file=sys.stderr)
        return 2
    if args.electrum and args.chain_rpc:
        print("error: give --chain-rpc or --electrum, not both", file=sys.stderr)
        return 2
    if (args.electrum or args.chain_rpc) and not args.chain:
        print("error: --chain-rpc and --electrum need --chain NETWORK", file=sys.stderr)
        return 2
    opts = RunOptions(args.data_dir, args.listen or [DEFAULT_LISTEN], args.rpc_port,
                      args.bootstrap, args.chain, args.chain_rpc,
                      startup_passphrase(args.data_dir, args.chain), args.event_queue,
                      TradeOptions(args.chain_poll, args.payment_grace, args.hold_hours,
                                   args.ratings_every),
                      electrum=args.electrum, mdns=not args.no_mdns,
                      upnp=not args.no_upnp, relay_service=args.relay_service,
                      rates=args.rates, carry=args.carry)
    heap.settle()
    try:
        asyncio.run(run_node(opts, on_ready=heap.freeze))
    except KeyboardInterrupt:
        pass
    except TorvError as exc:
        logging.getLogger("torv").error("cannot run the node: %s", exc)
        return 1
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from tui.app import TorvApp
    from tui.client import RpcCallError, RpcClient

    try:
        client = RpcClient.from_data_dir(args.data_dir)
    except RpcCallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    crash_log = args.data_dir / "tui-crash.log"
    app = TorvApp(client, crash_log=crash_log)
    app.run()
    if app.return_code:
        print(f"error: the terminal UI failed; its traceback is in {crash_log}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "rpc" and args.help is not None:
        return cmd_rpc_help(args)
    if args.command == "rpc":
        return cmd_rpc(args)
    if args.command == "events":
        return cmd_events(args)
    if args.command == "node":
        return cmd_node(args)
    if args.command == "tui":
        return cmd_tui(args)
    if args.command == "demo":
        from node.app.demo import run_demo
        return run_demo(args)
    if args.command == "listings":
        from node.app.listings_cli import cmd_listings
        return cmd_listings(args)
    if args.command == "wallet":
        from node.app.wallet_cli import cmd_wallet_restore
        return cmd_wallet_restore(args)
    from node.app.start import cmd_start
    return cmd_start(args)


if __name__ == "__main__":
    sys.exit(main())
