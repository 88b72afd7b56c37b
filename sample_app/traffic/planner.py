"""The sequence of visits a run makes: who visits which shop, as what persona, doing what.

Visit `i` is drawn from its own random source, seeded by the run's seed and `i` alone, so
the sequence is the same whatever the timing, the concurrency or the gateway's answers,
and `plan(config, 10)` is the first ten of `plan(config, 1000)`.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, count, islice

from sample_app import dataset
from sample_app.dataset import Shop
from sample_app.traffic.config import TrafficConfig
from sample_app.traffic.personas import PERSONAS, STAFF_PERSONAS, Step, zipf_rank

# Inside a shop, a few loyal customers visit very often and most visit once in a while.
CUSTOMER_EXPONENT = 1.0


@dataclass(frozen=True)
class Visit:
    index: int
    persona: str
    tenant: str  # X-Tenant-ID
    user: str  # X-User-ID: a customer, or the shop's staff id for the staff persona
    steps: tuple[Step, ...]
    focused: bool = False  # sent to the focus tenant or user on purpose


@cache
def _cumulative_shop_weights() -> tuple[float, ...]:
    return tuple(accumulate(dataset.shop_weight(s.index) for s in dataset.shops()))


def draw_shop(rng: random.Random) -> Shop:
    """A shop in proportion to its traffic weight: the big ones most of the time."""
    cumulative = _cumulative_shop_weights()
    position = bisect_left(cumulative, rng.random() * cumulative[-1])
    return dataset.shops()[min(position, len(cumulative) - 1)]


def draw_customer(rng: random.Random, shop: Shop) -> str:
    return shop.customer(zipf_rank(rng, shop.customer_count, CUSTOMER_EXPONENT))


def _draw_persona(rng: random.Random, mix: dict[str, float]) -> str:
    names = list(mix)
    return rng.choices(names, weights=[mix[name] for name in names])[0]


class Planner:
    """Draws visits for one configuration; holds only what the configuration implies."""

    def __init__(self, config: TrafficConfig) -> None:
        self._seed = config.seed
        self._mix = config.mix
        self._focus_shop = config.focus_shop
        self._focus_user = config.focus_user
        self._focus_share = config.focus_share
        # A focused visit acts as the focus user, so its persona must suit that user.
        focus_is_staff = self._focus_shop is not None and self._focus_user == self._focus_shop.staff
        self._focus_mix = {
            name: weight
            for name, weight in self._mix.items()
            if self._focus_user is None or (name in STAFF_PERSONAS) == focus_is_staff
        }

    def visit(self, index: int) -> Visit:
        # A string seed is hashed with SHA-512 by `random`: stable across runs and machines.
        rng = random.Random(f"o11ykit-traffic:{self._seed}:{index}")
        focused = self._focus_shop is not None and rng.random() < self._focus_share
        persona = _draw_persona(rng, self._focus_mix if focused else self._mix)
        shop = self._focus_shop if focused and self._focus_shop else draw_shop(rng)
        if persona in STAFF_PERSONAS:
            user = shop.staff
        elif focused and self._focus_user is not None:
            user = self._focus_user
        else:
            user = draw_customer(rng, shop)
        steps = tuple(PERSONAS[persona](rng, shop))
        return Visit(index, persona, shop.slug, user, steps, focused)

    def visits(self) -> Iterator[Visit]:
        return map(self.visit, count())


def plan(config: TrafficConfig, n: int) -> list[Visit]:
    """The first `n` visits a run with this configuration makes, in order. Pure."""
    return list(islice(Planner(config).visits(), n))
