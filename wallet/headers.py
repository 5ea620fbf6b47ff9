"""A light wallet's own chain of block headers, as Electrum keeps one: it starts at a checkpoint
compiled in per network (the genesis block in this build), every header links to the one before
by hash, carries the proof of work its bits claim, and its bits are what the network's
difficulty rule allows; of two branches the one with more work wins. Heights, confirmations
and merkle proofs are judged against this chain, never against a server's word.

Pure but for the optional file it keeps (80 bytes a header, written by the caller off the event
loop). Difficulty rules: Bitcoin and Litecoin main chains retarget every 2016 blocks (Litecoin
looks back one block further); regtest keeps the easiest target; signet's target is fixed;
testnet's 20-minute rule is not modelled (any target no easier than the limit is taken).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ServerLied
from .merkle import HEADER_SIZE, POW_LIMIT_BITS, check_header, sha256d, target

RETARGET_INTERVAL = 2016
TIMESPAN = {"bitcoin": 14 * 24 * 3600, "litecoin": 302_400}  # 2 weeks; 3.5 days
# (height, header) where each network's chain of trust starts: the genesis blocks, whose hashes
# are the well-known ones (checked by the tests).
CHECKPOINTS: dict[str, tuple[int, str]] = {
    "bitcoin": (0, "01000000" + "00" * 32 + "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a"
                   "9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"),
    "testnet": (0, "01000000" + "00" * 32 + "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a"
                   "9fb8aa4b1e5e4adae5494dffff001d1aa4ae18"),
    "signet": (0, "01000000" + "00" * 32 + "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a"
                  "9fb8aa4b1e5e4a008f4d5fae77031e8ad22203"),
    "regtest": (0, "01000000" + "00" * 32 + "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a"
                   "9fb8aa4b1e5e4adae5494dffff7f2002000000"),
    "litecoin": (0, "01000000" + "00" * 32 + "d9ced4ed1130f7b7faad9be25323ffafa33232a17c3edf6cf"
                    "d97bee6bafbdd97b9aa8e4ef0ff0f1ecd513f7c"),
    "litecoin-regtest": (0, "01000000" + "00" * 32 + "d9ced4ed1130f7b7faad9be25323ffafa33232a1"
                            "7c3edf6cfd97bee6bafbdd97dae5494dffff7f2000000000"),
}


def compact(value: int) -> int:
    """A target as compact bits (Bitcoin Core's GetCompact)."""
    size = (value.bit_length() + 7) // 8
    mantissa = value << 8 * (3 - size) if size <= 3 else value >> 8 * (size - 3)
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return size << 24 | mantissa


def work(bits: int) -> int:
    return (1 << 256) // (target(bits) + 1)


def _bits(header: bytes) -> int:
    return int.from_bytes(header[72:76], "little")


def _time(header: bytes) -> int:
    return int.from_bytes(header[68:72], "little")


@dataclass
class Accepted:
    """What ``HeaderChain.connect`` did: headers taken and, on a reorg, the first height whose
    header changed (None: the chain only grew)."""

    count: int
    reorg_from: int | None = None


class HeaderChain:
    def __init__(self, network: str, path: Path | None = None) -> None:
        if network not in CHECKPOINTS:
            raise ServerLied(f"no checkpoint for {network}")
        self.network = network
        self.path = path
        base, header_hex = CHECKPOINTS[network]
        self.base = base
        self._headers: list[bytes] = [bytes.fromhex(header_hex)]
        self._hashes: list[bytes] = [sha256d(self._headers[0])]
        self._work: list[int] = [work(_bits(self._headers[0]))]  # cumulative, from the base

    # ------------------------------------------------------------------ reading
    @property
    def tip(self) -> int:
        return self.base + len(self._headers) - 1

    def header(self, height: int) -> bytes | None:
        i = height - self.base
        return self._headers[i] if 0 <= i < len(self._headers) else None

    def hash_at(self, height: int) -> bytes | None:
        i = height - self.base
        return self._hashes[i] if 0 <= i < len(self._hashes) else None

    @property
    def chainwork(self) -> int:
        return self._work[-1]

    # ------------------------------------------------------------------ the rules
    def _expected_bits(self, height: int, prev: bytes, branch: dict[int, bytes]) -> int | None:
        """The bits the header at ``height`` must carry (None: the rule is not modelled)."""
        limit = POW_LIMIT_BITS[self.network]
        if self.network in ("regtest", "litecoin-regtest"):
            return limit
        if self.network == "signet":
            return _bits(prev)
        if self.network == "testnet":
            return None
        if height % RETARGET_INTERVAL:
            return _bits(prev)
        back = RETARGET_INTERVAL if self.network == "litecoin" and height != RETARGET_INTERVAL \
            else RETARGET_INTERVAL - 1
        first = branch.get(height - 1 - back) or self.header(height - 1 - back)
        if first is None:  # before our checkpoint: the rule cannot be checked here
            return None
        span = TIMESPAN[self.network]
        actual = min(max(_time(prev) - _time(first), span // 4), span * 4)
        new = min(target(_bits(prev)) * actual // span, target(limit))
        return compact(new)

    def _check(self, height: int, header: bytes, prev: bytes, prev_hash: bytes,
               branch: dict[int, bytes]) -> None:
        if len(header) != HEADER_SIZE:
            raise ServerLied(f"a block header is {HEADER_SIZE} bytes")
        if header[4:36] != prev_hash:
            raise ServerLied(f"the header at {height} does not follow the one before it")
        check_header(header.hex(), self.network)
        want = self._expected_bits(height, prev, branch)
        if want is not None and _bits(header) != want:
            raise ServerLied(f"the header at {height} claims a difficulty the network's rule "
                             "does not give it")
        if want is None and target(_bits(header)) > target(POW_LIMIT_BITS[self.network]):
            raise ServerLied(f"the header at {height} is easier than the network allows")

    # ------------------------------------------------------------------ growing
    def connect(self, start: int, raw: bytes) -> Accepted:
        """Take headers ``raw`` (80 bytes each) for heights ``start``, ``start + 1``, ...: they
        must link to our header at ``start - 1``. If they replace headers we hold (a fork),
        they are taken only when their branch has more work than ours (``Accepted`` says so).
        ServerLied when any of them breaks a rule (nothing is taken then)."""
        if len(raw) % HEADER_SIZE or not raw:
            raise ServerLied("headers come in whole 80-byte pieces")
        if not self.base < start <= self.tip + 1:
            raise ServerLied(f"headers from {start} do not join our chain (0..{self.tip})")
        new = [raw[i:i + HEADER_SIZE] for i in range(0, len(raw), HEADER_SIZE)]
        prev = self.header(start - 1)
        prev_hash = self.hash_at(start - 1)
        assert prev is not None and prev_hash is not None
        branch: dict[int, bytes] = {}
        hashes, total = [], self._work[start - 1 - self.base]
        cumulative = []
        for offset, header in enumerate(new):
            height = start + offset
            self._check(height, header, prev, prev_hash, branch)
            branch[height] = header
            prev, prev_hash = header, sha256d(header)
            hashes.append(prev_hash)
            total += work(_bits(header))
            cumulative.append(total)
        keep = start - self.base
        ours = self._hashes[keep:]
        first_diff = next((i for i, h in enumerate(hashes) if i >= len(ours) or ours[i] != h),
                          None)
        if first_diff is None:
            return Accepted(0)  # headers we hold already
        at = keep + first_diff
        if at < len(self._headers) and cumulative[-1] <= self._work[-1]:
            return Accepted(0)  # a branch with no more work than ours: ignored
        reorg = start + first_diff if at < len(self._headers) else None
        self._headers[at:] = new[first_diff:]
        self._hashes[at:] = hashes[first_diff:]
        self._work[at:] = cumulative[first_diff:]
        return Accepted(len(new) - first_diff, reorg)

    # ------------------------------------------------------------------ the file
    def load(self) -> int:
        """Take the headers saved by ``save`` (checked again; a damaged tail is dropped).
        Blocking: call it off the event loop."""
        if self.path is None or not self.path.exists():
            return 0
        raw = self.path.read_bytes()
        raw = raw[:len(raw) - len(raw) % HEADER_SIZE]
        if raw[:HEADER_SIZE] != self._headers[0]:
            return 0
        taken = 0
        for i in range(HEADER_SIZE, len(raw), HEADER_SIZE * RETARGET_INTERVAL):
            try:
                taken += self.connect(self.base + i // HEADER_SIZE,
                                      raw[i:i + HEADER_SIZE * RETARGET_INTERVAL]).count
            except ServerLied:
                break
        return taken

    def save(self) -> None:
        """Write the chain to its file (blocking: off the event loop)."""
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(self._headers))
        tmp.replace(self.path)


def genesis_hash(network: str) -> str:
    """The block hash (hex, as block explorers show it) where ``network``'s chain of trust
    starts: what a chain backend must agree with to serve this network."""
    if network not in CHECKPOINTS or CHECKPOINTS[network][0] != 0:
        raise ServerLied(f"no genesis checkpoint for {network}")
    return sha256d(bytes.fromhex(CHECKPOINTS[network][1]))[::-1].hex()
