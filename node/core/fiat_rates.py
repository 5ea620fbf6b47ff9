"""Exchange rates for listings priced in local money: read from the sources the user names
(``--rates``: URLs of JSON, or files for offline use), every ``POLL`` seconds, the median of
the sources that answered within ``STALE`` seconds (docs/api.md "rates.get").

A source answers ``{"time": unix seconds, "rates": {"LTC": {"EUR": "68.12", ...}, ...}}``:
what one whole coin costs in each currency (a decimal string or number). A source that does
not answer, answers something else or is older than ``STALE`` is left out (and said in
``rates.get``); nothing from a source is trusted beyond being one vote in the median.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from node.core.api import (
    Args,
    Method,
    Param,
    array,
    boolean,
    integer,
    nullable,
    obj,
    string,
)
from node.core.services import Service
from protocol.fiat import FIAT

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.rates")

POLL = 60.0
STALE = 900  # seconds: a rate older than this is not used
MAX_BODY = 256 * 1024
TIMEOUT = 10.0


@dataclass
class Quote:
    price: int  # minor units of the currency per whole coin
    time: int
    source: str


def parse_source(raw: Any, source: str) -> dict[tuple[str, str], Quote]:
    """(coin, currency) -> Quote from one source's answer; ValueError if it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("time"), int) or \
            not isinstance(raw.get("rates"), dict):
        raise ValueError("not {time, rates}")
    out: dict[tuple[str, str], Quote] = {}
    for coin, table in list(raw["rates"].items())[:20]:
        if not isinstance(coin, str) or not isinstance(table, dict):
            continue
        for currency, value in list(table.items())[:200]:
            if currency not in FIAT or isinstance(value, bool):
                continue
            try:
                minor = int(Decimal(str(value)) * 100)
            except (InvalidOperation, ValueError):
                continue
            if 0 < minor < 10**15:
                out[(coin, currency)] = Quote(minor, int(raw["time"]), source)
    return out


class FiatRates(Service):
    name = "rates"

    def __init__(self, core: NodeCore, sources: list[str]) -> None:
        super().__init__(core)
        self.sources = sources
        self.latest: dict[str, dict[tuple[str, str], Quote]] = {}  # source -> its rates
        self.errors: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None

    def info(self) -> dict[str, Any]:
        return {"sources": len(self.sources), "answering": len(self.latest)}

    async def start(self) -> None:
        if self.sources:
            self.core.spawn(self._poll_loop(), "exchange rates")

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _poll_loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(POLL)

    async def refresh(self) -> None:
        await asyncio.gather(*(self._read(s) for s in self.sources))

    async def _read(self, source: str) -> None:
        try:
            if source.startswith(("http://", "https://")):
                if self._session is None:
                    self._session = aiohttp.ClientSession(
                        timeout=aiohttp.ClientTimeout(total=TIMEOUT))
                async with self._session.get(source) as resp:
                    if resp.status != 200:
                        raise ValueError(f"HTTP {resp.status}")
                    body = await resp.content.read(MAX_BODY + 1)
            else:
                body = await asyncio.to_thread(_read_file, source)
            if len(body) > MAX_BODY:
                raise ValueError(f"more than {MAX_BODY} bytes")
            self.latest[source] = parse_source(json.loads(body), source)
            self.errors.pop(source, None)
        except (OSError, ValueError, aiohttp.ClientError, TimeoutError) as exc:
            self.latest.pop(source, None)
            self.errors[source] = f"{type(exc).__name__}: {exc}"[:200]
            log.info("exchange rates from %s: %s", source, self.errors[source])

    def current(self, coin: str, currency: str, now: float | None = None) -> dict[str, Any] | None:
        """The median of the fresh quotes for (coin, currency), as an ORDER's ``rate``; None
        when no source has a fresh one."""
        now = time.time() if now is None else now
        fresh = [q[(coin, currency)] for q in self.latest.values()
                 if (coin, currency) in q and now - q[(coin, currency)].time <= STALE]
        if not fresh:
            return None
        price = int(statistics.median_low(q.price for q in fresh))
        newest = min(q.time for q in fresh)
        return {"currency": currency, "coin": coin, "price": price, "time": newest,
                "source": f"median of {len(fresh)}" if len(fresh) > 1 else fresh[0].source}

    def prices(self, coin: str) -> dict[str, int]:
        """The fresh median price of one ``coin`` in each currency that has one now."""
        now = time.time()
        out = {}
        for currency in FIAT:
            rate = self.current(coin, currency, now)
            if rate is not None:
                out[currency] = int(rate["price"])
        return out

    def view(self, coin: str) -> dict[str, Any]:
        now = time.time()
        rates = []
        for currency in sorted(FIAT):
            rate = self.current(coin, currency, now)
            if rate is not None:
                rates.append({"currency": currency, "price": rate["price"],
                              "time": rate["time"], "age": int(now - rate["time"]),
                              "source": rate["source"]})
        return {"coin": coin, "rates": rates,
                "sources": [{"source": s, "ok": s in self.latest,
                             "error": self.errors.get(s)} for s in self.sources]}


def _read_file(path: str) -> bytes:
    with open(Path(path), "rb") as f:
        return f.read(MAX_BODY + 1)


def methods(svc: FiatRates, coin: str) -> list[Method]:
    async def get(p: Args) -> Any:
        if p["refresh"]:
            await svc.refresh()
        return svc.view(p["coin"] or coin)

    rate = obj({"currency": string(), "price": integer(), "time": integer(), "age": integer(),
                "source": string()}, ("currency", "price", "time", "age", "source"))
    return [Method(
        "rates.get", "The exchange rates this node prices orders of listings in local money "
        "with: per currency the median of its fresh sources, in minor units (cents) per whole "
        "coin; and each source's state. refresh reads the sources again first.",
        (Param("coin", string(10, 2)), Param("refresh", boolean(), default=False)),
        obj({"coin": string(), "rates": array(rate, 100),
             "sources": array(obj({"source": string(), "ok": boolean(),
                                   "error": nullable(string())}, ("source", "ok", "error")),
                              100)}, ("coin", "rates", "sources")), get)]
