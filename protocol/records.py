"""Names on the wire (protocol ids, topic, DHT keys) and the DHT record rules.

DHT values under the ``torv`` namespace are signed profiles and manifests. A record is valid
when it verifies, is of the kind its key names, and is signed by the peer its key names.
Among several valid records the winner is decided by ``copies.best`` (highest ``seq``, ties to
the greatest wire bytes), so every node picks the same one whatever order it sees them in.
"""

from __future__ import annotations

import hashlib

from . import canonical
from .copies import best
from .errors import RemoteProtocolError
from .identity import PEER_ID_LENGTH, is_peer_id
from .listing import LISTING_TYPE, Listing
from .signed import SignedObject
from .store import MANIFEST_TYPE, PAGE_TYPE, PROFILE_TYPE, StoreObject

DHT_NAMESPACE = "torv"
STORE_TOPIC = "torv/stores/1"
CATALOG_PROTOCOL = "/torv/catalog/1.0.0"
DHT_KINDS = (PROFILE_TYPE, MANIFEST_TYPE)
# "/torv/manifest/<52-char peer id>": anything longer is refused before it is split or decoded.
MAX_DHT_KEY = len(f"/{DHT_NAMESPACE}/{MANIFEST_TYPE}/") + PEER_ID_LENGTH
# Records expire after 24 h in py-libp2p; re-put ours well before.
REPUBLISH_SECONDS = 22 * 3600


MAX_GOSSIP = 64 * 1024
MAX_GOSSIP_OBJECTS = 64


def gossip_bundle(first: bytes, extras: list[bytes]) -> bytes:
    """A gossip message: a vendor's manifest (or profile) and, when they fit in
    ``MAX_GOSSIP`` bytes, the pages and listings that changed with it, so receivers need no
    round trip to fetch them."""
    objects = [first]
    size = len(first) + 16
    for wire in extras[:MAX_GOSSIP_OBJECTS - 1]:
        if size + len(wire) + 8 > MAX_GOSSIP:
            break
        objects.append(wire)
        size += len(wire) + 8
    return canonical.encode({"objects": objects})


def parse_gossip(data: bytes) -> list[bytes]:
    """The objects of a gossip message, first the manifest or profile (not yet verified)."""
    if not isinstance(data, bytes) or len(data) > MAX_GOSSIP:
        raise RemoteProtocolError(f"a gossip message is at most {MAX_GOSSIP} bytes")
    raw = canonical.decode(data, max_size=MAX_GOSSIP)
    if not isinstance(raw, dict) or set(raw) != {"objects"}:
        raise RemoteProtocolError("a gossip message is {objects: [...]}")
    objects = raw["objects"]
    if not isinstance(objects, list) or not 1 <= len(objects) <= MAX_GOSSIP_OBJECTS or not all(
            isinstance(o, bytes) for o in objects):
        raise RemoteProtocolError(f"a gossip message holds 1 to {MAX_GOSSIP_OBJECTS} objects")
    return list(objects)


def peek_bundle(origin: str, data: bytes) -> tuple[StoreObject, list[bytes]]:
    """A gossip message's first object, read but not yet verified, and all its objects: the
    cheap checks a receiver makes before it spends signature checks (RemoteProtocolError)."""
    wires = parse_gossip(data)
    first = StoreObject.from_trusted_any(wires[0])
    if first.kind == PAGE_TYPE:
        raise RemoteProtocolError("a gossip message starts with a manifest or a profile")
    seq, vendor = first.body.get("seq"), first.body.get("vendor")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(vendor, str):
        raise RemoteProtocolError(f"a gossiped {first.kind} names its vendor and seq")
    if first.vendor != origin:
        raise RemoteProtocolError(f"{first.kind} gossiped by someone other than its vendor")
    return first, wires


def verify_bundle(origin: str, wires: list[bytes]) -> StoreObject:
    """The objects of a gossip message (``peek_bundle``) verified as on every other path: its
    manifest or profile, signed by the peer that published it, then only that vendor's pages
    and listings, each valid by its own rules (``StoreObject``, ``Listing``)."""
    first = StoreObject.from_wire(wires[0])
    if first.kind == PAGE_TYPE or first.vendor != origin:
        raise RemoteProtocolError("a gossip message starts with its origin's manifest or profile")
    for wire in wires[1:]:
        so = SignedObject.from_wire(wire)
        if so.signer_peer_id != origin or so.type not in (PAGE_TYPE, LISTING_TYPE):
            raise RemoteProtocolError("a gossip message carries only its vendor's pages and "
                                      "listings")
        if so.type == PAGE_TYPE:
            StoreObject.from_signed(so, PAGE_TYPE)
        else:
            Listing.from_signed(so)
    return first


def dht_key(kind: str, peer_id: str) -> str:
    return f"/{DHT_NAMESPACE}/{kind}/{peer_id}"


def provider_multihash(peer_id: str) -> bytes:
    """The provider record key on the wire: the multihash ``12 20 || sha256("/torv/store/<id>")``.

    Nodes holding a copy of ``peer_id``'s catalog announce themselves under it.
    """
    return b"\x12\x20" + hashlib.sha256(f"/{DHT_NAMESPACE}/store/{peer_id}".encode()).digest()


def ratings_provider_key(vendor: str) -> str:
    """The provider record key of the nodes that hold ratings of ``vendor`` (its buyers, and
    the vendor): ``12 20 || sha256("/torv/ratings/<peer id>")``, as hex."""
    return (b"\x12\x20" + hashlib.sha256(f"/{DHT_NAMESPACE}/ratings/{vendor}".encode())
            .digest()).hex()


def provider_key(peer_id: str) -> str:
    """``provider_multihash`` as the hex text py-libp2p's API takes (it sends the raw bytes)."""
    return provider_multihash(peer_id).hex()


def parse_dht_key(key: str) -> tuple[str, str]:
    if not isinstance(key, str) or len(key) > MAX_DHT_KEY:
        raise RemoteProtocolError(f"torv key longer than {MAX_DHT_KEY} characters")
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "" or parts[1] != DHT_NAMESPACE:
        raise RemoteProtocolError(f"not a torv key: {key!r}")
    kind, peer_id = parts[2], parts[3]
    if kind not in DHT_KINDS or not is_peer_id(peer_id):
        raise RemoteProtocolError(f"bad torv key: {key!r}")
    return kind, peer_id


def validate_record(key: str, value: bytes) -> StoreObject:
    kind, peer_id = parse_dht_key(key)
    obj = StoreObject.from_wire(value, kind)
    if obj.vendor != peer_id:
        raise RemoteProtocolError("record signer does not match its key")
    return obj


def select_record(key: str, values: list[bytes]) -> int:
    """Index of the winning record (``copies.best``). Invalid ones never win."""
    valid: dict[tuple[int, bytes], int] = {}
    for i, value in enumerate(values):
        try:
            obj = validate_record(key, value)
        except RemoteProtocolError:
            continue
        valid.setdefault((obj.seq, bytes(value)), i)
    winner = best(valid)
    if winner is None:
        raise RemoteProtocolError("no valid record to select")
    return valid[winner]
