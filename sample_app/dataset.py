"""The sample system's tenants, customers and catalogue sizes, derived from fixed numbers.

Everything here is deterministic and cheap to compute, so the seeder, the traffic
generator, the fault catalogue and the labs agree on who exists without a database.
Shops are Zipf-sized: a few big ones and a long tail, as on any real platform, which is
what makes "which tenant is affected?" a real question.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

SHOP_COUNT = 60
ORDER_COUNT = 200_000
REVIEW_COUNT = 250_000
# On top of their share of the ordinary orders: a reseller's history is more than ten times
# the longest of anyone else (seed.ORDER_CUSTOMER_EXPONENT).
ORDERS_PER_RESELLER = 4_350

_NAMES = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "soylent",
    "cyberdyne",
    "aperture",
    "oscorp",
    "gringotts",
    "monarch",
    "vandelay",
    "pied-piper",
    "dunder",
    "sterling",
    "massive",
    "nakatomi",
    "oceanic",
    "virtucon",
    "buynlarge",
    "zorg",
    "rekall",
    "duff",
    "krusty",
    "bluth",
    "prestige",
    "octan",
    "spacely",
    "cogswell",
    "gekko",
    "ollivander",
    "sirius",
    "tessier",
    "weyland",
    "yoyodyne",
    "axiom",
    "benthic",
    "cheers",
    "dharma",
    "ecorp",
    "frobozz",
    "genco",
    "hanso",
    "ingen",
    "jupiter",
    "kaibacorp",
    "lacuna",
    "mooby",
    "nexus",
    "omni",
    "planet",
    "quark",
    "roxxon",
    "sabre",
    "tricell",
    "uplink",
)
# Currency and the locale its customers search in, cycled so every kind has big and small shops.
_MARKETS = (("USD", "en-US"), ("EUR", "de-DE"), ("JPY", "ja-JP"), ("GBP", "en-GB"))
LOCALES = tuple(locale for _, locale in _MARKETS)


@dataclass(frozen=True)
class Shop:
    index: int  # 1 is the biggest
    slug: str  # the tenant id: tenant.id and X-Tenant-ID
    currency: str
    locale: str
    product_count: int
    customer_count: int
    first_product_id: int

    @property
    def product_ids(self) -> range:
        return range(self.first_product_id, self.first_product_id + self.product_count)

    def customer(self, number: int) -> str:
        """The user id of the shop's customer `number` (0-based): enduser.id and X-User-ID."""
        return f"{self.slug}-c{number:05d}"

    @property
    def staff(self) -> str:
        return f"{self.slug}-staff"


@cache
def shops() -> tuple[Shop, ...]:
    result = []
    first = 1
    for index in range(1, SHOP_COUNT + 1):
        currency, locale = _MARKETS[(index - 1) % len(_MARKETS)]
        products = max(12, round(1400 / index**0.95))
        customers = max(25, round(4000 / index**0.9))
        result.append(Shop(index, _NAMES[index - 1], currency, locale, products, customers, first))
        first += products
    return tuple(result)


@cache
def shop(slug: str) -> Shop:
    for candidate in shops():
        if candidate.slug == slug:
            return candidate
    raise KeyError(slug)


def shop_slugs() -> tuple[str, ...]:
    return tuple(s.slug for s in shops())


def product_count() -> int:
    return sum(s.product_count for s in shops())


def shop_of_product(product_id: int) -> Shop:
    for candidate in shops():
        if product_id in candidate.product_ids:
            return candidate
    raise KeyError(product_id)


def shop_weight(index: int) -> float:
    """How much traffic and data a shop gets, relative to the others (Zipf, s=1)."""
    return 1.0 / index


# Resale accounts buy in bulk: thousands of orders each, where a customer has a handful.
# They are the "one heavy user" of the catalogue: real customers, with real history.
RESELLERS = (("acme", 3), ("hooli", 11), ("stark", 2))


def resellers() -> tuple[str, ...]:
    return tuple(shop(slug).customer(number) for slug, number in RESELLERS)
