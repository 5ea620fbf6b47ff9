"""Shipping profiles (listing v2): where a listing ships, by which services, at what price.

    shipping_profile: {regions: [{countries: [CC | "WORLDWIDE"], services: [{name, days,
                       first, additional}]}], pickup?: bool, free_above?: int}

Countries are ISO 3166-1 alpha-2 codes (upper case) or ``WORLDWIDE``. An order of such a
listing names ``"CC/service"`` (its country and a service of the first region that lists the
country, else of a ``WORLDWIDE`` one) or ``"PICKUP"`` when the listing offers local pickup.
Shipping costs ``first`` for the first item and ``additional`` for each further one, nothing
when the items' price (before any coupon) reaches ``free_above``, nothing for a pickup; in
base units of the listing's currency. A listing has either a profile or the v1 ``shipping``
list, not both.
"""

from __future__ import annotations

import re
from typing import Any

from . import fields as f

MAX_REGIONS = 20
MAX_COUNTRIES = 250
MAX_SERVICES = 10
MAX_SERVICE_NAME = 40
WORLDWIDE = "WORLDWIDE"
PICKUP = "PICKUP"
COUNTRY_RE = re.compile(r"[A-Z]{2}")  # matched whole
SERVICE_RE = re.compile(r"[^/\x00-\x1f\x7f]{1,40}")  # a name never holds "/"


def validate(err: f.ErrorClass, field: str, value: Any) -> dict[str, Any]:
    p = f.exact_keys(err, field, value, {"regions"}, frozenset({"pickup", "free_above"}))
    regions = p["regions"]
    if not isinstance(regions, list) or not 1 <= len(regions) <= MAX_REGIONS:
        f.fail(err, f"{field}.regions", f"must be a list of 1..{MAX_REGIONS} regions")
    for i, region in enumerate(regions):
        name = f"{field}.regions[{i}]"
        r = f.exact_keys(err, name, region, {"countries", "services"})
        countries = r["countries"]
        if not isinstance(countries, list) or not 1 <= len(countries) <= MAX_COUNTRIES:
            f.fail(err, f"{name}.countries", f"must be a list of 1..{MAX_COUNTRIES} countries")
        for c in countries:
            if c != WORLDWIDE and not (isinstance(c, str) and COUNTRY_RE.fullmatch(c)):
                f.fail(err, f"{name}.countries", f"{str(c)[:12]!r} is not an ISO 3166 code "
                       "(two capital letters) or WORLDWIDE")
        if len(set(countries)) != len(countries):
            f.fail(err, f"{name}.countries", "names a country twice")
        services = r["services"]
        if not isinstance(services, list) or not 1 <= len(services) <= MAX_SERVICES:
            f.fail(err, f"{name}.services", f"must be a list of 1..{MAX_SERVICES} services")
        names: set[str] = set()
        for j, service in enumerate(services):
            sname = f"{name}.services[{j}]"
            s = f.exact_keys(err, sname, service, {"name", "days", "first", "additional"})
            if not isinstance(s["name"], str) or not SERVICE_RE.fullmatch(s["name"]):
                f.fail(err, f"{sname}.name", "must be 1..40 characters, no / or control "
                       "characters")
            if s["name"] in names:
                f.fail(err, f"{name}.services", "names a service twice")
            names.add(s["name"])
            f.integer(err, f"{sname}.days", s["days"], 0, 365)
            f.integer(err, f"{sname}.first", s["first"])
            f.integer(err, f"{sname}.additional", s["additional"])
    if "pickup" in p and not isinstance(p["pickup"], bool):
        f.fail(err, f"{field}.pickup", "must be true or false")
    if "free_above" in p:
        f.integer(err, f"{field}.free_above", p["free_above"], 1)
    return p


def services_to(profile: dict[str, Any], country: str) -> list[dict[str, Any]]:
    """The services that ship to ``country``: those of the first region naming it, else of the
    first WORLDWIDE region; [] when it does not ship there."""
    country = country.upper()
    for region in profile["regions"]:
        if country in region["countries"]:
            return list(region["services"])
    for region in profile["regions"]:
        if WORLDWIDE in region["countries"]:
            return list(region["services"])
    return []


def cost(profile: dict[str, Any], choice: str, quantity: int, items: int) -> int:
    """What shipping ``quantity`` items costs by ``choice`` ("CC/service" or "PICKUP");
    ValueError saying why ``choice`` is not one the profile offers."""
    if choice == PICKUP:
        if not profile.get("pickup"):
            raise ValueError("this listing has no local pickup (shipping)")
        return 0
    country, sep, service = choice.partition("/")
    if not sep or not COUNTRY_RE.fullmatch(country):
        raise ValueError("shipping must be COUNTRY/service (e.g. DK/Post) or PICKUP")
    offered = services_to(profile, country)
    if not offered:
        raise ValueError(f"this listing does not ship to {country} (shipping)")
    for s in offered:
        if s["name"] == service:
            free = profile.get("free_above")
            if free is not None and items >= free:
                return 0
            return int(s["first"]) + int(s["additional"]) * (quantity - 1)
    raise ValueError(f"shipping to {country} is by {[s['name'] for s in offered]} (shipping)")


def ships_to(profile: dict[str, Any], country: str) -> bool:
    return bool(services_to(profile, country))
