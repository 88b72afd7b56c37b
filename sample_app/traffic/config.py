"""What one traffic run may do, checked strictly: every bound is required and finite.

The checks are plain functions of one value each, so the command line reports a bad value
against the option that carried it, and programmatic callers get the same messages.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from o11ykit.loopback import is_loopback
from sample_app import dataset
from sample_app.dataset import Shop
from sample_app.traffic.personas import DEFAULT_MIX, PERSONAS, STAFF_PERSONAS

MAX_RATE = 500.0  # requests per second; more than the sample system serves on one machine
MAX_DURATION_S = 3600.0  # a run that outlives a workshop session is a forgotten one
MAX_CONCURRENCY = 256
MAX_TIMEOUT_S = 120.0
PROGRESS_MODES = ("auto", "plain", "none")
_CUSTOMER_ID = re.compile(r"^(?P<slug>.+)-c(?P<number>\d{5})$")

PersonaChoice = Sequence[str] | Mapping[str, float] | str


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be http(s)://host[:port], got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"url must have no query, fragment or credentials, got {url!r}")
    return url.rstrip("/")


def allowed_hosts(hosts: Sequence[str] | str) -> tuple[str, ...]:
    """The hosts named for traffic besides loopback, as urlsplit spells a URL's host."""
    names = [hosts] if isinstance(hosts, str) else list(hosts)
    return tuple(name.strip().strip("[]").lower() for name in names)


def check_host(url: str, allowed: Sequence[str] = ()) -> str:
    """A load generator sent to a mistyped or copied URL hammers someone's real service:
    only loopback, or a host named on purpose (a compose service name, a workshop machine)."""
    host = urlsplit(url).hostname or ""
    if not (is_loopback(host) or host in allowed_hosts(allowed)):
        raise ValueError(
            f"url host {host!r} is not loopback: name it with --allow-host {host} "
            "(allow_hosts in Python) to send traffic there; accepted without it: "
            "localhost, 127.0.0.0/8, [::1]"
        )
    return url


def check_rate(rate: float) -> float:
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise ValueError(f"rate must be > 0 and <= {MAX_RATE:g} requests per second, got {rate:g}")
    return float(rate)


def check_duration(seconds: float) -> float:
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_DURATION_S):
        raise ValueError(f"duration must be > 0 and <= {MAX_DURATION_S:g} s, got {seconds:g}")
    return float(seconds)


def check_max_requests(count: int) -> int:
    if count < 1:
        raise ValueError(f"requests must be >= 1, got {count}")
    return int(count)


def check_concurrency(count: int) -> int:
    if not 1 <= count <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {count}")
    return int(count)


def check_timeout(seconds: float) -> float:
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise ValueError(f"timeout must be > 0 and <= {MAX_TIMEOUT_S:g} s, got {seconds:g}")
    return float(seconds)


def check_share(share: float) -> float:
    if not (math.isfinite(share) and 0 <= share <= 1):
        raise ValueError(f"focus share must be between 0 and 1, got {share:g}")
    return float(share)


def check_tenant(slug: str) -> str:
    try:
        dataset.shop(slug)
    except KeyError:
        known = ", ".join(dataset.shop_slugs()[:5])
        raise ValueError(f"unknown shop {slug!r} (shops are {known}, ...)") from None
    return slug


def shop_of_user(user_id: str) -> Shop:
    """The shop a dataset user id belongs to: `<slug>-c<5 digits>` or `<slug>-staff`."""
    customer = _CUSTOMER_ID.match(user_id)
    slug = customer["slug"] if customer else user_id.removesuffix("-staff")
    if not customer and slug == user_id:
        raise ValueError(f"user {user_id!r} is neither <shop>-cNNNNN nor <shop>-staff")
    shop = dataset.shop(check_tenant(slug))
    if customer and int(customer["number"]) >= shop.customer_count:
        raise ValueError(f"user {user_id!r}: {slug} has {shop.customer_count} customers")
    return shop


def check_user(user_id: str) -> str:
    shop_of_user(user_id)
    return user_id


def parse_personas(text: str) -> dict[str, float]:
    """`browse,search` (default weights) or `browse=5,checkout=1` (these weights)."""
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, weight = item.partition("=")
        name = name.strip()
        if name not in PERSONAS:
            raise ValueError(f"unknown persona {name!r} (personas are {', '.join(PERSONAS)})")
        try:
            mix[name] = float(weight) if equals else DEFAULT_MIX[name]
        except ValueError:
            raise ValueError(f"persona weight must be a number, got {item!r}") from None
    return check_mix(mix)


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    unknown = [name for name in mix if name not in PERSONAS]
    if unknown:
        raise ValueError(f"unknown persona {unknown[0]!r} (personas are {', '.join(PERSONAS)})")
    bad = [f"{n}={w}" for n, w in mix.items() if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise ValueError(f"persona weights must be >= 0, got {bad[0]}")
    if not any(mix.values()):
        raise ValueError("at least one persona needs a weight above 0")
    return {name: float(weight) for name, weight in mix.items() if weight > 0}


def persona_mix(choice: PersonaChoice | None) -> dict[str, float]:
    if choice is None:
        return dict(DEFAULT_MIX)
    if isinstance(choice, str):
        return parse_personas(choice)
    if isinstance(choice, Mapping):
        return check_mix(choice)
    return check_mix({name: DEFAULT_MIX.get(name, 0.0) for name in choice} if choice else {})


@dataclass(frozen=True)
class TrafficConfig:
    """One run: where, how fast, for how long, and who the visitors are.

    At least one of `duration_s` and `max_requests` is required; a run never lasts more
    than an hour whichever is given. `personas` restricts the mix (a list of names, with
    their default weights) or sets it (a mapping of name to weight). `focus_share` of the
    visits go to `focus_tenant`, and to `focus_user` when it is given. `base_url` is a
    loopback address unless its host is one of `allow_hosts`.
    """

    base_url: str
    rate: float = 10.0
    duration_s: float | None = None
    max_requests: int | None = None
    concurrency: int = 8
    seed: int = 1
    personas: PersonaChoice | None = None
    focus_tenant: str | None = None
    focus_user: str | None = None
    focus_share: float = 0.0
    journal: str | os.PathLike[str] | None = None
    timeout_s: float = 10.0
    progress: str = "none"  # auto (Rich when stdout is a terminal), plain or none
    allow_hosts: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_url(self.base_url))
        object.__setattr__(self, "allow_hosts", allowed_hosts(self.allow_hosts))
        check_host(self.base_url, self.allow_hosts)
        check_rate(self.rate)
        if self.duration_s is None and self.max_requests is None:
            raise ValueError("give a duration or a request count: a run is never unbounded")
        if self.duration_s is not None:
            check_duration(self.duration_s)
        if self.max_requests is not None:
            check_max_requests(self.max_requests)
        check_concurrency(self.concurrency)
        check_timeout(self.timeout_s)
        if self.progress not in PROGRESS_MODES:
            raise ValueError(f"progress must be one of {', '.join(PROGRESS_MODES)}")
        self._check_focus(persona_mix(self.personas))

    def _check_focus(self, mix: Mapping[str, float]) -> None:
        check_share(self.focus_share)
        if self.focus_tenant is not None:
            check_tenant(self.focus_tenant)
        if self.focus_user is not None:
            owner = shop_of_user(self.focus_user).slug
            if self.focus_tenant not in (None, owner):
                raise ValueError(f"user {self.focus_user!r} is not in shop {self.focus_tenant!r}")
        focused = self.focus_tenant is not None or self.focus_user is not None
        if focused != (self.focus_share > 0):
            raise ValueError("a focus needs a tenant or user and a focus share above 0")
        if self.focus_user is not None:
            is_staff = self.focus_user == shop_of_user(self.focus_user).staff
            if not any((name in STAFF_PERSONAS) == is_staff for name in mix):
                kind = "staff" if is_staff else "customer"
                raise ValueError(f"focus user {self.focus_user!r} needs a {kind} persona")

    @property
    def mix(self) -> dict[str, float]:
        """The persona weights this run draws from (restriction applied, zeros dropped)."""
        return persona_mix(self.personas)

    @property
    def focus_shop(self) -> Shop | None:
        if self.focus_user is not None:
            return shop_of_user(self.focus_user)
        return dataset.shop(self.focus_tenant) if self.focus_tenant else None

    @property
    def time_limit_s(self) -> float:
        """How long the run may last: the duration, and never more than the hour cap."""
        return min(self.duration_s or MAX_DURATION_S, MAX_DURATION_S)
