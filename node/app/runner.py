"""Run a node with its JSON-RPC server until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from node.app import settings as app_settings
from node.app.schema import open_database
from node.community import rpc as community_rpc
from node.community.service import CommunityService
from node.core import fiat_rates
from node.core.config import DEFAULT_LISTEN
from node.core.database import DB_NAME, Database
from node.core.events import DEFAULT_QUEUE
from node.core.fiat_rates import FiatRates
from node.core.identity_file import resolve_identity
from node.core.lan import LanService
from node.core.loopwatch import LoopWatch
from node.core.node import NodeConfig, NodeCore
from node.core.reach import ReachService
from node.core.relays import RelayService
from node.core.rpc_server import COOKIE_NAME, PORT_FILE, RpcServer, write_cookie
from node.core.upnp import UpnpService
from node.mail import rpc as mail_rpc
from node.mail.chat import ChatService
from node.mail.notifications import NotificationService
from node.mail.service import MailService
from node.market import rpc as market_rpc
from node.market.service import MarketService
from node.net.host import configure_libp2p_logging
from node.trade import rpc as trade_rpc
from node.trade.mail_copies import TradeMail
from node.trade.service import TradeOptions, TradingService
from node.wallet import rpc as wallet_rpc
from node.wallet.service import WalletHolder, WalletService
from protocol.identity import Identity
from protocol.networks import get_network
from protocol.store import PROFILE_TYPE, StoreObject
from wallet.chain import CoreRpcBackend, parse_chain_rpc
from wallet.electrum import ElectrumBackend
from wallet.errors import BadPassphrase

log = logging.getLogger("torv.runner")
LOOP_WATCH_ENV = "TORV_LOOP_WATCH"  # a threshold in ms: log every longer stall of the loop
# "1": every API answer is checked against its method's result schema (the tests set it)
CHECK_RESULTS_ENV = "TORV_CHECK_RESULTS"


@dataclass
class RunOptions:
    data_dir: Path
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    rpc_port: int = 0
    bootstrap: list[str] = field(default_factory=list)
    chain: str | None = None
    chain_rpc: str | None = None
    passphrase: str | None = None
    event_queue: int = DEFAULT_QUEUE
    trade: TradeOptions = field(default_factory=TradeOptions)
    electrum: list[str] = field(default_factory=list)
    mdns: bool = True  # look for neighbours on the LAN (when listening beyond loopback)
    upnp: bool = True  # map our port on a home router that offers UPnP
    relay_service: str = "auto"  # offer circuit relay: on, off, or auto (while public)
    rates: list[str] = field(default_factory=list)  # exchange rate sources (URLs or files)
    carry: str = "all"  # whose listings to keep: all, or only those of the joined markets


async def open_wallet(opts: RunOptions, db: Database) -> WalletHolder:
    """The wallet holder, without its chain backend yet; a first start with a passphrase
    creates the wallet (and so the node's identity comes from its words)."""
    network = get_network(opts.chain) if opts.chain else None
    holder = WalletHolder(opts.data_dir, db, network, None)
    if network is not None and opts.passphrase:
        if holder.wallet is None:
            await holder.create(opts.passphrase)
            log.info("created a new %s wallet (back up its words: wallet.mnemonic)",
                     network.name)
        else:
            try:
                await holder.wallet.unlock(opts.passphrase)
            except BadPassphrase:
                log.warning("wrong wallet passphrase given at start; the wallet stays locked")
    if network is None:
        log.info("no --chain given: running without a wallet backend")
    return holder


async def attach_chain(opts: RunOptions, holder: WalletHolder, peer_id: str) -> None:
    """Connect the chain backend: Electrum servers, or a watch-only wallet
    ``torv-<end of peer id>`` in a full node."""
    if holder.network is not None and opts.electrum:
        electrum = ElectrumBackend(opts.electrum, holder.network,
                                   headers_path=opts.data_dir / f"headers-{holder.network.name}")
        await electrum.start()
        holder.set_backend(electrum)
        if holder.wallet is not None:
            await holder.wallet.sync_watch(fresh_backend=True)
        return
    if holder.network is None or not opts.chain_rpc:
        return
    url, user, password = parse_chain_rpc(opts.chain_rpc, holder.network)
    backend = CoreRpcBackend(url, user, password, f"torv-{peer_id[-12:]}")
    holder.set_backend(backend)
    await backend.ensure_wallet()
    if holder.wallet is not None:
        await holder.wallet.sync_watch()


async def _report_stalls(watch: LoopWatch) -> None:
    while True:
        await asyncio.sleep(1)
        watch.report()


def compose(core: NodeCore, holder: WalletHolder, opts: RunOptions) -> None:
    """The one place the services are built: each gets what it needs from the others passed
    in, and is added to the core with its API methods."""
    market = MarketService(core, opts.carry)
    core.add(market, market_rpc.methods(market))
    core.add(WalletService(core, holder), wallet_rpc.methods(holder))
    mail = MailService(core)
    mail.profile_of = market.get_profile

    async def cached_profile(peer: str) -> StoreObject | None:
        return await market.store_object(peer, PROFILE_TYPE)

    mail.cached_profile_of = cached_profile

    async def name_mailboxes(mailboxes: list[str]) -> None:
        await market.own_recovered.wait()  # a restored node's old profile first
        await market.set_profile({"mailboxes": mailboxes})

    mail.name_mailboxes = name_mailboxes
    core.add(mail)
    rates = FiatRates(core, opts.rates)
    coin = holder.network.unit if holder.network else "LTC"
    core.add(rates, fiat_rates.methods(rates, coin))
    market.rates, market.coin = rates, coin
    trading = TradingService(core, holder, market, opts.trade)
    trading.mailer = TradeMail(trading, mail)
    trading.rates = rates
    core.add(trading, trade_rpc.methods(trading))
    chat = ChatService(core, mail, market.names)
    core.add(chat, mail_rpc.chat_methods(chat))
    notes = NotificationService(core)
    core.add(notes, mail_rpc.notification_methods(notes))
    community = CommunityService(core, mail, market)
    core.add(community, community_rpc.methods(community))
    trading.market_moderators = community.moderators_for
    reach = ReachService(core)
    core.add(reach)
    upnp = UpnpService(core, opts.listen, opts.upnp)
    reach.port_sources.append(upnp.external_ports)
    upnp.on_mapped.append(reach.wake)
    core.add(upnp)
    core.add(RelayService(core, reach, opts.relay_service))
    core.add(LanService(core, opts.listen, opts.mdns))
    settings = app_settings.SettingsService(core, opts.data_dir)
    core.add(settings, app_settings.methods(settings))


async def run_node(opts: RunOptions, stop: asyncio.Event | None = None,
                   on_ready: Callable[[], None] | None = None) -> None:
    """Run a node until ``stop`` (or SIGINT/SIGTERM); ``on_ready()`` runs once it serves
    (the node process freezes its startup heap there: node/core/heap.py)."""
    configure_libp2p_logging()
    watch: LoopWatch | None = None
    if os.environ.get(LOOP_WATCH_ENV):
        watch = LoopWatch(float(os.environ[LOOP_WATCH_ENV]) / 1000)
        watch.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    opts.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = await open_database(opts.data_dir / DB_NAME)
    holder: WalletHolder | None = None
    core: NodeCore | None = None
    runner: web.AppRunner | None = None
    try:
        holder = await open_wallet(opts, db)
        keystore = holder.wallet.keystore if holder.wallet is not None else None
        seed, source = await resolve_identity(opts.data_dir, db, keystore)
        await attach_chain(opts, holder, Identity(seed).peer_id)
        core = NodeCore(NodeConfig(opts.data_dir, opts.listen, opts.bootstrap, opts.event_queue),
                        Identity(seed), db, source)
        compose(core, holder, opts)
        await core.start()
        if watch is not None:
            core.spawn(_report_stalls(watch), "loop watch")
        server = RpcServer(core, opts.event_queue,
                           check_results=os.environ.get(CHECK_RESULTS_ENV) == "1")
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", opts.rpc_port)
        await site.start()
        core.rpc_port = runner.addresses[0][1]
        server.token = write_cookie(opts.data_dir, core.rpc_port)
        log.info("JSON-RPC on http://127.0.0.1:%d/rpc (token in %s)", core.rpc_port,
                 opts.data_dir / COOKIE_NAME)
        print(f"torv node {core.me} ready; rpc port {core.rpc_port}", flush=True)
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        log.info("shutting down")
        if runner is not None:
            await runner.cleanup()
        for name in (COOKIE_NAME, PORT_FILE):
            (opts.data_dir / name).unlink(missing_ok=True)
        if core is not None:
            await core.stop()  # stops the services, the wallet's backend included
        elif holder is not None and holder.backend is not None:
            await holder.backend.close()
        await db.close()
        if watch is not None:
            await watch.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
